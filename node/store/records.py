"""The Store: how the rest of the node reads and writes records, without knowing the ORM.

Each Store owns its own tortoise context, so several nodes can live in one process (the federation tests run
three). Every method binds that context for its own duration only; concurrent requests each bind their own.
A record and its index rows are always written in one transaction, and a version check inside that
transaction turns a lost update into a 409 instead of silently overwriting a newer record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import TortoiseContext, _current_context
from tortoise.exceptions import IntegrityError
from tortoise.migrations.executor import MigrationExecutor
from tortoise.transactions import in_transaction

from node.errors import Conflict
from node.store.feed import append_to_feed
from node.store.models import Activity, Record, RecordCategory, RecordIndex

APPS = {"models": {"models": ["node.store.models"], "migrations": "node.store.migrations"}}


@dataclass(frozen=True)
class StoredRecord:
    """A record as stored: the signed JSON plus the columns the node queries by."""

    iri: str
    local_id: str | None
    origin: str
    type: str
    version: int
    date_modified: datetime
    document_json: str
    deleted: bool = False
    mirrored_from: str | None = None


@dataclass(frozen=True)
class IndexEntry:
    """What search needs of a live record (tombstones have none)."""

    type: str
    name: str
    text: str
    language: str | None
    categories: tuple[str, ...]
    latitude: float | None
    longitude: float | None
    level: str | None = None
    license: str | None = None
    free: bool | None = None
    mode: str | None = None
    tokens: str = ""


def _stored(row: Record) -> StoredRecord:
    return StoredRecord(
        iri=row.iri,
        local_id=row.local_id,
        origin=row.origin,
        type=row.type,
        version=row.version,
        date_modified=row.date_modified,
        document_json=row.document,
        deleted=row.deleted,
        mirrored_from=row.mirrored_from,
    )


def _columns(record: StoredRecord) -> dict[str, Any]:
    return {
        "iri": record.iri,
        "local_id": record.local_id,
        "origin": record.origin,
        "type": record.type,
        "version": record.version,
        "date_modified": record.date_modified,
        "document": record.document_json,
        "deleted": record.deleted,
        "mirrored_from": record.mirrored_from,
    }


class Store:
    """Records and their index in one database (SQLite file or PostgreSQL)."""

    def __init__(self, context: TortoiseContext) -> None:
        self._context = context
        self.dialect = ""  # "sqlite" or "postgres", known once open

    @classmethod
    async def open(cls, database_url: str) -> Store:
        """Connect and bring the schema up to date with the migrations shipped in this package."""
        context = TortoiseContext()
        store = cls(context)
        with store.bound():
            await context.init(config={"connections": {"default": database_url}, "apps": APPS}, _create_db=False)
            await MigrationExecutor(context.db(), APPS).migrate()
            store.dialect = context.db().capabilities.dialect
        return store

    def connection(self) -> BaseDBAsyncClient:
        """The database connection, for the few queries (search) that need SQL the ORM cannot say."""
        return self._context.db()

    async def ping(self) -> None:
        """Raise unless the database answers."""
        with self.bound():
            await self.connection().execute_query("SELECT 1")

    async def close(self) -> None:
        with self.bound():
            await self._context.close_connections()

    @contextmanager
    def bound(self) -> Iterator[None]:
        """Make this store's tortoise context the current one for the calling task only."""
        token = _current_context.set(self._context)
        try:
            yield
        finally:
            _current_context.reset(token)

    async def get(self, iri: str) -> StoredRecord | None:
        with self.bound():
            row = await Record.get_or_none(iri=iri)
            return _stored(row) if row else None

    async def get_local(self, local_id: str) -> StoredRecord | None:
        with self.bound():
            row = await Record.get_or_none(local_id=local_id)
            return _stored(row) if row else None

    async def count(self, *, include_deleted: bool = False) -> int:
        with self.bound():
            query = Record.all() if include_deleted else Record.filter(deleted=False)
            return await query.count()

    async def iter_records(
        self, *, after_id: int = 0, limit: int = 100, origin: str | None = None
    ) -> list[tuple[int, StoredRecord]]:
        """One page of records (tombstones included) in storage order, for cursor paging; ``origin`` (a
        host[:port]) keeps the records of one origin node only."""
        with self.bound():
            query = Record.filter(id__gt=after_id)
            if origin is not None:
                query = query.filter(origin=origin)
            rows = await query.order_by("id").limit(limit)
            return [(row.id, _stored(row)) for row in rows]

    async def save(
        self, record: StoredRecord, index: IndexEntry | None, *, expected_version: int | None, feed: bool = True
    ) -> None:
        """Write one record with its index; ``expected_version`` None means it must not exist yet."""
        await self.save_many([(record, index)], expected_versions=[expected_version], feed=feed)

    async def save_many(
        self,
        items: Sequence[tuple[StoredRecord, IndexEntry | None]],
        *,
        expected_versions: Sequence[int | None] | None = None,
        feed: bool = True,
    ) -> None:
        """Write own records with their index rows and, with ``feed``, their outbox activities: all or nothing.

        Without ``expected_versions`` a record of version N replaces version N-1 (version 1 is new).
        """
        expected = expected_versions or [r.version - 1 if r.version > 1 else None for r, _ in items]
        with self.bound():
            async with in_transaction() as connection:
                new = [(r, i) for (r, i), e in zip(items, expected, strict=True) if e is None]
                changed = [(r, i, e) for (r, i), e in zip(items, expected, strict=True) if e is not None]
                try:
                    await Record.bulk_create([Record(**_columns(r)) for r, _ in new], batch_size=1000)
                except IntegrityError:
                    raise Conflict("A record with this id already exists", field="id") from None
                for record, _, version in changed:
                    updated = await Record.filter(iri=record.iri, version=version).update(
                        **_columns(record), stored_at=datetime.now(UTC)  # a queryset update skips auto_now
                    )
                    if updated != 1:
                        raise Conflict("Record has changed", detail=f"{record.iri} is no longer version {version}",
                                       field="version")
                ids = await self._ids([r.iri for r, _ in items])
                if changed:
                    await self._delete_index(connection, [ids[r.iri] for r, _, _ in changed])
                await self._write_index(connection, [(ids[r.iri], r, i) for r, i in items if i is not None])
                if feed:
                    await append_to_feed([r for r, _ in items])

    async def apply_mirrored(self, record: StoredRecord, index: IndexEntry | None) -> bool:
        """Store another node's record if it is newer than the copy held; False when it changes nothing.

        Applying the same version twice (a push and a pull of the same change) is a no-op, and an older
        version never replaces a newer one, whatever order deliveries arrive in.
        """
        with self.bound():
            async with in_transaction() as connection:
                current = await Record.filter(iri=record.iri).select_for_update().first()
                if current is not None and (current.local_id is not None or current.version >= record.version):
                    return False
                if current is None:
                    try:
                        created = await Record.create(**_columns(record))
                    except IntegrityError:  # a concurrent apply of the same record won
                        return False
                    record_id = created.id
                else:
                    await Record.filter(id=current.id).update(**_columns(record), stored_at=datetime.now(UTC))
                    record_id = current.id
                    await self._delete_index(connection, [record_id])
                if index is not None:
                    await self._write_index(connection, [(record_id, record, index)])
                return True

    async def mirrored_versions(self, origin: str) -> dict[str, tuple[int, bool]]:
        """IRI -> (version, deleted) of every record held from ``origin`` (host[:port])."""
        with self.bound():
            rows = await Record.filter(origin=origin, local_id__isnull=True).values_list("iri", "version", "deleted")
            return {str(iri): (int(version), bool(deleted)) for iri, version, deleted in rows}

    async def remove_mirrored(self, iris: Sequence[str]) -> int:
        """Forget mirrored records their origin no longer has (found by a full resync)."""
        with self.bound():
            async with in_transaction() as connection:
                query = Record.filter(iri__in=list(iris), local_id__isnull=True)
                ids: list[int] = list(await query.values_list("id", flat=True))  # type: ignore[arg-type]
                await self._delete_index(connection, ids)
                return await Record.filter(id__in=ids).delete()

    async def live_versions(self, origin: str, *, own: bool) -> list[tuple[str, int]]:
        """(IRI, version) of the live records of ``origin``, for the anti-entropy digest."""
        with self.bound():
            query = Record.filter(origin=origin, deleted=False, local_id__isnull=not own)
            rows = await query.order_by("iri").values_list("iri", "version")
            return [(str(iri), int(version)) for iri, version in rows]

    async def purge_tombstones(self, before: datetime) -> int:
        """Forget Tombstones (own and mirrored) stored before ``before``, with their outbox activities.

        Followers that were away longer than the retention learn of such deletions through the anti-entropy
        digest, whose full resync drops what the origin no longer lists.
        """
        with self.bound():
            async with in_transaction():
                iris = await Record.filter(deleted=True, stored_at__lt=before).values_list("iri", flat=True)
                await Activity.filter(object_iri__in=list(iris)).delete()
                return await Record.filter(iri__in=list(iris)).delete()

    @staticmethod
    async def _ids(iris: list[str]) -> dict[str, int]:
        """Primary keys by IRI (bulk inserts do not return them on every backend)."""
        ids: dict[str, int] = {}
        for start in range(0, len(iris), 1000):
            ids.update(await Record.filter(iri__in=iris[start : start + 1000]).values_list("iri", "id"))
        return ids

    async def _delete_index(self, connection: BaseDBAsyncClient, record_ids: list[int]) -> None:
        """Remove the search rows of these records (the full-text rows too: SQLite's FTS5 table has no cascade)."""
        if not record_ids:
            return
        await RecordIndex.filter(record_id__in=record_ids).delete()
        await RecordCategory.filter(record_id__in=record_ids).delete()
        if self.dialect == "sqlite":
            for start in range(0, len(record_ids), 500):
                chunk = record_ids[start : start + 500]
                await connection.execute_query(
                    f"DELETE FROM record_fts WHERE rowid IN ({','.join('?' * len(chunk))})", chunk
                )

    async def _write_index(
        self, connection: BaseDBAsyncClient, entries: list[tuple[int, StoredRecord, IndexEntry]]
    ) -> None:
        await RecordIndex.bulk_create(
            [
                RecordIndex(record_id=record_id, type=e.type, name=e.name, text=e.text, language=e.language,
                            latitude=e.latitude, longitude=e.longitude, level=e.level, license=e.license,
                            free=e.free, mode=e.mode, tokens=e.tokens, origin=r.origin, modified=r.date_modified)
                for record_id, r, e in entries
            ],
            batch_size=1000,
        )
        await RecordCategory.bulk_create(
            [RecordCategory(record_id=record_id, category=c) for record_id, r, e in entries for c in e.categories],
            batch_size=1000,
        )
        if self.dialect == "sqlite" and entries:  # PostgreSQL derives its tsvector column by itself
            await connection.execute_many(
                "INSERT INTO record_fts(rowid, tokens) VALUES (?, ?)", [[rid, e.tokens] for rid, _, e in entries]
            )

    async def index_of(self, iri: str) -> IndexEntry | None:
        """The index row of a record (None for tombstones and unknown records)."""
        with self.bound():
            row = await RecordIndex.get_or_none(record__iri=iri)
            if row is None:
                return None
            categories = await RecordCategory.filter(record_id=row.pk).order_by("id").values_list("category", flat=True)
            return IndexEntry(type=row.type, name=row.name, text=row.text, language=row.language,
                              categories=tuple(str(c) for c in categories), latitude=row.latitude,
                              longitude=row.longitude, level=row.level, license=row.license, free=row.free,
                              mode=row.mode, tokens=row.tokens)
