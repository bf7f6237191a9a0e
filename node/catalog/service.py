"""The catalog of one node: publish, update, withdraw and read records.

CPU-bound work (canonicalization, SHACL, signing) runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from node.catalog.indexing import index_entry
from node.catalog.records import (
    Signer,
    check_record,
    draft,
    local_id_from_iri,
    new_local_id,
    seal,
    to_stored,
    tombstone,
    utc_now,
)
from node.errors import Conflict, Gone, NotFound
from node.store.records import Store, StoredRecord


class Catalog:
    def __init__(
        self,
        store: Store,
        records_base: str,
        signer: Callable[[], Signer],
        languages: tuple[str, ...] = ("en",),
        clock: Callable[[], datetime] = utc_now,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.records_base = records_base
        self._signer = signer
        self.languages = languages
        self._clock = clock
        self._on_change = on_change  # federation pushes at once instead of at its next poll

    def _build(self, body: dict[str, Any], iri: str, version: int) -> dict[str, Any]:
        now = self._clock()
        document = draft(body, iri, version, now)
        check_record(document)
        return seal(document, self._signer(), now)

    async def publish(self, body: dict[str, Any]) -> StoredRecord:
        """Create a record; the body may name its own id under this node's records base."""
        requested = body.get("id")
        local_id = (
            local_id_from_iri(requested, self.records_base) if isinstance(requested, str) else new_local_id()
        )
        iri = self.records_base + local_id
        if await self.store.get(iri) is not None:
            raise Conflict("A record with this id already exists", detail=iri, field="id")
        signed = await asyncio.to_thread(self._build, body, iri, 1)
        record = to_stored(signed, local_id)
        await self.store.save(record, index_entry(signed, self.languages), expected_version=None)
        self._on_change()
        return record

    async def update(self, local_id: str, body: dict[str, Any], if_version: int | None = None) -> StoredRecord:
        """Replace a live record with a new version (optimistic: a concurrent change gives 409)."""
        current = await self.own(local_id)
        if if_version is not None and if_version != current.version:
            raise Conflict(
                "Record has changed", detail=f"current version is {current.version}", field="If-Match"
            )
        requested = body.get("id")
        if requested is not None and requested != current.iri:
            raise Conflict("Body id does not match the record IRI", detail=str(requested), field="id")
        signed = await asyncio.to_thread(self._build, body, current.iri, current.version + 1)
        record = to_stored(signed, local_id)
        await self.store.save(record, index_entry(signed, self.languages), expected_version=current.version)
        self._on_change()
        return record

    async def withdraw(self, local_id: str) -> StoredRecord:
        """Replace a record by a signed Tombstone, so mirrors learn of the deletion and can verify it."""
        current = await self.own(local_id)
        now = self._clock()
        document = tombstone(current.iri, current.type, current.version + 1, now)
        signed = await asyncio.to_thread(seal, document, self._signer(), now)
        record = to_stored(signed, local_id, deleted=True)
        await self.store.save(record, None, expected_version=current.version)
        self._on_change()
        return record

    async def own(self, local_id: str) -> StoredRecord:
        """A live record of this node, or 404/410."""
        record = await self.store.get_local(local_id)
        if record is None:
            raise NotFound("No such record", detail=self.records_base + local_id)
        if record.deleted:
            raise Gone("Record was withdrawn", detail=record.iri, extra={"tombstone": json.loads(record.document_json)})
        return record

    async def by_iri(self, iri: str) -> StoredRecord:
        record = await self.store.get(iri)
        if record is None:
            raise NotFound("No such record", detail=iri, field="iri")
        return record
