"""Several real nodes on loopback ports federating: join by seed, push, pull, deletes, outages, restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from node.catalog.importer import import_file
from node.catalog.records import node_signer
from node.federation import sync
from node.federation.http_signatures import sign_rfc9421
from node.net.client import FetchError
from node.store import feed
from node.store.models import Delivery
from node.trust.multikey import Ed25519Key
from node.trust.proofs import sign, verify
from tests.conftest import MakeDatabaseUrl
from tests.harness import FAST, RunningNode, eventually, running_node


def course(name: str, **extra: Any) -> dict[str, Any]:
    return {"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": name}, **extra}


async def holds(node: RunningNode, iri: str, version: int = 1) -> bool:
    status, body = await node.record(iri)
    return status == 200 and body is not None and body["version"] >= version


async def following(node: RunningNode, other: RunningNode) -> bool:
    peer = await node.peer(other)
    return peer is not None and peer["state"] == "following"


async def start_pair(
    stack: AsyncExitStack, tmp_path: Path, make_database_url: MakeDatabaseUrl, *, b_sync_seconds: float
) -> tuple[RunningNode, RunningNode]:
    """Node a, and node b that joined with a as its seed and follows it."""
    a = await stack.enter_async_context(running_node(tmp_path / "a", await make_database_url(), "A"))
    policy = replace(FAST, seeds=(a.base_url,), sync_interval_seconds=b_sync_seconds)
    b = await stack.enter_async_context(running_node(tmp_path / "b", await make_database_url(), "B", federation=policy))
    await eventually(lambda: following(b, a), what="b to follow a")
    return a, b


@pytest.fixture
async def pushing(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    """b pulls only once an hour: whatever reaches it within a test came by push."""
    async with AsyncExitStack() as stack:
        yield await start_pair(stack, tmp_path, make_database_url, b_sync_seconds=3600)


@pytest.fixture
async def pulling(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> AsyncIterator[tuple[RunningNode, RunningNode]]:
    async with AsyncExitStack() as stack:
        yield await start_pair(stack, tmp_path, make_database_url, b_sync_seconds=1)


async def test_a_node_joins_the_network_from_one_seed(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    """c knows only b; gossip tells it about a; it follows both and mirrors both catalogs."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_node(tmp_path / "a", await make_database_url(), "A"))
        early = await a.publish(course("Published before anyone joined"))
        b = await stack.enter_async_context(
            running_node(tmp_path / "b", await make_database_url(), "B", federation=replace(FAST, seeds=(a.base_url,)))
        )
        await eventually(lambda: following(b, a), what="b to follow a")
        c = await stack.enter_async_context(
            running_node(tmp_path / "c", await make_database_url(), "C", federation=replace(FAST, seeds=(b.base_url,)))
        )
        await eventually(lambda: following(c, a), what="c to follow a, found through b")
        await eventually(lambda: following(c, b), what="c to follow b")
        await eventually(lambda: holds(c, early["id"]), what="c to pull a's catalog")
        peer = await c.peer(a)
        assert peer is not None and peer["hops"] == 1 and peer["lag"] == 0


async def test_a_change_reaches_followers_by_push(pushing: tuple[RunningNode, RunningNode]) -> None:
    a, b = pushing
    record = await a.publish(course("Pottery for beginners"))
    await eventually(lambda: holds(b, record["id"]), timeout=5, what="the push")
    status, mirrored = await b.record(record["id"])
    assert status == 200 and mirrored == record  # served exactly as the origin signed it
    async with b.http.get(f"{a.base_url}/.well-known/did.json") as response:
        did_document = await response.json(content_type=None)
    assert verify(mirrored, lambda _: did_document, expected_controller=did_document["id"]).verified

    changed = {**record, "name": {"en": "Pottery for everyone"}}
    async with a.http.put(record["id"], json=changed, headers=a.admin) as response:
        assert response.status == 200
    await eventually(lambda: holds(b, record["id"], version=2), timeout=5, what="the update")

    async with a.http.delete(record["id"], headers=a.admin) as response:
        assert response.status == 200

    async def tombstoned() -> bool:
        status, body = await b.record(record["id"])
        return status == 410 and body is not None and body["type"] == "Tombstone"

    await eventually(tombstoned, timeout=5, what="the delete")


