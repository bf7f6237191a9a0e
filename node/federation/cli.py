"""``edufed peer …`` and ``edufed sync``: they work on the node's database, so they act on a running node too
(its loops read the same tables) and on a stopped one (the work waits in the queue)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

from tqdm import tqdm

from node.config import NodeConfig
from node.federation import activities
from node.federation.delivery import RFC9421
from node.federation.mirror import Mirror
from node.federation.peers import PeerBook, PeerView
from node.federation.sync import Syncer
from node.net.client import FetchPolicy, SafeClient
from node.net.did_resolver import DidResolver
from node.store.models import Delivery
from node.store.records import Store


def _age(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"


def print_peers(peers: list[PeerView]) -> None:
    if not peers:
        print("No peers yet: `edufed peer add --data DIR URL` adds one.")
        return
    print(f"{'peer':<34} {'state':<11} {'hops':>4} {'last sync':>10} {'lag':>6} {'refused':>7}  last error")
    for p in peers:
        print(f"{p.base_url:<34} {p.state:<11} {p.hops:>4} {_age(p.last_sync):>10} {p.lag:>6} {p.refusals:>7}  "
              f"{(p.last_error or '')[:80]}")


async def run_peer_command(config: NodeConfig, command: str, url: str | None) -> int:
    store = await Store.open(config.effective_database_url)
    try:
        book = PeerBook(store, config.base_url, lambda: config.federation)
        if command == "list":
            print_peers(await book.all())
            return 0
        assert url is not None
        if command == "add":
            added = await book.add(url, hops=0)
            if added is None:
                print("That is this node's own address.", file=sys.stderr)
                return 1
            print(f"Added {added.base_url} ({added.state}); the running node checks it and follows per its policy.")
            return 0
        removed = await book.remove(url)
        if removed is None:
            print(f"{url} is not a known peer.", file=sys.stderr)
            return 1
        if removed.state in ("pending", "following"):
            await _queue_unfollow(config, store, removed)
        print(f"Removed {removed.base_url}.")
        return 0
    finally:
        await store.close()


async def _queue_unfollow(config: NodeConfig, store: Store, peer: PeerView) -> None:
    """Queue an Undo(Follow) for the peer; the node's delivery worker sends it (now, or when it next runs)."""
    their_actor = activities.actor_id(peer.base_url)
    undo = activities.undo(config.base_url, activities.follow(config.base_url, their_actor))
    with store.bound():
        await Delivery.create(inbox=f"{peer.base_url}/inbox", activity_id=undo["id"], body=json.dumps(undo),
                              signature_scheme=RFC9421, next_attempt_at=datetime.now(UTC))


async def run_sync(config: NodeConfig, *, progress: bool) -> int:
    """One pull (and digest check) from every followed peer, with a progress bar."""
    store = await Store.open(config.effective_database_url)
    try:
        async with SafeClient(FetchPolicy(allow_private=config.private_networks_allowed)) as client:
            resolver = DidResolver(client, store, allow_private=config.private_networks_allowed)
            book = PeerBook(store, config.base_url, lambda: config.federation)
            syncer = Syncer(store, client, Mirror(store, resolver, config.base_url, config.languages), book)
            rows = await book.rows("following")
            failures = 0
            for row in tqdm(rows, desc="syncing", unit="peer", disable=not progress, file=sys.stderr):
                report = await syncer.sync(row)
                failures += int(report.error is not None)
                print(f"{row.base_url}: {report.applied} applied, {report.refused} refused"
                      + (", full resync" if report.resynced else "") + (f", error: {report.error}" if report.error
                                                                         else ""))
            if not rows:
                print("No followed peers.")
        return 1 if failures else 0
    finally:
        await store.close()

