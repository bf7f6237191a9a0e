"""The outbox as a change feed: one activity per change of an own record, numbered in commit order.

``append_to_feed`` runs inside the transaction that writes the records, so a record never changes without its
activity (and the reverse). Sequence numbers come from a counter row taken with a row lock: a second writer
waits for the first to commit, so numbers become visible in order and ``?after=N`` never skips a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tortoise.expressions import F

from node.store.models import Activity, Counter

FEED = "feed"


@dataclass(frozen=True)
class FeedEntry:
    seq: int
    type: str  # Create | Update | Delete
    object_iri: str
    object_version: int
    published: datetime


class RecordChange(Protocol):
    """What the feed needs of a written record (``StoredRecord`` is one), so the feed does not import the
    record store that calls it."""

    @property
    def iri(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def deleted(self) -> bool: ...


def activity_type(record: RecordChange) -> str:
    if record.deleted:
        return "Delete"
    return "Create" if record.version == 1 else "Update"


async def take(name: str, count: int) -> int:
    """Reserve ``count`` numbers of counter ``name`` (inside a transaction); returns the first."""
    await Counter.get_or_create(name=name, defaults={"value": 0})
    await Counter.filter(name=name).select_for_update().first()
    await Counter.filter(name=name).update(value=F("value") + count)
    row = await Counter.get(name=name)
    return int(row.value) - count + 1


async def append_to_feed(records: Sequence[RecordChange]) -> None:
    """Add the activities of these record changes to the outbox (call inside the writing transaction)."""
    if not records:
        return
    first = await take(FEED, len(records))
    now = datetime.now(UTC)
    await Activity.bulk_create(
        [
            Activity(seq=first + n, type=activity_type(r), object_iri=r.iri, object_version=r.version, published=now)
            for n, r in enumerate(records)
        ],
        batch_size=1000,
    )


def _entry(row: Activity) -> FeedEntry:
    return FeedEntry(row.seq, row.type, row.object_iri, row.object_version, row.published)


async def entries_after(after: int, limit: int) -> list[FeedEntry]:
    rows = await Activity.filter(seq__gt=after).order_by("seq").limit(limit)
    return [_entry(row) for row in rows]


async def entry(seq: int) -> FeedEntry | None:
    row = await Activity.get_or_none(seq=seq)
    return _entry(row) if row else None


async def head() -> int:
    """The highest sequence number written so far (0 for an empty feed)."""
    row = await Counter.get_or_none(name=FEED)
    return int(row.value) if row else 0