async def test_a_lost_push_is_healed_by_pull(pulling: tuple[RunningNode, RunningNode]) -> None:
    a, b = pulling
    original = a.services.federation.deliverer.client.request

    async def lose(method: str, url: str, **kwargs: Any) -> Any:
        if url.startswith(b.base_url) and method == "POST":
            raise FetchError(url, "push lost on the way")
        return await original(method, url, **kwargs)

    a.services.federation.deliverer.client.request = lose  # type: ignore[method-assign]
    try:
        record = await a.publish(course("Only by pull"))
        await eventually(lambda: holds(b, record["id"]), timeout=10, what="the pull")

        async def push_waits_for_retry() -> bool:
            # The pull may win the race with the first, lost attempt: wait until that attempt has been recorded.
            with a.services.store.bound():
                lost = await Delivery.get(activity_id__startswith=f"{a.base_url}/outbox/",
                                          inbox__startswith=b.base_url)
            return lost.state == "pending" and lost.attempts >= 1 and lost.last_error == "push lost on the way"

        await eventually(push_waits_for_retry, timeout=10, what="the lost push kept for a retry")
    finally:
        a.services.federation.deliverer.client.request = original  # type: ignore[method-assign]


async def post_signed(sender: RunningNode, target: RunningNode, activity: dict[str, Any],
                      *, key: Ed25519Key | None = None, created: int | None = None) -> tuple[int, dict[str, Any]]:
    """POST ``activity`` to ``target``'s inbox, signed (RFC 9421) with ``sender``'s key unless ``key`` forges it."""
    signer = node_signer(sender.base_url, sender.services.keyring)
    body = json.dumps(activity).encode()
    headers = {"Content-Type": "application/activity+json"}
    url = f"{target.base_url}/inbox"
    headers.update(sign_rfc9421("POST", url, headers, body, key or signer.key, signer.verification_method, created))
    async with sender.http.post(url, data=body, headers=headers) as response:
        problem = await response.json(content_type=None) if response.status >= 400 else {}
        return response.status, problem


def create(sender: RunningNode, record: dict[str, Any]) -> dict[str, Any]:
    return {"@context": "https://www.w3.org/ns/activitystreams", "id": f"{sender.base_url}/activities/{uuid.uuid4()}",
            "type": "Create", "actor": f"{sender.base_url}/actor", "object": record}


