"""Issuing W3C VC 2.0 credentials signed by the node; Open Badges 3.0 achievement credentials are a profile.

The request brings what only the institution knows (the subject, the claims, for Open Badges the achievement
and its credits); every VC 2.0 property it brings is kept and signed. The node fills what it vouches for: ``id``
(unless given), ``issuer``, ``validFrom`` (unless given), its ``credentialStatus`` entries (after any the
request brings) and the ``eddsa-rdfc-2022`` proof. The credential is stored with its status index in the same
transaction, so a credential exists exactly when it can be revoked.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from node.catalog.records import Signer
from node.credentials.datamodel import (
    DataModelError,
    as_list,
    check_credential,
    check_expands,
    credential_version,
    is_url,
    parse_date_time,
    subject_ids,
    types_of,
)
from node.credentials.status import StatusRegistry
from node.errors import Conflict, Unprocessable
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.store.models import IssuedCredential
from node.store.records import Store
from node.trust.did import iso_z
from node.trust.proofs import sign

OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EDUFED_CREDENTIALS_CONTEXT = "https://w3id.org/edufed/credentials/v1"
ACHIEVEMENT_TYPES = frozenset({"OpenBadgeCredential", "AchievementCredential"})
NODE_SET = ("proof",)
MAX_ID_LENGTH = 255  # the store's key; a longer caller-supplied id is refused, never cut


class CredentialRefused(Unprocessable):
    code = "credential-refused"


def is_open_badge(credential: dict[str, Any]) -> bool:
    return bool(ACHIEVEMENT_TYPES & set(types_of(credential.get("type"))))


def check_open_badge(credential: dict[str, Any]) -> None:
    """The Open Badges 3.0 profile, for a credential that says it is an OpenBadgeCredential."""
    if OB3_CONTEXT not in as_list(credential.get("@context")):
        raise CredentialRefused("An achievement credential needs the Open Badges 3.0 context", detail=OB3_CONTEXT,
                                field="@context")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or not str(subject.get("id", "")).startswith("did:"):
        raise CredentialRefused("credentialSubject.id must be the learner's DID", field="credentialSubject.id")
    achievement = subject.get("achievement")
    if not isinstance(achievement, dict) or not achievement.get("name") or "Achievement" not in types_of(
        achievement.get("type")
    ):
        raise CredentialRefused("credentialSubject.achievement must be an Achievement with a name",
                                field="credentialSubject.achievement")


def _check_status_entries(node: Any, path: str = "") -> None:
    """Every BitstringStatusListEntry anywhere in the request follows its MUSTs (a MALFORMED_VALUE_ERROR else)."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_status_entries(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    if "BitstringStatusListEntry" in types_of(node.get("type")):
        list_index = node.get("statusListIndex")
        if not (isinstance(list_index, str) and list_index.isascii() and list_index.isdigit()):
            raise CredentialRefused("statusListIndex must be a decimal string", field=f"{path}.statusListIndex")
        if not is_url(node.get("statusListCredential")):
            raise CredentialRefused("statusListCredential must be a URL", field=f"{path}.statusListCredential")
        if not isinstance(node.get("statusPurpose"), str | list):
            raise CredentialRefused("statusPurpose is required", field=f"{path}.statusPurpose")
    for key, value in node.items():
        _check_status_entries(value, f"{path}.{key}" if path else key)


