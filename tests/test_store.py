"""The Store on a real database: migrations, versioned writes, all-or-nothing batches, isolated stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from node.errors import Conflict
from node.store.records import IndexEntry, Store, StoredRecord
from tests.conftest import MakeDatabaseUrl

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def record(local_id: str, version: int = 1, *, deleted: bool = False) -> StoredRecord:
    iri = f"https://a.example/records/{local_id}"
    return StoredRecord(iri, local_id, "a.example", "Course", version, NOW, f'{{"id":"{iri}","v":{version}}}', deleted)


def index(name: str, *categories: str) -> IndexEntry:
    return IndexEntry("Course", name, name, "en", categories, 60.17, 24.94)


async def test_reopening_a_database_keeps_its_records(database_url: str) -> None:
    store = await Store.open(database_url)
    await store.save(record("c1"), index("Pottery", "cat:02"), expected_version=None)
    await store.close()
    store = await Store.open(database_url)  # migrations already applied: nothing to do, nothing lost
    try:
        found = await store.get("https://a.example/records/c1")
        assert found == record("c1")
        assert await store.index_of(found.iri) == index("Pottery", "cat:02")
    finally:
        await store.close()


async def test_update_replaces_version_and_index_and_refuses_a_stale_version(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.save(record("c1"), index("Pottery", "cat:02"), expected_version=None)
        await store.save(record("c1", 2), index("Ceramics", "cat:07"), expected_version=1)
        with pytest.raises(Conflict):
            await store.save(record("c1", 3), index("Stale"), expected_version=1)
        with pytest.raises(Conflict):
            await store.save(record("c1"), index("Again"), expected_version=None)
        assert (await store.get_local("c1")) == record("c1", 2)
        assert await store.index_of("https://a.example/records/c1") == index("Ceramics", "cat:07")
    finally:
        await store.close()


async def test_tombstone_has_no_index_row_and_is_not_counted_as_live(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.save(record("c1"), index("Pottery"), expected_version=None)
        await store.save(record("c1", 2, deleted=True), None, expected_version=1)
        assert await store.index_of("https://a.example/records/c1") is None
        assert await store.count() == 0
        assert await store.count(include_deleted=True) == 1
    finally:
        await store.close()


async def test_a_batch_with_one_bad_item_writes_nothing(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.save(record("c1"), index("Pottery"), expected_version=None)
        batch = [(record(f"n{i}"), index(f"New {i}")) for i in range(5)] + [(record("c1"), index("Dup"))]
        with pytest.raises(Conflict):
            await store.save_many(batch)
        assert await store.count(include_deleted=True) == 1
        assert await store.index_of("https://a.example/records/n0") is None
    finally:
        await store.close()


async def test_batches_page_in_storage_order(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.save_many([(record(f"n{i:03}"), index(f"N{i}", f"cat:{i % 3}")) for i in range(250)])
        await store.save_many([(replace(record("n007", 2)), index("Seven again"))])
        first = await store.iter_records(limit=100)
        rest = await store.iter_records(after_id=first[-1][0], limit=1000)
        assert [r.local_id for _, r in first + rest] == [f"n{i:03}" for i in range(250)]
        assert (await store.get_local("n007")).version == 2  # type: ignore[union-attr]
    finally:
        await store.close()


async def test_two_stores_in_one_process_are_isolated(make_database_url: MakeDatabaseUrl) -> None:
    one, two = await Store.open(await make_database_url()), await Store.open(await make_database_url())
    try:
        await one.save(record("only-in-one"), index("One"), expected_version=None)
        assert await two.get_local("only-in-one") is None
        assert await one.get_local("only-in-one") is not None
    finally:
        await one.close()
        await two.close()
