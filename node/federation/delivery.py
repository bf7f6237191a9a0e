"""Push: turning the outbox into signed POSTs to follower inboxes, from a queue that survives restarts.

Two steps, each one transaction, so a crash anywhere resumes where it stopped:

1. *fan-out* reads the outbox past the ``fanout`` counter and writes one delivery row per follower inbox
   (the row holds the exact body to send), then moves the counter;
2. *delivery* claims due rows with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several workers share
   one queue), signs and POSTs them. Success closes a row; 404/410 and other permanent refusals fail it at
   once; anything else retries with exponential backoff and jitter until ``MAX_ATTEMPTS``. A row's last
   status and error always say why it ended as it did. An inbox host that keeps failing opens a circuit
   breaker, so a dead peer does not hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from node.catalog.records import Signer
from node.config import NodeConfig
from node.federation.activities import ACTIVITY_MEDIA_TYPE, actor_id, note_activity, record_activity
from node.federation.http_signatures import sign_cavage, sign_rfc9421
from node.net.client import FetchError, SafeClient
from node.store.feed import FeedEntry, entries_after, take
from node.store.models import Counter, Delivery, Follower, Record
from node.store.records import Store
from node.trust.rsa_keys import RsaKey

log = logging.getLogger(__name__)

FANOUT = "fanout"
MAX_ATTEMPTS = 15
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 3600.0
BREAKER_THRESHOLD = 5
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 413, 415, 422})  # a retry would not help
RFC9421 = "rfc9421"
CAVAGE = "cavage"


def _is_replay(body: bytes) -> bool:
    try:
        problem = json.loads(body)
    except ValueError:
        return False
    return isinstance(problem, dict) and str(problem.get("type", "")).endswith("#replay")


def backoff_seconds(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter around its middle (0.5x-1.5x), capped."""
    return float(min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1)) * rng.uniform(0.5, 1.5))


@dataclass
class Breaker:
    """Consecutive failures of one inbox host, and until when deliveries to it wait."""

    failures: int = 0
    open_until: datetime | None = None


@dataclass
class DeliveryStats:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    breakers: dict[str, Breaker] = field(default_factory=dict)


