"""The delivery queue against a real inbox server: signed POSTs, retries with backoff, permanent failures,
the circuit breaker, and rows left behind by a worker that died mid-delivery."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from node.bootstrap import init_node
from node.catalog.records import node_signer
from node.federation import delivery
from node.federation.delivery import RFC9421, Deliverer
from node.federation.http_signatures import parse_signature, verify_signature_params
from node.net.client import FetchPolicy, SafeClient
from node.store.models import Delivery
from node.store.records import Store
from node.trust.did import build_did_document, did_web_from_base_url, find_verification_method
from node.trust.keyring import KeyRing
from node.trust.multikey import decode_public_multibase
from node.trust.rsa_keys import load_or_create_rsa_key
from tests.harness import free_port


@dataclass
class FakeInbox:
    """An inbox that answers with the statuses it is told, and checks every signature it gets."""

    statuses: list[int] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    did_document: dict[str, object] = field(default_factory=dict)
    url: str = ""

    schemes: list[str] = field(default_factory=list)
    rsa_public_key: object = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        params = parse_signature("POST", str(request.url), request.headers)
        if params.scheme == "rfc9421":
            method = find_verification_method(self.did_document, params.key_id, "authentication")
            key: object = decode_public_multibase(str(method["publicKeyMultibase"]))
        else:
            key = self.rsa_public_key
        verify_signature_params(params, "POST", str(request.url), request.headers, body, key)
        self.schemes.append(params.scheme)
        self.received.append(body)
        return web.Response(status=self.statuses.pop(0) if self.statuses else 202)


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Deliverer, FakeInbox, Store]]:
    config, _ = await init_node(tmp_path / "node", base_url="http://127.0.0.1:1", name="Sender",
                                database_url=database_url, allow_private_networks=True)
    keyring = KeyRing(config.keys_dir)
    inbox = FakeInbox(did_document=build_did_document(did_web_from_base_url(config.base_url), keyring.entries()))
    app = web.Application()
    app.router.add_post("/inbox", inbox.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    inbox.url = f"http://127.0.0.1:{port}/inbox"
    inbox.rsa_public_key = load_or_create_rsa_key(config.keys_dir).public_key
    store = await Store.open(database_url)
    try:
        async with SafeClient(FetchPolicy(allow_private=True)) as client:
            yield (Deliverer(config, store, client, lambda: node_signer(config.base_url, keyring),
                             load_or_create_rsa_key(config.keys_dir), rng=random.Random(7)), inbox, store)
    finally:
        await store.close()
        await runner.cleanup()


def activity(n: int) -> dict[str, object]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"http://127.0.0.1:1/activities/{n}",
            "type": "Follow", "actor": "http://127.0.0.1:1/actor", "object": "http://127.0.0.1:2/actor"}


async def row(store: Store, n: int) -> Delivery:
    with store.bound():
        return await Delivery.get(activity_id=f"http://127.0.0.1:1/activities/{n}")


async def make_due(store: Store) -> None:
    with store.bound():
        await Delivery.filter(state="pending").update(next_attempt_at=datetime.now(UTC))


async def test_a_signed_delivery_is_sent_once_and_closed(world: tuple[Deliverer, FakeInbox, Store]) -> None:
    deliverer, inbox, store = world
    await deliverer.enqueue(inbox.url, activity(1), RFC9421)
    await deliverer.enqueue(inbox.url, activity(1), RFC9421)  # queued twice: kept once
    assert await deliverer.run_once() == 1
    done = await row(store, 1)
    assert (done.state, done.last_status, done.attempts) == ("done", 202, 1)
    assert len(inbox.received) == 1 and await deliverer.run_once() == 0


@pytest.mark.parametrize("status", [404, 410])
async def test_gone_inboxes_fail_at_once_with_the_reason(
    world: tuple[Deliverer, FakeInbox, Store], status: int
) -> None:
    deliverer, inbox, store = world
    inbox.statuses = [status]
    await deliverer.enqueue(inbox.url, activity(2), RFC9421)
    await deliverer.run_once()
    failed = await row(store, 2)
    assert (failed.state, failed.last_status, failed.attempts) == ("failed", status, 1)
    assert failed.finished_at is not None


async def test_temporary_failures_back_off_then_deliver(world: tuple[Deliverer, FakeInbox, Store]) -> None:
    deliverer, inbox, store = world
    inbox.statuses = [503, 500]
    await deliverer.enqueue(inbox.url, activity(3), RFC9421)
    waits = []
    for attempt in (1, 2):
        before = datetime.now(UTC)
        await deliverer.run_once()
        pending = await row(store, 3)
        assert (pending.state, pending.attempts) == ("pending", attempt)
        waits.append((pending.next_attempt_at - before).total_seconds())
        assert await deliverer.run_once() == 0  # not due yet
        await make_due(store)
    assert 1.0 <= waits[0] <= 3.1 and 2.0 <= waits[1] <= 6.1  # 2 s then 4 s, with jitter 0.5x-1.5x
    await deliverer.run_once()
    assert (await row(store, 3)).state == "done"


async def test_a_failing_host_opens_the_circuit_breaker(
    world: tuple[Deliverer, FakeInbox, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    deliverer, inbox, store = world
    monkeypatch.setattr(delivery, "BREAKER_THRESHOLD", 2)
    inbox.statuses = [503, 503]
    for n in (10, 11, 12):
        await deliverer.enqueue(inbox.url, activity(n), RFC9421)
    deliverer.claim_limit = 1
    await deliverer.run_once()
    await deliverer.run_once()
    await deliverer.run_once()  # the breaker is open: this row waits without an attempt
    assert len(inbox.received) == 2
    waiting = await row(store, 12)
    assert waiting.attempts == 0 and waiting.last_error is not None and "circuit open" in waiting.last_error
    assert waiting.next_attempt_at > datetime.now(UTC)


async def test_a_row_left_by_a_dead_worker_is_delivered_after_its_lease(
    world: tuple[Deliverer, FakeInbox, Store]
) -> None:
    deliverer, inbox, store = world
    await deliverer.enqueue(inbox.url, activity(4), RFC9421)
    claimed = await deliverer.claim()  # a worker takes it ... and dies before sending
    assert [r.activity_id for r in claimed] == ["http://127.0.0.1:1/activities/4"]
    assert await deliverer.run_once() == 0  # leased: nobody else takes it meanwhile
    with store.bound():
        await Delivery.filter(state="delivering").update(lease_until=datetime.now(UTC) - timedelta(seconds=1))
    assert await deliverer.run_once() == 1
    assert (await row(store, 4)).state == "done" and len(inbox.received) == 1


async def test_an_inbox_that_refuses_rfc9421_gets_draft_cavage_next(world: tuple[Deliverer, FakeInbox, Store]) -> None:
    """A 401 is what a server answers to a scheme it cannot verify: the queue tries the other one once."""
    deliverer, inbox, store = world
    inbox.statuses = [401]
    await deliverer.enqueue(inbox.url, activity(5), RFC9421)
    await deliverer.run_once()
    retried = await row(store, 5)
    assert (retried.state, retried.signature_scheme, retried.last_status) == ("pending", "cavage", 401)
    await deliverer.run_once()
    assert (await row(store, 5)).state == "done"
    assert inbox.schemes == ["rfc9421", "cavage"]