def check_request(credential: Any, issuer_did: str) -> dict[str, Any]:
    """The parts of an issue request the node relies on; a precise 422 for the first that is wrong.

    Any VC 2.0 credential may be issued; the Open Badges 3.0 profile applies to the credentials that say they
    are Open Badges. ``issuer`` may be left out (the node fills it); when given it must be the node's DID.
    """
    if not isinstance(credential, dict):
        raise CredentialRefused("credential must be a JSON object", field="credential")
    for member in NODE_SET:
        if member in credential:
            raise CredentialRefused(f"{member} is set by the issuing node", field=member)
    if "issuer" in credential:
        issuer = credential["issuer"]
        issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
        if issuer_id != issuer_did:
            raise CredentialRefused("This node issues only in its own name", detail=f"issuer must be {issuer_did}",
                                    field="issuer")
    if credential_version(credential) == 1 and is_open_badge(credential):
        raise CredentialRefused("Open Badges credentials are issued as VC 2.0", field="@context",
                                detail=f"the first @context must be {CREDENTIALS_V2_CONTEXT}")
    if isinstance(credential.get("id"), str) and len(credential["id"]) > MAX_ID_LENGTH:
        raise CredentialRefused("id is too long", detail=f"at most {MAX_ID_LENGTH} characters", field="id")
    draft = {"issuer": issuer_did, **credential}
    if credential_version(credential) == 1:
        draft.setdefault("issuanceDate", "2000-01-01T00:00:00Z")  # the node fills it: not the caller's mistake
    check_credential(draft, expand_terms=False)
    _check_status_entries(credential)
    if is_open_badge(credential):
        check_open_badge(credential)
    return credential


class CredentialIssuer:
    def __init__(
        self, store: Store, issuer_did: str, issuer_name: str, signer: Callable[[], Signer], registry: StatusRegistry
    ) -> None:
        self.store = store
        self.issuer_did = issuer_did
        self.issuer_name = issuer_name
        self.signer = signer
        self.registry = registry

    def _draft(self, credential: dict[str, Any], now: datetime) -> dict[str, Any]:
        """What the node fills: an id unless given, its issuer (an Open Badges Profile for Open Badges),
        ``validFrom`` unless given (or unless that would come after a given ``validUntil``)."""
        draft = {**credential, "id": credential.get("id") or f"urn:uuid:{uuid.uuid4()}"}
        if is_open_badge(credential):
            draft["issuer"] = {"id": self.issuer_did, "type": ["Profile"], "name": self.issuer_name}
        else:
            draft.setdefault("issuer", self.issuer_did)
        if credential_version(credential) == 1:  # VC 1.1: issuanceDate is required
            draft.setdefault("issuanceDate", iso_z(now))
            return draft
        until = parse_date_time(credential.get("validUntil"))
        if "validFrom" not in credential and (until is None or until >= now):
            draft["validFrom"] = iso_z(now)
        return draft

    async def issue(self, credential: Any) -> dict[str, Any]:
        """Sign and keep a new credential; two concurrent issuers drawing the same index retry."""
        check_request(credential, self.issuer_did)
        # The terms must mean something before anything is drawn or signed (safe-mode expansion).
        try:
            await asyncio.to_thread(check_expands, {"issuer": self.issuer_did, **credential})
        except DataModelError as error:
            raise CredentialRefused(error.title, detail=error.detail, field=error.field) from error
        for attempt in range(3):
            if "id" in credential:
                with self.store.bound():
                    if await IssuedCredential.exists(id=credential["id"]):
                        raise Conflict("A credential with this id was already issued", field="id",
                                       detail=str(credential["id"]))
            try:
                return await self._issue_once(credential)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _issue_once(self, credential: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).replace(microsecond=0)
        draft = self._draft(credential, now)
        signer = self.signer()
        with self.store.bound():
            async with in_transaction():
                group, index = await self.registry.allocate()
                # the caller's own status entries are kept; the node's come after them. A VC 1.1 credential
                # gets none: its context does not define Bitstring Status List entries.
                if credential_version(credential) == 2:
                    draft["credentialStatus"] = [*as_list(credential.get("credentialStatus")),
                                                 *self.registry.entries(group, index)]
                signed = await asyncio.to_thread(sign, draft, signer.key, signer.verification_method, now)
                subject = next(iter(subject_ids(signed)), "")
                await IssuedCredential.create(
                    id=signed["id"], subject=subject[:512],
                    document=json.dumps(signed, ensure_ascii=False), status_group=group, status_index=index,
                    issued_at=now,
                )
        return signed
