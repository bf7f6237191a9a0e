"""Issuing Open Badges 3.0 achievement credentials (W3C VC 2.0) signed by the node.

The request brings what only the institution knows (the learner's DID, the achievement, the credits); the
node fills what it vouches for: ``id``, ``issuer``, ``validFrom`` (unless given), ``credentialStatus`` and the
``eddsa-rdfc-2022`` proof. The credential is stored with its status index in the same transaction, so a
credential exists exactly when it can be revoked.
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
from node.credentials.status import StatusRegistry
from node.errors import Unprocessable
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.store.models import IssuedCredential
from node.store.records import Store
from node.trust.did import iso_z
from node.trust.proofs import sign

OB3_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EDUFED_CREDENTIALS_CONTEXT = "https://w3id.org/edufed/credentials/v1"
ACHIEVEMENT_TYPES = frozenset({"OpenBadgeCredential", "AchievementCredential"})
NODE_SET = ("id", "credentialStatus", "proof")


class CredentialRefused(Unprocessable):
    code = "credential-refused"


def types_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def check_request(credential: Any, issuer_did: str) -> dict[str, Any]:
    """The parts of an issue request the node relies on; a precise 422 for the first that is wrong."""
    if not isinstance(credential, dict):
        raise CredentialRefused("credential must be a JSON object", field="credential")
    contexts = credential.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    if not contexts or contexts[0] != CREDENTIALS_V2_CONTEXT:
        raise CredentialRefused("A credential's first context must be VC 2.0", detail=CREDENTIALS_V2_CONTEXT,
                                field="@context")
    if OB3_CONTEXT not in contexts:
        raise CredentialRefused("An achievement credential needs the Open Badges 3.0 context", detail=OB3_CONTEXT,
                                field="@context")
    types = types_of(credential.get("type"))
    if "VerifiableCredential" not in types or not ACHIEVEMENT_TYPES & set(types):
        raise CredentialRefused("type must include VerifiableCredential and OpenBadgeCredential",
                                detail=str(credential.get("type")), field="type")
    for member in NODE_SET:
        if member in credential:
            raise CredentialRefused(f"{member} is set by the issuing node", field=member)
    issuer = credential.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer is not None and issuer_id != issuer_did:
        raise CredentialRefused("This node issues only in its own name", detail=f"issuer must be {issuer_did}",
                                field="issuer")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or not str(subject.get("id", "")).startswith("did:"):
        raise CredentialRefused("credentialSubject.id must be the learner's DID", field="credentialSubject.id")
    achievement = subject.get("achievement")
    if not isinstance(achievement, dict) or not achievement.get("name") or "Achievement" not in types_of(
        achievement.get("type")
    ):
        raise CredentialRefused("credentialSubject.achievement must be an Achievement with a name",
                                field="credentialSubject.achievement")
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
        return {
            **credential,
            "id": f"urn:uuid:{uuid.uuid4()}",
            "issuer": {"id": self.issuer_did, "type": ["Profile"], "name": self.issuer_name},
            "validFrom": credential.get("validFrom") or iso_z(now),
        }

    async def issue(self, credential: Any) -> dict[str, Any]:
        """Sign and keep a new credential; two concurrent issuers drawing the same index retry."""
        check_request(credential, self.issuer_did)
        for attempt in range(3):
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
                draft["credentialStatus"] = self.registry.entries(group, index)
                signed = await asyncio.to_thread(sign, draft, signer.key, signer.verification_method, now)
                await IssuedCredential.create(
                    id=signed["id"], subject=signed["credentialSubject"]["id"],
                    document=json.dumps(signed, ensure_ascii=False), status_group=group, status_index=index,
                    issued_at=now,
                )
        return signed
