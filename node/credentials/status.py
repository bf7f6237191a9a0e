"""The status lists an issuing node publishes (W3C Bitstring Status List v1.0), one pair per group.

Each issued credential gets one random index, used in the group's revocation list and in its suspension list.
Indexes are drawn at random among the free ones, so a list's position says nothing about when or to whom a
credential was issued. A list is re-signed whenever a status changes and served as it was signed.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from node.catalog.records import Signer
from node.credentials.bitstring import MIN_ENTRIES, Bitstring, encode
from node.errors import NotFound, Unprocessable
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.store.models import IssuedCredential, StatusList
from node.store.records import Store
from node.trust.did import iso_z
from node.trust.proofs import sign

PURPOSES = ("revocation", "suspension")
LIST_SIZE = MIN_ENTRIES
FILL_LIMIT = LIST_SIZE // 2  # a fuller group makes random draws slow and indexes guessable: start a new one
STATUSES = {"revoked": ("revocation", True), "suspended": ("suspension", True), "reinstated": ("suspension", False)}


class StatusUpdateError(Unprocessable):
    code = "status-update"


def list_id(group: int, purpose: str) -> str:
    return f"{group}-{purpose}"


class StatusRegistry:
    def __init__(self, store: Store, base_url: str, issuer: str, signer: Callable[[], Signer]) -> None:
        self.store = store
        self.base_url = base_url
        self.issuer = issuer
        self.signer = signer

    def list_url(self, group: int, purpose: str) -> str:
        return f"{self.base_url}/credentials/status/{list_id(group, purpose)}"

    def entries(self, group: int, index: int) -> list[dict[str, Any]]:
        """The ``credentialStatus`` of a credential at ``index`` of ``group``."""
        return [
            {
                "id": f"{self.list_url(group, purpose)}#{index}",
                "type": "BitstringStatusListEntry",
                "statusPurpose": purpose,
                "statusListIndex": str(index),
                "statusListCredential": self.list_url(group, purpose),
            }
            for purpose in PURPOSES
        ]

    async def allocate(self) -> tuple[int, int]:
        """A free random (group, index) for a new credential (call inside the issuing transaction)."""
        group = await self._open_group()
        while True:  # the group is at most half full, so this takes two draws on average
            index = secrets.randbelow(LIST_SIZE)
            if not await IssuedCredential.exists(status_group=group, status_index=index):
                return group, index

    async def _open_group(self) -> int:
        last = await StatusList.all().order_by("-group").first()
        group = last.group if last else 1
        if last is None or await IssuedCredential.filter(status_group=group).count() >= FILL_LIMIT:
            group = group + 1 if last else 1
            for purpose in PURPOSES:
                await StatusList.get_or_create(
                    id=list_id(group, purpose),
                    defaults={"group": group, "purpose": purpose, "size": LIST_SIZE,
                              "bits": Bitstring(LIST_SIZE).to_bytes()},
                )
                await self._resign(list_id(group, purpose))
        return group

    def _list_credential(self, row: StatusList) -> dict[str, Any]:
        url = self.list_url(row.group, row.purpose)
        document = {
            "@context": [CREDENTIALS_V2_CONTEXT],
            "id": url,
            "type": ["VerifiableCredential", "BitstringStatusListCredential"],
            "issuer": self.issuer,
            "validFrom": iso_z(datetime.now(UTC).replace(microsecond=0)),
            "credentialSubject": {
                "id": f"{url}#list",
                "type": "BitstringStatusList",
                "statusPurpose": row.purpose,
                "encodedList": encode(Bitstring(row.size, data=bytes(row.bits))),
            },
        }
        signer = self.signer()
        return sign(document, signer.key, signer.verification_method, created=datetime.now(UTC).replace(microsecond=0))

    async def _resign(self, identifier: str) -> None:
        row = await StatusList.get(id=identifier)
        row.credential = json.dumps(self._list_credential(row))
        await row.save()

    async def update(self, credential_id: str, status: str) -> IssuedCredential:
        """Revoke (for good), suspend or reinstate a credential this node issued."""
        if status not in STATUSES:
            raise StatusUpdateError("Unknown status", detail=f"use one of {', '.join(STATUSES)}", field="status")
        purpose, value = STATUSES[status]
        with self.store.bound():
            async with in_transaction():
                issued = await IssuedCredential.filter(id=credential_id).select_for_update().first()
                if issued is None:
                    raise NotFound("No credential with this id was issued here", detail=credential_id,
                                   field="credentialId")
                if issued.revoked and status != "revoked":
                    raise StatusUpdateError("A revoked credential stays revoked", detail=credential_id,
                                            field="status")
                row = await StatusList.filter(id=list_id(issued.status_group, purpose)).select_for_update().first()
                assert row is not None
                bits = Bitstring(row.size, data=bytes(row.bits))
                bits.set(issued.status_index, value)
                row.bits = bits.to_bytes()
                row.credential = json.dumps(self._list_credential(row))
                await row.save()
                if purpose == "revocation":
                    issued.revoked = True
                else:
                    issued.suspended = value
                await issued.save()
                return issued

    async def own_list(self, url: str) -> dict[str, Any] | None:
        """The list credential at ``url`` when it is one of this node's (None for another issuer's URL): read
        from the database, so a status change counts at once for the node's own verifier."""
        prefix = f"{self.base_url}/credentials/status/"
        if not url.startswith(prefix):
            return None
        document: dict[str, Any] = json.loads(await self.list_credential(url.removeprefix(prefix)))
        return document

    async def list_credential(self, identifier: str) -> str:
        with self.store.bound():
            row = await StatusList.get_or_none(id=identifier)
        if row is None or row.credential is None:
            raise NotFound("No such status list", detail=identifier)
        return row.credential
