"""Verifying credentials and presentations from any node: every check named, never an exception.

A verdict lists each check (structure, issuer, proof, validity, status, schema) with its reason, so a person
sees why a credential failed. Keys come from the issuer's DID (``did:web`` through the guarded client, cached,
with the last good copy kept for offline issuers; ``did:key`` locally). Status lists are fetched whole and
cached for a bounded time: the issuer learns neither which credential is checked nor by whom.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.credentials.bitstring import Bitstring, decode
from node.credentials.issuance import ACHIEVEMENT_TYPES, types_of
from node.errors import PROBLEM_BASE, EduFedError
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.net.client import FetchError, SafeClient
from node.net.did_resolver import DidResolver
from node.trust.proofs import VerificationResult, proof_methods, verify

MAX_CREDENTIALS_PER_PRESENTATION = 50
MAX_CACHED_LISTS = 1000


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


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _issuer_id(credential: dict[str, Any]) -> Any:
    issuer = credential.get("issuer")
    return issuer.get("id") if isinstance(issuer, dict) else issuer


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


class StatusCache:
    """Status list credentials by URL, verified once and kept for ``max_age`` seconds."""

    def __init__(self, client: SafeClient, resolver: DidResolver, max_age: float) -> None:
        self.client = client
        self.resolver = resolver
        self.max_age = max_age
        # url -> (fetched at, (issuer, purpose), bits)
        self._lists: dict[str, tuple[float, tuple[str, str], Bitstring]] = {}

    async def bits(self, url: str, issuer: str, purpose: str) -> Bitstring:
        """The list at ``url``; raises EduFedError/FetchError when it cannot be trusted or fetched."""
        cached = self._lists.get(url)
        if cached and time.monotonic() - cached[0] < self.max_age and cached[1] == (issuer, purpose):
            return cached[2]
        document = await self.client.get_json(url)
        if not isinstance(document, dict) or _issuer_id(document) != issuer:
            raise FetchError(url, "status list is not issued by the credential's issuer", permanent=True)
        did_document = await self.resolver.resolve(issuer)
        result = await asyncio.to_thread(verify, document, {issuer: did_document}.__getitem__,
                                         expected_controller=issuer)
        if not result.verified:
            raise FetchError(url, f"status list proof does not verify ({result.error})", permanent=True)
        subject = document.get("credentialSubject") or {}
        if not isinstance(subject, dict) or subject.get("statusPurpose") != purpose:
            raise FetchError(url, f"the list's statusPurpose is not {purpose!r}", permanent=True)
        bits = decode(str(subject.get("encodedList", "")))
        if len(self._lists) >= MAX_CACHED_LISTS:  # bounded memory: forget the oldest
            del self._lists[min(self._lists, key=lambda key: self._lists[key][0])]
        self._lists[url] = (time.monotonic(), (issuer, purpose), bits)
        return bits


class CredentialVerifier:
    def __init__(self, resolver: DidResolver, status: StatusCache) -> None:
        self.resolver = resolver
        self.status = status

    async def _did_document(
        self, did: str, signed: dict[str, Any], verdict: Verdict, check: str
    ) -> dict[str, Any] | None:
        if not did.startswith(("did:web:", "did:key:")):
            verdict.add(check, False, f"{did!r} is not a did:web or did:key")
            return None
        try:
            document = await self.resolver.resolve_for(did, proof_methods(signed))
        except EduFedError as error:
            verdict.add(check, False, f"{did} could not be resolved: {error.detail or error.title}")
            return None
        verdict.add(check, True, did)
        return document

    async def _proof(self, document: dict[str, Any], controller: str, did_document: dict[str, Any],
                     verdict: Verdict, **options: Any) -> None:
        result: VerificationResult = await asyncio.to_thread(
            verify, document, {controller: did_document}.__getitem__, expected_controller=controller, **options
        )
        if result.verified:
            verdict.add("proof", True, "eddsa-rdfc-2022 proof verifies with the issuer's key")
            return
        first = result.failures[0]
        name = {"canonicalization": "context", "challenge": "challenge", "domain": "domain"}.get(first.name, "proof")
        verdict.add(name, False, f"{first.name}: {first.reason}")

    async def verify_credential(self, credential: Any, now: datetime | None = None) -> Verdict:
        verdict = Verdict()
        moment = now or datetime.now(UTC)
        if not self._structure(credential, verdict):
            return verdict
        issuer = str(_issuer_id(credential))
        did_document = await self._did_document(issuer, credential, verdict, "issuer")
        if did_document is None:
            return verdict
        await self._proof(credential, issuer, did_document, verdict)
        self._validity(credential, moment, verdict)
        await self._status(credential, issuer, verdict)
        self._schema(credential, verdict)
        return verdict

    @staticmethod
    def _structure(credential: Any, verdict: Verdict) -> bool:
        if not isinstance(credential, dict):
            return verdict.add("structure", False, "a credential is a JSON object")
        contexts = _as_list(credential.get("@context"))
        if not contexts or contexts[0] != CREDENTIALS_V2_CONTEXT:
            return verdict.add("structure", False, f"the first @context must be {CREDENTIALS_V2_CONTEXT}")
        if "VerifiableCredential" not in types_of(credential.get("type")):
            return verdict.add("structure", False, "type must include VerifiableCredential")
        if not isinstance(_issuer_id(credential), str):
            return verdict.add("structure", False, "issuer (or issuer.id) is required")
        if not isinstance(credential.get("credentialSubject"), dict | list):
            return verdict.add("structure", False, "credentialSubject is required")
        if "proof" not in credential:
            return verdict.add("structure", False, "the credential has no proof")
        return verdict.add("structure", True, "VC 2.0 data model")

    @staticmethod
    def _validity(credential: dict[str, Any], now: datetime, verdict: Verdict) -> None:
        valid_from, valid_until = credential.get("validFrom"), credential.get("validUntil")
        start = _parse_time(valid_from) if valid_from is not None else None
        end = _parse_time(valid_until) if valid_until is not None else None
        if (valid_from is not None and start is None) or (valid_until is not None and end is None):
            verdict.add("validity", False, "validFrom / validUntil must be xsd:dateTime with a time zone")
        elif start is not None and now < start:
            verdict.add("validity", False, f"not valid before {valid_from}")
        elif end is not None and now >= end:
            verdict.add("validity", False, f"expired at {valid_until}")
        else:
            verdict.add("validity", True, "within its validity period")

    async def _status(self, credential: dict[str, Any], issuer: str, verdict: Verdict) -> None:
        entries = [e for e in _as_list(credential.get("credentialStatus")) if isinstance(e, dict)]
        if not entries:
            verdict.add("status", True, "no status list")
            return
        for entry in entries:
            purpose = str(entry.get("statusPurpose", ""))
            url, raw_index = entry.get("statusListCredential"), str(entry.get("statusListIndex", ""))
            if entry.get("type") != "BitstringStatusListEntry" or not isinstance(url, str) or not raw_index.isdigit():
                verdict.add("status", False, "credentialStatus must be a BitstringStatusListEntry with list and index")
                return
            try:
                bits = await self.status.bits(url, issuer, purpose)
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
        if not ACHIEVEMENT_TYPES & set(types_of(credential.get("type"))):
            verdict.add("schema", True, "not an Open Badges credential: VC 2.0 only")
            return
        subject = credential.get("credentialSubject")
        achievement = subject.get("achievement") if isinstance(subject, dict) else None
        if not isinstance(achievement, dict) or "Achievement" not in types_of(achievement.get("type")):
            verdict.add("schema", False, "an Open Badges credential needs credentialSubject.achievement")
        elif not credential.get("validFrom"):
            verdict.add("schema", False, "Open Badges 3.0 requires validFrom")
        else:
            verdict.add("schema", True, "Open Badges 3.0 achievement credential")

    async def verify_presentation(
        self, presentation: Any, *, challenge: str | None, domain: str | None, now: datetime | None = None
    ) -> Verdict:
        verdict = Verdict()
        if not isinstance(presentation, dict) or "VerifiablePresentation" not in types_of(presentation.get("type")):
            verdict.add("structure", False, "a VerifiablePresentation is required")
            return verdict
        holder = presentation.get("holder")
        credentials = _as_list(presentation.get("verifiableCredential"))
        if not isinstance(holder, str) or not credentials or len(credentials) > MAX_CREDENTIALS_PER_PRESENTATION:
            verdict.add("structure", False,
                        f"holder and 1 to {MAX_CREDENTIALS_PER_PRESENTATION} verifiableCredential are required")
            return verdict
        verdict.add("structure", True, f"{len(credentials)} credential(s)")
        if challenge is None or domain is None:
            verdict.add("challenge", False, "the verifier must state the challenge and domain it expects")
            return verdict
        holder_document = await self._did_document(holder, presentation, verdict, "holder")
        if holder_document is not None:
            await self._proof(presentation, holder, holder_document, verdict, expected_purpose="authentication",
                              challenge=challenge, domain=domain, now=now)
        for credential in credentials:
            result = await self.verify_credential(credential, now)
            subject = credential.get("credentialSubject") if isinstance(credential, dict) else None
            subject_id = subject.get("id") if isinstance(subject, dict) else None
            result.add("holder", subject_id == holder,
                       "the holder is the subject" if subject_id == holder else "the holder is not the subject")
            verdict.credentials.append(result)
        return verdict