class Deliverer:
    """Fan-out and delivery for one node."""

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        client: SafeClient,
        signer: Callable[[], Signer],
        rsa_key: RsaKey,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.client = client
        self.signer = signer
        self.rsa_key = rsa_key
        self.rng = rng or random.Random()
        self.stats = DeliveryStats()
        self.wake = asyncio.Event()
        self.claim_limit = 20  # rows one round takes; they are sent concurrently

    # -- fan-out ---------------------------------------------------------------------------------------

    async def fan_out(self, limit: int = 500) -> int:
        """Turn the next outbox entries into delivery rows; returns how many entries were fanned out."""
        with self.store.bound():
            async with in_transaction():
                await Counter.get_or_create(name=FANOUT, defaults={"value": 0})
                cursor = await Counter.filter(name=FANOUT).select_for_update().first()
                assert cursor is not None
                entries = await entries_after(int(cursor.value), limit)
                if not entries:
                    return 0
                followers = await Follower.all().order_by("id")
                rows: list[Delivery] = []
                now = datetime.now(UTC)
                for entry in entries:
                    rows.extend(await self._rows_for(entry, followers, now))
                await Delivery.bulk_create(rows, batch_size=500, ignore_conflicts=True)
                await take(FANOUT, entries[-1].seq - int(cursor.value))
                return len(entries)

    async def _rows_for(self, entry: FeedEntry, followers: list[Follower], now: datetime) -> list[Delivery]:
        record = await Record.get_or_none(iri=entry.object_iri)
        if record is None:  # purged since (tombstone retention): nothing left to announce
            return []
        document = json.loads(record.document)
        edufed_body = json.dumps(record_activity(self.config.base_url, entry, document), ensure_ascii=False)
        note_body: str | None = None
        if entry.type == "Create" and document.get("type") == "Course":
            note = note_activity(self.config.base_url, entry, document, self.config.languages)
            note_body = json.dumps(note, ensure_ascii=False)
        rows: list[Delivery] = []
        seen_inboxes: set[str] = set()
        for follower in followers:
            if follower.inbox in seen_inboxes:
                continue
            if follower.kind == "edufed":
                body, scheme, activity = edufed_body, RFC9421, f"{self.config.base_url}/outbox/{entry.seq}"
            elif note_body is not None:
                body, scheme, activity = note_body, CAVAGE, f"{self.config.base_url}/outbox/{entry.seq}#note"
            else:
                continue
            seen_inboxes.add(follower.inbox)
            rows.append(Delivery(inbox=follower.inbox, activity_id=activity, body=body, signature_scheme=scheme,
                                 next_attempt_at=now))
        return rows

    async def enqueue(self, inbox: str, activity: dict[str, Any], scheme: str) -> None:
        """Queue one activity (a Follow, an Accept, an Undo) for one inbox."""
        with self.store.bound():
            await Delivery.bulk_create(
                [Delivery(inbox=inbox, activity_id=str(activity["id"]), body=json.dumps(activity, ensure_ascii=False),
                          signature_scheme=scheme, next_attempt_at=datetime.now(UTC))],
                ignore_conflicts=True,
            )
        self.wake.set()

    # -- delivery --------------------------------------------------------------------------------------

    async def claim(self, limit: int | None = None) -> list[Delivery]:
        """Take due rows (and rows whose worker's lease ran out) for this worker."""
        now = datetime.now(UTC)
        with self.store.bound():
            async with in_transaction():
                due = Q(state="pending", next_attempt_at__lte=now) | Q(state="delivering", lease_until__lt=now)
                open_rows = Delivery.filter(state__in=["pending", "delivering"]).filter(due)  # the partial index
                rows = await open_rows.order_by("next_attempt_at", "id").limit(
                    limit or self.claim_limit
                ).select_for_update(skip_locked=True)
                if rows:
                    await Delivery.filter(id__in=[r.id for r in rows]).update(
                        state="delivering",
                        lease_until=now + timedelta(seconds=self.config.federation.delivery_lease_seconds),
                    )
                return list(rows)

    async def run_once(self) -> int:
        """One round: fan out, then deliver what is due. Returns the number of deliveries attempted."""
        await self.fan_out()
        rows = await self.claim()
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def run_forever(self, idle_seconds: float = 1.0) -> None:
        while True:
            try:
                attempted = await self.run_once()
            except Exception:  # a broken round must not stop the queue; the rows stay and are retried
                log.exception("delivery round failed")
                attempted = 0
            if not attempted:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), idle_seconds)

    def _headers(self, row: Delivery, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": ACTIVITY_MEDIA_TYPE, "Accept": ACTIVITY_MEDIA_TYPE}
        if row.signature_scheme == CAVAGE:
            key_id = f"{actor_id(self.config.base_url)}#main-key"
            headers.update(sign_cavage("POST", row.inbox, headers, body, self.rsa_key, key_id))
        else:
            signer = self.signer()
            headers.update(sign_rfc9421("POST", row.inbox, headers, body, signer.key, signer.verification_method))
        return headers

    async def _deliver(self, row: Delivery) -> None:
        host = urlsplit(row.inbox).netloc
        breaker = self.stats.breakers.setdefault(host, Breaker())
        now = datetime.now(UTC)
        if breaker.open_until is not None and breaker.open_until > now:
            await self._finish(row, "pending", None, f"circuit open for {host}", retry_at=breaker.open_until,
                               count_attempt=False)
            return
        body = row.body.encode("utf-8")
        try:
            response = await self.client.request("POST", row.inbox, body=body, headers=self._headers(row, body),
                                                 follow_redirects=False)
        except FetchError as error:
            await self._failed_attempt(row, breaker, error.status, error.reason, permanent=error.permanent)
            return
        if 200 <= response.status < 300:
            breaker.failures, breaker.open_until = 0, None
            self.stats.delivered += 1
            await self._finish(row, "done", response.status, None)
            return
        reason = response.body[:500].decode("utf-8", "replace")
        if response.status == 403 and _is_replay(response.body):
            # The inbox has this activity already: an earlier attempt got through (the worker that made it may
            # have died before recording it). Delivered, once.
            self.stats.delivered += 1
            await self._finish(row, "done", response.status, "already received by the inbox")
            return
        if response.status == 401 and row.signature_scheme == RFC9421:
            # An inbox that cannot verify RFC 9421 signatures may speak draft-cavage: try that once.
            with self.store.bound():
                await Delivery.filter(id=row.id).update(signature_scheme=CAVAGE)
            await self._finish(row, "pending", 401, f"RFC 9421 refused, retrying with draft-cavage: {reason}",
                               retry_at=datetime.now(UTC))
            return
        await self._failed_attempt(row, breaker, response.status, reason,
                                   permanent=response.status in PERMANENT_STATUSES)

    async def _failed_attempt(
        self, row: Delivery, breaker: Breaker, status: int | None, reason: str, *, permanent: bool
    ) -> None:
        attempts = row.attempts + 1
        if permanent or attempts >= MAX_ATTEMPTS:
            self.stats.failed += 1
            why = reason if permanent else f"gave up after {attempts} attempts: {reason}"
            await self._finish(row, "failed", status, why)
            return
        breaker.failures += 1
        if breaker.failures >= BREAKER_THRESHOLD:
            pause = backoff_seconds(breaker.failures - BREAKER_THRESHOLD + 1, self.rng)
            breaker.open_until = datetime.now(UTC) + timedelta(seconds=pause)
        self.stats.retried += 1
        retry_at = datetime.now(UTC) + timedelta(seconds=backoff_seconds(attempts, self.rng))
        await self._finish(row, "pending", status, reason, retry_at=retry_at)

    async def _finish(
        self,
        row: Delivery,
        state: str,
        status: int | None,
        error: str | None,
        *,
        retry_at: datetime | None = None,
        count_attempt: bool = True,
    ) -> None:
        changes: dict[str, Any] = {"state": state, "last_status": status, "last_error": error, "lease_until": None}
        if count_attempt:
            changes["attempts"] = row.attempts + 1
        if retry_at is not None:
            changes["next_attempt_at"] = retry_at
        if state in ("done", "failed"):
            changes["finished_at"] = datetime.now(UTC)
        with self.store.bound():
            await Delivery.filter(id=row.id).update(**changes)

    async def queue_depth(self) -> dict[str, int]:
        with self.store.bound():
            return {state: await Delivery.filter(state=state).count() for state in ("pending", "delivering", "failed")}