async def test_inbox_refuses_forged_spoofed_replayed_and_denied(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(running_node(tmp_path / "a", await make_database_url(), "A"))
        c = await stack.enter_async_context(running_node(tmp_path / "c", await make_database_url(), "C"))
        d = await stack.enter_async_context(running_node(tmp_path / "d", await make_database_url(), "D"))
        host = lambda node: node.base_url.removeprefix("http://")  # noqa: E731
        b = await stack.enter_async_context(running_node(
            tmp_path / "b", await make_database_url(), "B", federation=replace(FAST, deny=(host(d),))))
        genuine = await a.publish(course("Genuine course of a"))

        # forged: a valid-looking request claiming c's key, signed with another key
        status, problem = await post_signed(c, b, create(c, genuine), key=Ed25519Key.generate())
        assert status == 401 and problem["field"] == "Signature"

        # spoofed origin: c signs correctly but the record claims a's origin and carries c's proof
        spoofed = {k: v for k, v in genuine.items() if k not in ("proof",)}
        spoofed = sign(spoofed, node_signer(c.base_url, c.services.keyring).key,
                       node_signer(c.base_url, c.services.keyring).verification_method, created=datetime.now(UTC))
        status, problem = await post_signed(c, b, create(c, spoofed))
        assert status == 403 and problem["field"] == "proof"
        assert await b.record(genuine["id"]) == (404, None)

        # relayed: c forwards a's genuine record; it verifies back to a, so b takes it
        relay = create(c, genuine)
        assert (await post_signed(c, b, relay))[0] == 202
        assert await holds(b, genuine["id"])

        # replay: the very same activity again, and an old signature
        status, problem = await post_signed(c, b, relay)
        assert status == 403 and "replay" in problem["title"]
        status, problem = await post_signed(c, b, create(c, genuine), created=int(time.time()) - 3600)
        assert status == 401

        # deny-listed: d is refused even with a valid signature
        status, problem = await post_signed(d, b, create(d, genuine))
        assert status == 403 and "deny" in problem["title"]

        await b.services.federation.peers.add(c.base_url)
        peer = await b.peer(c)
        assert peer is not None and peer["refusals"] == 0  # counted from now on
        await post_signed(c, b, create(c, spoofed))
        assert (await b.peer(c))["refusals"] == 1  # type: ignore[index]


async def test_mirror_serves_records_while_the_origin_is_down_and_catches_up_after(
    tmp_path: Path, make_database_url: MakeDatabaseUrl
) -> None:
    a_db, b_db = await make_database_url(), await make_database_url()
    async with AsyncExitStack() as stack:
        a_ctx = running_node(tmp_path / "a", a_db, "A")
        a = await a_ctx.__aenter__()
        policy = replace(FAST, seeds=(a.base_url,))
        b = await stack.enter_async_context(running_node(tmp_path / "b", b_db, "B", federation=policy))
        await eventually(lambda: following(b, a), what="b to follow a")
        record = await a.publish(course("Still here when a is not"))
        await eventually(lambda: holds(b, record["id"]), what="b to mirror the record")
        async with b.http.get(f"{a.base_url}/.well-known/did.json") as response:
            did_document = await response.json(content_type=None)
        await a_ctx.__aexit__(None, None, None)  # a goes down

        status, served = await b.record(record["id"])
        assert status == 200 and served is not None
        assert verify(served, lambda _: did_document, expected_controller=did_document["id"]).verified

        async def sync_failed() -> bool:
            peer = await b.peer(a)
            return peer is not None and bool(peer["lastError"])

        await eventually(sync_failed, what="b to notice a is down")

        async with running_node(tmp_path / "a", a_db) as a_again:  # a comes back on the same port
            later = await a_again.publish(course("Published after the outage"))
            await eventually(lambda: holds(b, later["id"]), what="b to catch up")
            peer = await b.peer(a_again)
            assert peer is not None and peer["lag"] == 0


async def test_sync_resumes_from_its_cursor_after_a_restart(
    tmp_path: Path, make_database_url: MakeDatabaseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    """b stops after one page of a's outbox; started again, it continues from there and ends complete."""
    monkeypatch.setattr(sync, "MAX_PAGES_PER_SYNC", 1)
    monkeypatch.setattr(sync, "PAGE_SIZE", 10)
    a_db, b_db = await make_database_url(), await make_database_url()
    async with running_node(tmp_path / "a", a_db, "A") as a:
        rows = tmp_path / "many.csv"
        rows.write_text("type,id,name@en\n" + "".join(f"Course,c{n:03d},Course {n}\n" for n in range(35)), "utf-8")
        assert (await import_file(a.config, a.services.store, rows))[0] == 35
        policy = replace(FAST, seeds=(a.base_url,), sync_interval_seconds=3600)
        async with running_node(tmp_path / "b", b_db, "B", federation=policy) as b:
            await eventually(lambda: following(b, a), what="b to follow a")

            async def one_page() -> bool:
                peer = await b.peer(a)
                return peer is not None and peer["cursor"] >= 10

            await eventually(one_page, what="the first page")
        peer_before = None
        async with running_node(tmp_path / "b", b_db, federation=replace(policy, sync_interval_seconds=0.2)) as b:
            peer_before = await b.peer(a)

            async def complete() -> bool:
                peer = await b.peer(a)
                return peer is not None and peer["cursor"] == 35 and peer["lag"] == 0

            await eventually(complete, what="the rest of the feed")
            assert await b.services.store.count() == 35
        assert peer_before is not None and 10 <= peer_before["cursor"] < 35


async def test_federation_page_and_cli_show_peers_with_state_and_lag(
    pushing: tuple[RunningNode, RunningNode]
) -> None:
    a, b = pushing
    record = await a.publish(course("Seen on the page"))
    await eventually(lambda: holds(b, record["id"]), timeout=5, what="the push")
    async with b.http.get(f"{b.base_url}/federation") as response:
        page = await response.text()
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert a.base_url in page and "following" in page
    async with b.http.get(f"{b.base_url}/api/records", params={"iri": record["id"]},
                          headers={"Accept": "text/html"}) as response:
        assert "verified" in await response.text()
    listed = subprocess.run([sys.executable, "-m", "node.cli", "peer", "list", "--data", str(b.config.data_dir)],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith(a.base_url))
    assert "following" in line.split()


async def test_a_delete_missed_past_tombstone_retention_is_repaired_by_the_digest(
    pulling: tuple[RunningNode, RunningNode]
) -> None:
    a, b = pulling
    record = await a.publish(course("Soon withdrawn"))
    await eventually(lambda: holds(b, record["id"]), what="b to mirror the record")
    original = a.services.federation.deliverer.client.request

    async def lose(method: str, url: str, **kwargs: Any) -> Any:
        if url.startswith(b.base_url) and method == "POST":
            raise FetchError(url, "push lost on the way")
        return await original(method, url, **kwargs)

    syncer = b.services.federation.syncer
    pull = syncer.sync

    async def paused(peer: Any) -> Any:
        return sync.SyncReport()

    a.services.federation.deliverer.client.request = lose  # type: ignore[method-assign]
    syncer.sync = paused  # type: ignore[method-assign]
    try:
        # while b hears nothing, a withdraws the record and, past its retention, forgets the Tombstone
        async with a.http.delete(record["id"], headers=a.admin) as response:
            assert response.status == 200
        assert await a.services.store.purge_tombstones(datetime.now(UTC) + timedelta(seconds=5)) == 1
        assert await a.record(record["id"]) == (404, None)
        syncer.sync = pull  # type: ignore[method-assign]

        async def forgotten() -> bool:
            return (await b.record(record["id"]))[0] == 404

        await eventually(forgotten, what="b's digest check to drop the record")
    finally:
        a.services.federation.deliverer.client.request = original  # type: ignore[method-assign]
        syncer.sync = pull  # type: ignore[method-assign]


async def test_denying_a_peer_from_the_cli_takes_effect_without_a_restart(
    pushing: tuple[RunningNode, RunningNode]
) -> None:
    """``edufed policy --deny`` edits the config; the running node refuses the host and stops following it."""
    a, b = pushing
    genuine = await a.publish(course("Before the deny"))
    await eventually(lambda: holds(b, genuine["id"]), timeout=5, what="the push")
    host = a.base_url.removeprefix("http://")
    done = subprocess.run([sys.executable, "-m", "node.cli", "policy", "--data", str(b.config.data_dir),
                           "--deny", host], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    status, problem = await post_signed(a, b, create(a, genuine))
    assert status == 403 and "deny" in problem["title"]

    async def denied() -> bool:
        peer = await b.peer(a)
        return peer is not None and peer["state"] == "denied"

    await eventually(denied, what="b to mark a denied")

    async def unfollowed() -> bool:
        return (await a.federation_status())["deliveries"]["pending"] == 0 and not await followers_of(a)

    await eventually(unfollowed, what="a to receive b's Undo")


async def followers_of(node: RunningNode) -> int:
    async with node.http.get(f"{node.base_url}/followers") as response:
        return int((await response.json(content_type=None))["totalItems"])


async def test_resync_takes_a_missed_tombstone_from_a_410(pulling: tuple[RunningNode, RunningNode]) -> None:
    """The feed says nothing new, the digest disagrees: the full resync fetches the Tombstone (served 410)."""
    a, b = pulling
    record = await a.publish(course("Withdrawn while b was not listening"))
    await eventually(lambda: holds(b, record["id"]), what="b to mirror the record")
    syncer, deliverer = b.services.federation.syncer, a.services.federation.deliverer
    pull, send = syncer.sync, deliverer.client.request

    async def paused(peer: Any) -> Any:
        return sync.SyncReport()

    async def lose(method: str, url: str, **kwargs: Any) -> Any:
        if url.startswith(b.base_url) and method == "POST":
            raise FetchError(url, "push lost on the way")
        return await send(method, url, **kwargs)

    syncer.sync, deliverer.client.request = paused, lose  # type: ignore[method-assign]
    try:
        async with a.http.delete(record["id"], headers=a.admin) as response:
            assert response.status == 200
        with a.services.store.bound():
            head = await feed.head()
        peer = await b.services.federation.peers.by_host(a.base_url.removeprefix("http://"))
        assert peer is not None
        await b.services.federation.peers.update(peer.id, cursor=head)  # as if the Delete had been pulled
        syncer.sync = pull  # type: ignore[method-assign]

        async def tombstoned() -> bool:
            status, body = await b.record(record["id"])
            return status == 410 and body is not None and body["type"] == "Tombstone"

        await eventually(tombstoned, what="the resync to take the Tombstone")
    finally:
        syncer.sync, deliverer.client.request = pull, send  # type: ignore[method-assign]
