"""Verifying credentials and presentations from any issuer: every check named, never an exception.

A verdict lists each check (structure, issuer, proof, validity, status, schema) with its reason, so a person
sees why a credential failed. Keys come from the issuer's controller document: ``did:web`` and ``https://``
identifiers through the guarded client (cached, with the last good DID document kept for offline issuers),
``did:key`` locally. A proof set may hold proofs by other keys (an endorser, a notary): each is verified and
reported, and one by the issuer is required. A credential whose proof fails is not followed further: its status
lists are not fetched. Status lists of other issuers are fetched whole and cached for a bounded time (the issuer
learns neither which credential is checked nor by whom); the node's own lists are read from its database, so a
revocation counts at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.credentials.bitstring import Bitstring, decode
from node.credentials.controllers import Controllers, is_supported
from node.credentials.datamodel import (
    DataModelError,
    as_list,
    check_credential,
    check_presentation,
    credential_version,
    holder_id,
    parse_date_time,
    subject_ids,
    types_of,
)
from node.credentials.issuance import is_open_badge
from node.errors import PROBLEM_BASE, EduFedError
from node.net.client import FetchError, SafeClient
from node.net.did_resolver import DidResolver
from node.trust.proofs import VerificationResult, proof_methods, verify

MAX_CREDENTIALS_PER_PRESENTATION = 50
MAX_PROOFS = 8  # a proof set or chain longer than this is refused: each proof may cost a fetch
MAX_CACHED_LISTS = 1000
STATUS_ENTRY_TYPES = ("BitstringStatusListEntry", "StatusList2021Entry")
LocalLists = Callable[[str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "reason": self.reason}


@dataclass
class Verdict:
    """The outcome of verifying one credential or presentation."""

    checks: list[Check] = field(default_factory=list)
    credentials: list[Verdict] = field(default_factory=list)  # a presentation's credentials

    @property
    def verified(self) -> bool:
        return all(c.ok for c in self.checks) and all(v.verified for v in self.credentials)

    def add(self, name: str, ok: bool, reason: str) -> bool:
        self.checks.append(Check(name, ok, reason))
        return ok

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_json(self) -> dict[str, Any]:
        """VC-API verify response: ``verified``, the checks, and ``problemDetails`` for each failure."""
        body: dict[str, Any] = {"verified": self.verified, "checks": [c.as_json() for c in self.checks]}
        problems = [
            {"type": f"{PROBLEM_BASE}{c.name}", "title": f"{c.name} check failed", "detail": c.reason}
            for c in self.failures()
        ]
        if self.credentials:
            body["credentialResults"] = [v.as_json() for v in self.credentials]
            problems += [p for v in self.credentials for p in v.as_json().get("problemDetails", [])]
        if problems:
            body["problemDetails"] = problems
        return body


def _issuer_id(credential: dict[str, Any]) -> Any:
    issuer = credential.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def _decode_list(entry_type: str, encoded: Any) -> Bitstring:
    """A Bitstring Status List, or a Status List 2021 (VC 1.1: base64url GZIP without the multibase prefix)."""
    text = str(encoded or "")
    if entry_type == "StatusList2021Entry" and not text.startswith("u"):
        text = "u" + text.rstrip("=")
    return decode(text)


class StatusCache:
    """Status list credentials by URL, verified once and kept for ``max_age`` seconds.

    ``local`` reads a list of this node's own (by URL) from its database: never cached, so the node's own
    verifier answers "revoked" right after a revocation.
    """

    def __init__(self, client: SafeClient, resolver: DidResolver, max_age: float,
                 local: LocalLists | None = None) -> None:
        self.client = client
        self.controllers = Controllers(resolver)
        self.max_age = max_age
        self.local = local
        # url -> (fetched at, (issuer, purpose), bits)
        self._lists: dict[str, tuple[float, tuple[str, str], Bitstring]] = {}

    async def bits(self, url: str, issuer: str, purpose: str, entry_type: str) -> Bitstring:
        """The list at ``url``; raises EduFedError/FetchError when it cannot be trusted or fetched."""
        own = await self.local(url) if self.local is not None else None
        if own is not None:
            if _issuer_id(own) != issuer:
                raise FetchError(url, "status list is not issued by the credential's issuer", permanent=True)
            return self._read(url, own, purpose, entry_type)
        cached = self._lists.get(url)
        if cached and time.monotonic() - cached[0] < self.max_age and cached[1] == (issuer, purpose):
            return cached[2]
        document = await self.client.get_json(url)
        if not isinstance(document, dict) or _issuer_id(document) != issuer:
            raise FetchError(url, "status list is not issued by the credential's issuer", permanent=True)
        controller = await self.controllers.resolve(issuer, proof_methods(document))
        result = await asyncio.to_thread(verify, document, {issuer: controller}.__getitem__,
                                         expected_controller=issuer)
        if not result.verified:
            raise FetchError(url, f"status list proof does not verify ({result.error})", permanent=True)
        bits = self._read(url, document, purpose, entry_type)
        if len(self._lists) >= MAX_CACHED_LISTS:  # bounded memory: forget the oldest
            del self._lists[min(self._lists, key=lambda key: self._lists[key][0])]
        self._lists[url] = (time.monotonic(), (issuer, purpose), bits)
        return bits

    @staticmethod
    def _read(url: str, document: dict[str, Any], purpose: str, entry_type: str) -> Bitstring:
        subject = document.get("credentialSubject") or {}
        if not isinstance(subject, dict) or subject.get("statusPurpose") != purpose:
            raise FetchError(url, f"the list's statusPurpose is not {purpose!r}", permanent=True)
        return _decode_list(entry_type, subject.get("encodedList"))


class CredentialVerifier:
    def __init__(self, resolver: DidResolver, status: StatusCache) -> None:
        self.resolver = resolver
        self.status = status
        self.controllers = status.controllers

    async def _controller(self, identifier: str, signed: dict[str, Any], verdict: Verdict,
                          check: str) -> dict[str, Any] | None:
        if not is_supported(identifier):
            verdict.add(check, False, f"{identifier!r} is not a did:web, did:key or https:// identifier")
            return None
        try:
            document = await self.controllers.resolve(identifier, proof_methods(signed))
        except EduFedError as error:
            verdict.add(check, False, f"{identifier} could not be resolved: {error.detail or error.title}")
            return None
        verdict.add(check, True, identifier)
        return document

    async def _signers(self, document: dict[str, Any], known: dict[str, dict[str, Any]]) -> None:
        """Fetch the controller documents of the other keys of a proof set (endorsers); did:key needs none."""
        for method in proof_methods(document):
            controller = method.split("#", 1)[0]
            if controller in known or controller.startswith("did:key:") or not is_supported(controller):
                continue
            try:
                known[controller] = await self.controllers.resolve(controller, [method])
            except EduFedError:
                continue  # that proof then fails with "cannot resolve", and says so

    async def _proof(self, document: dict[str, Any], controller: str, controller_document: dict[str, Any],
                     verdict: Verdict, **options: Any) -> bool:
        """Every proof verifies; one of them by ``controller`` (the issuer, or the holder) is required."""
        proofs = as_list(document.get("proof"))
        if len(proofs) > MAX_PROOFS:
            return verdict.add("proof", False, f"{len(proofs)} proofs; at most {MAX_PROOFS} are verified")
        documents = {controller: controller_document}
        await self._signers(document, documents)
        result: VerificationResult = await asyncio.to_thread(
            verify, document, documents.__getitem__, **options
        )
        mine = [o for o in result.proofs if o.controller == controller]
        if not result.verified:
            first = result.failures[0]
            name = {"canonicalization": "context", "challenge": "challenge", "domain": "domain"}.get(
                first.name, "proof")
            return verdict.add(name, False, f"{first.name}: {first.reason}")
        if not mine:
            return verdict.add("proof", False, f"no proof is made with a key of {controller}")
        if len(result.proofs) == 1:
            return verdict.add("proof", True, "eddsa-rdfc-2022 proof verifies with the issuer's key"
                               if options.get("expected_purpose", "assertionMethod") == "assertionMethod"
                               else "eddsa-rdfc-2022 proof verifies with the holder's key")
        others = sorted({str(o.controller) for o in result.proofs if o.controller != controller})
        return verdict.add("proof", True, f"{len(result.proofs)} eddsa-rdfc-2022 proofs verify: "
                           f"{len(mine)} by {controller}" + (f", others by {', '.join(others)}" if others else ""))

    async def verify_credential(self, credential: Any, now: datetime | None = None) -> Verdict:
        verdict = Verdict()
        moment = now or datetime.now(UTC)
        if not self._structure(credential, verdict):
            return verdict
        issuer = str(_issuer_id(credential))
        controller = await self._controller(issuer, credential, verdict, "issuer")
        if controller is None:
            return verdict
        proof_ok = await self._proof(credential, issuer, controller, verdict)
        self._validity(credential, moment, verdict)
        if proof_ok:
            await self._status(credential, issuer, verdict)
        else:  # issue 20: links of a credential that does not verify are never followed
            verdict.add("status", False, "not checked: the proof does not verify, so its links are not followed")
        self._schema(credential, verdict)
        return verdict

    @staticmethod
    def _structure(credential: Any, verdict: Verdict) -> bool:
        try:
            check_credential(credential, expand_terms=False)
        except DataModelError as error:
            where = f" ({error.field})" if error.field else ""
            return verdict.add("structure", False, f"{error.title}{where}" + (f": {error.detail}"
                                                                               if error.detail else ""))
        if "proof" not in credential:
            return verdict.add("structure", False, "the credential has no proof")
        version = credential_version(credential)
        return verdict.add("structure", True, "VC 1.1 data model" if version == 1 else "VC 2.0 data model")

    @staticmethod
    def _validity(credential: dict[str, Any], now: datetime, verdict: Verdict) -> None:
        if credential_version(credential) == 1:
            start_member, end_member, zone = "issuanceDate", "expirationDate", False
        else:
            start_member, end_member, zone = "validFrom", "validUntil", True
        valid_from, valid_until = credential.get(start_member), credential.get(end_member)
        start = parse_date_time(valid_from, zone_required=zone) if valid_from is not None else None
        end = parse_date_time(valid_until, zone_required=zone) if valid_until is not None else None
        if (valid_from is not None and start is None) or (valid_until is not None and end is None):
            verdict.add("validity", False, f"{start_member} / {end_member} must be XSD date-times")
        elif start is not None and now < start:
            verdict.add("validity", False, f"not valid before {valid_from}")
        elif end is not None and now >= end:
            verdict.add("validity", False, f"expired at {valid_until}")
        else:
            verdict.add("validity", True, "within its validity period")

    async def _status(self, credential: dict[str, Any], issuer: str, verdict: Verdict) -> None:
        entries = as_list(credential.get("credentialStatus"))
        if not entries:
            verdict.add("status", True, "no status list")
            return
        for entry in entries:
            entry_type = entry.get("type") if isinstance(entry, dict) else None
            if entry_type not in STATUS_ENTRY_TYPES:
                verdict.add("status", False, f"status type {entry_type!r} is not supported, so the status is unknown")
                return
            assert isinstance(entry, dict)
            purpose = str(entry.get("statusPurpose", ""))
            url, raw_index = entry.get("statusListCredential"), str(entry.get("statusListIndex", ""))
            if not isinstance(url, str) or not raw_index.isascii() or not raw_index.isdigit():
                verdict.add("status", False, f"credentialStatus must be a {entry_type} with list and index")
                return
            try:
                bits = await self.status.bits(url, issuer, purpose, str(entry_type))
                flagged = bits.get(int(raw_index))
            except FetchError as error:
                verdict.add("status", False, f"{purpose} list unreachable or untrusted: {error.reason}")
                return
            except EduFedError as error:
                verdict.add("status", False, f"{purpose} list unusable: {error.title}")
                return
            if flagged:
                state = {"revocation": "revoked", "suspension": "suspended"}.get(purpose, f"flagged ({purpose})")
                verdict.add("status", False, f"the credential is {state}")
                return
        verdict.add("status", True, "neither revoked nor suspended")

    @staticmethod
    def _schema(credential: dict[str, Any], verdict: Verdict) -> None:
        if not is_open_badge(credential):
            verdict.add("schema", True, "not an Open Badges credential: VC data model only")
            return
        subject = credential.get("credentialSubject")
        achievement = subject.get("achievement") if isinstance(subject, dict) else None
        start = "issuanceDate" if credential_version(credential) == 1 else "validFrom"
        if not isinstance(achievement, dict) or "Achievement" not in types_of(achievement.get("type")):
            verdict.add("schema", False, "an Open Badges credential needs credentialSubject.achievement")
        elif not credential.get(start):
            verdict.add("schema", False, f"Open Badges 3.0 requires {start}")
        else:
            verdict.add("schema", True, "Open Badges 3.0 achievement credential")

    async def verify_presentation(
        self, presentation: Any, *, challenge: str | None, domain: str | None, now: datetime | None = None,
        holder_must_be_subject: bool = False,
    ) -> Verdict:
        """A VC 2.0 presentation: ``holder`` optional, zero or more credentials, each verified on its own.

        Whether each credential's subject must be the holder is the verifier's policy: off by default (VC 2.0
        allows other holders), on for transcripts; either way the ``holder`` check of each credential says it.
        """
        verdict = Verdict()
        try:
            check_presentation(presentation)
        except DataModelError as error:
            where = f" ({error.field})" if error.field else ""
            verdict.add("structure", False, f"{error.title}{where}" + (f": {error.detail}" if error.detail else ""))
            return verdict
        credentials = as_list(presentation.get("verifiableCredential"))
        if len(credentials) > MAX_CREDENTIALS_PER_PRESENTATION:
            verdict.add("structure", False, f"at most {MAX_CREDENTIALS_PER_PRESENTATION} verifiableCredential")
            return verdict
        if "proof" not in presentation:
            verdict.add("structure", False, "the presentation has no proof")
            return verdict
        verdict.add("structure", True, f"{len(credentials)} credential(s)")
        if challenge is None:
            verdict.add("challenge", False, "the verifier must state the challenge it expects")
            return verdict
        holder = holder_id(presentation)
        signer = holder or _single_signer(presentation)
        if signer is None:
            verdict.add("holder", False, "without a holder, the presentation's proof must name one key")
            return verdict
        holder_document = await self._controller(signer, presentation, verdict, "holder")
        if holder_document is not None:
            await self._proof(presentation, signer, holder_document, verdict, expected_purpose="authentication",
                              challenge=challenge, domain=domain, now=now)
        for credential in credentials:
            result = await self.verify_credential(credential, now)
            subjects = set(subject_ids(credential)) if isinstance(credential, dict) else set()
            is_subject = holder is not None and holder in subjects
            if holder_must_be_subject:
                result.add("holder", is_subject, "the holder is the subject" if is_subject
                           else "the holder is not the subject (this verifier requires it)")
            else:
                result.add("holder", True, "the holder is the subject" if is_subject
                           else "the holder is not the subject (allowed: this verifier does not require it)")
            verdict.credentials.append(result)
        return verdict


def _single_signer(document: dict[str, Any]) -> str | None:
    """The controller of the presentation's keys when they all belong to one controller."""
    controllers = {method.split("#", 1)[0] for method in proof_methods(document)}
    return controllers.pop() if len(controllers) == 1 else None
