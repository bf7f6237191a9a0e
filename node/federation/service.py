"""One node's federation: the parts wired together, and the background loops that keep it in step.

Loops: delivery (push, woken at once by every local change), discovery (check peers, gossip, follow) and sync
(pull plus anti-entropy). Each loop survives errors of a single round; all state lives in the database, so
a restarted node carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from node.catalog.records import Signer
from node.config import NodeConfig, PolicySource
from node.federation import activities
from node.federation.delivery import RFC9421, Deliverer
from node.federation.discovery import NODEINFO_SCHEMA
from node.federation.inbox import Inbox
from node.federation.mirror import Mirror
from node.federation.peers import PeerBook
from node.federation.sync import Syncer, digest
from node.net.client import FetchError, FetchPolicy, SafeClient
from node.net.did_resolver import DidResolver
from node.store.models import Delivery, Peer, SeenActivity
from node.store.records import Store
from node.trust.rsa_keys import load_or_create_rsa_key

log = logging.getLogger(__name__)

FOLLOW_RETRY = timedelta(minutes=5)
HOUSEKEEPING_SECONDS = 3600.0
DELIVERY_RECORD_DAYS = 30  # how long finished deliveries stay on record when Tombstones are kept for ever


class Federation:
    def __init__(self, config: NodeConfig, store: Store, signer: Callable[[], Signer]) -> None:
        self.config = config
        self.store = store
        self.client = SafeClient(FetchPolicy(allow_private=config.private_networks_allowed))
        self.rsa_key = load_or_create_rsa_key(config.keys_dir)
        self.resolver = DidResolver(self.client, store, allow_private=config.private_networks_allowed)
        self.mirror = Mirror(store, self.resolver, config.base_url, config.languages)
        self.policy = PolicySource(config)
        self.peers = PeerBook(store, config.base_url, self.policy)
        self.deliverer = Deliverer(config, store, self.client, signer, self.rsa_key)
        self.syncer = Syncer(store, self.client, self.mirror, self.peers)
        self.inbox = Inbox(config, self.policy, store, self.client, self.resolver, self.mirror, self.deliverer,
                           self.peers, self.on_following)
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_now = asyncio.Event()

    async def start(self) -> None:
        await self.client.start()
        for seed in self.config.federation.seeds:
            await self.peers.add(seed, hops=0, only_if_new=True)
        self._tasks = [
            asyncio.create_task(self.deliverer.run_forever(), name="edufed-delivery"),
            asyncio.create_task(self._every(self.config.federation.discovery_interval_seconds, self.discover_once,
                                            None), name="edufed-discovery"),
            asyncio.create_task(self._every(self.config.federation.sync_interval_seconds, self.sync_once,
                                            self._sync_now), name="edufed-sync"),
            asyncio.create_task(self._every(HOUSEKEEPING_SECONDS, self.housekeeping, None), name="edufed-housekeeping"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.client.close()

    def changed(self) -> None:
        """A local record changed: push now rather than at the next poll."""
        self.deliverer.wake.set()

    async def on_following(self, host: str) -> None:
        """A peer accepted our Follow: pull its catalog straight away."""
        self._sync_now.set()

    @staticmethod
    async def _every(seconds: float, action: Callable[[], Any], wake: asyncio.Event | None) -> None:
        while True:
            try:
                await action()
            except Exception:  # one bad round must not end the loop
                log.exception("%s failed", getattr(action, "__name__", "federation round"))
            if wake is None:
                await asyncio.sleep(seconds)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), seconds)
            wake.clear()

    # -- discovery -------------------------------------------------------------------------------------

    async def discover_once(self) -> None:
        """Check a few peers (oldest check first): what they are, whom they know; follow per policy."""
        rows = await self.peers.rows("discovered", "pending", "following")
        rows.sort(key=lambda r: (r.checked_at is not None, r.checked_at or datetime.min.replace(tzinfo=UTC)))
        rows = [row for row in rows if await self._still_allowed(row)]
        for row in rows[: self.policy().discovery_per_cycle]:
            try:
                await self.check_peer(row)
            except FetchError as error:
                await self.peers.mark_checked(row.id, last_error=f"{error.url}: {error.reason}")
            except (KeyError, TypeError, ValueError) as error:
                await self.peers.mark_checked(row.id, last_error=f"malformed discovery document: {error}")

    async def _still_allowed(self, row: Peer) -> bool:
        """Apply a policy change to a known peer: a newly denied one is unfollowed and no longer synced."""
        state = self.peers.initial_state(row.base_url)
        if state == "discovered":
            return True
        if row.state in ("pending", "following") and row.inbox:
            undo = activities.undo(self.config.base_url, activities.follow(self.config.base_url, str(row.actor_id)))
            await self.deliverer.enqueue(row.inbox, undo, RFC9421)
        await self.peers.update(row.id, state=state)
        return False

    async def check_peer(self, row: Peer) -> None:
        base = row.base_url
        links = await self.client.get_json(f"{base}/.well-known/nodeinfo")
        href = next(link["href"] for link in links["links"] if link.get("rel") == NODEINFO_SCHEMA)
        info = await self.client.get_json(str(href))
        edufed = (info.get("metadata") or {}).get("edufed") or {}
        # Any implementation that states an EduFed protocol version is a peer, whatever its software name.
        software = "edufed" if edufed.get("protocolVersion") else str(info["software"]["name"])
        actor_url = str(edufed.get("actor") or f"{base}/actor")
        actor = await self.client.get_json(actor_url)
        if any(urlsplit(str(actor.get(k, ""))).netloc != row.host for k in ("id", "inbox", "outbox")):
            raise ValueError("actor, inbox and outbox must be on the peer's own origin")
        await self.peers.mark_checked(row.id, software=software, name=actor.get("name"), actor_id=actor["id"],
                                      inbox=actor["inbox"], outbox=actor["outbox"], last_error=None)
        if software == "edufed":
            await self._gossip(row)
            await self._maybe_follow(row, str(actor["id"]), str(actor["inbox"]))

    async def _gossip(self, row: Peer) -> None:
        if row.hops >= self.policy().max_hops:
            return
        listed = await self.client.get_json(f"{row.base_url}/federation/peers")
        known = await self.peers.known_urls()
        room = self.policy().max_peers - len(known)
        for item in listed.get("peers", [])[:100]:
            url = item.get("url") if isinstance(item, dict) else None
            if room <= 0:
                return
            if isinstance(url, str) and url.rstrip("/") not in known:
                added = await self.peers.add(url, hops=row.hops + 1, only_if_new=True)
                room -= int(added is not None)

    async def _maybe_follow(self, row: Peer, actor: str, inbox: str) -> None:
        policy = self.policy()
        if not policy.auto_follow or not policy.allows(row.host) or row.state == "following":
            return
        if row.state == "pending" and row.checked_at and datetime.now(UTC) - row.checked_at < FOLLOW_RETRY:
            return
        if row.state == "discovered" and await self.peers.count_active() >= policy.max_peers:
            return
        await self.follow(row.id, actor, inbox)

    async def follow(self, peer_id: int, actor: str, inbox: str) -> None:
        await self.deliverer.enqueue(inbox, activities.follow(self.config.base_url, actor), RFC9421)
        await self.peers.update(peer_id, state="pending")

    async def housekeeping(self) -> None:
        """Drop what is past its retention: Tombstones (with their activities), finished deliveries, and
        activity ids too old to be replayed."""
        days = self.policy().tombstone_retention_days  # 0 keeps Tombstones for ever
        before = datetime.now(UTC) - timedelta(days=days or DELIVERY_RECORD_DAYS)
        purged = await self.store.purge_tombstones(before) if days else 0
        replay_window = timedelta(seconds=self.policy().replay_window_seconds)
        with self.store.bound():
            await Delivery.filter(state="done", finished_at__lt=before).delete()
            await SeenActivity.filter(received_at__lt=datetime.now(UTC) - 2 * replay_window).delete()
        if purged:
            log.info("purged %d tombstones older than %d days", purged, days)

    # -- sync ------------------------------------------------------------------------------------------

    async def sync_once(self) -> None:
        for row in await self.peers.rows("following"):
            await self.syncer.sync(row)

    async def own_digest(self) -> dict[str, Any]:
        return digest(await self.store.live_versions(urlsplit(self.config.base_url).netloc, own=True))

    async def status(self) -> dict[str, Any]:
        """What an operator watches: peers with their lag and errors, the delivery queue, this node's head."""
        peers = await self.peers.all()
        return {
            "node": self.config.base_url,
            "peers": [p.as_json() for p in peers],
            "deliveries": {**await self.deliverer.queue_depth(), "delivered": self.deliverer.stats.delivered,
                           "retried": self.deliverer.stats.retried, "failedThisRun": self.deliverer.stats.failed},
            "digest": await self.own_digest(),
        }
