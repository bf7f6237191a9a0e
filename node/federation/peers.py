"""The peers a node knows, in its database, so the CLI and every worker see the same list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from tortoise.expressions import F

from node.config import FederationPolicy, normalize_base_url
from node.store.models import Peer
from node.store.records import Store

# Peer states: discovered, pending (Follow sent), following, refused (Reject), denied, not-allowed.


@dataclass(frozen=True)
class PeerView:
    """A peer as the CLI, the status endpoint and the federation page show it."""

    base_url: str
    name: str | None
    software: str | None
    state: str
    hops: int
    cursor: int
    remote_head: int
    last_sync: datetime | None
    last_error: str | None
    refusals: int

    @property
    def lag(self) -> int:
        """Changes the peer has published that this node has not applied yet."""
        return max(0, self.remote_head - self.cursor)

    def as_json(self) -> dict[str, object]:
        return {
            "url": self.base_url, "name": self.name, "software": self.software, "state": self.state,
            "hops": self.hops, "cursor": self.cursor, "remoteHead": self.remote_head, "lag": self.lag,
            "lastSync": self.last_sync.strftime("%Y-%m-%dT%H:%M:%SZ") if self.last_sync else None,
            "lastError": self.last_error, "refusals": self.refusals,
        }


def _view(row: Peer) -> PeerView:
    return PeerView(row.base_url, row.name, row.software, row.state, row.hops, row.cursor, row.remote_head,
                    row.last_sync, row.last_error, row.refusals)


def host_of(base_url: str) -> str:
    return urlsplit(base_url).netloc


class PeerBook:
    def __init__(self, store: Store, own_base_url: str, policy: Callable[[], FederationPolicy]) -> None:
        self.store = store
        self.own_base_url = own_base_url
        self.policy = policy

    def initial_state(self, base_url: str) -> str:
        host = host_of(base_url)
        policy = self.policy()
        if host in policy.deny:
            return "denied"
        return "discovered" if policy.allows(host) else "not-allowed"

    async def add(self, base_url: str, *, hops: int = 0, only_if_new: bool = False) -> PeerView | None:
        """Know a peer (an operator's ``peer add`` resets a refused or unreachable one to be tried again)."""
        url = normalize_base_url(base_url)
        if url == self.own_base_url:
            return None
        with self.store.bound():
            row = await Peer.get_or_none(base_url=url)
            if row is None:
                row = await Peer.create(base_url=url, host=host_of(url), hops=hops, state=self.initial_state(url))
            elif not only_if_new:
                row.hops = min(row.hops, hops)
                row.state = self.initial_state(url) if row.state != "following" else row.state
                row.checked_at = None
                await row.save()
            return _view(row)

    async def remove(self, base_url: str) -> PeerView | None:
        url = normalize_base_url(base_url)
        with self.store.bound():
            row = await Peer.get_or_none(base_url=url)
            if row is None:
                return None
            await row.delete()
            return _view(row)

    async def all(self) -> list[PeerView]:
        with self.store.bound():
            return [_view(row) for row in await Peer.all().order_by("base_url")]

    async def rows(self, *states: str) -> list[Peer]:
        with self.store.bound():
            return list(await Peer.filter(state__in=list(states)).order_by("id"))

    async def by_host(self, host: str) -> Peer | None:
        with self.store.bound():
            return await Peer.get_or_none(host=host)

    async def set_state_by_host(self, host: str, state: str) -> None:
        row = await self.by_host(host)
        if row is not None:
            with self.store.bound():
                await Peer.filter(id=row.id).update(state=state)

    async def count_refusal(self, host: str) -> None:
        row = await self.by_host(host) if host else None
        if row is not None:
            with self.store.bound():
                await Peer.filter(id=row.id).update(refusals=F("refusals") + 1)

    async def update(self, peer_id: int, **changes: object) -> None:
        with self.store.bound():
            await Peer.filter(id=peer_id).update(**changes)

    async def count_active(self) -> int:
        with self.store.bound():
            return await Peer.filter(state__in=["pending", "following"]).count()

    async def known_urls(self) -> set[str]:
        with self.store.bound():
            return {str(url) for url in await Peer.all().values_list("base_url", flat=True)}

    async def gossip_list(self) -> list[dict[str, object]]:
        """What ``/federation/peers`` tells others: peers this node has reached, never denied ones."""
        with self.store.bound():
            rows = await Peer.filter(checked_at__isnull=False, software="edufed",
                                     state__in=["discovered", "pending", "following"]).order_by("base_url")
        return [{"url": row.base_url, "name": row.name, "actor": row.actor_id} for row in rows]

    async def mark_checked(self, peer_id: int, **changes: object) -> None:
        await self.update(peer_id, checked_at=datetime.now(UTC), **changes)
