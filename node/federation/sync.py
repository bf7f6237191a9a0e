"""Pull: catching up from a peer's outbox, and repairing drift that the feed cannot explain.

A follower pulls from its last cursor on a schedule, after a restart and when a Follow is accepted, so a lost
push heals within one sync interval. The cursor is saved after every page, so a crash mid-sync resumes from
the last page applied. Then the anti-entropy digest (count and hash of live record ids and versions) is
compared with the mirror's own; a difference triggers a full resync against the peer's record list, which
also removes records the origin no longer has. Applying a change twice changes nothing (``Mirror``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from node.federation.activities import seq_of
from node.federation.mirror import Mirror
from node.federation.peers import PeerBook
from node.net.client import FetchError, SafeClient
from node.store.models import Peer
from node.store.records import Store

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES_PER_SYNC = 50
LIST_PAGE_SIZE = 1000


def digest(pairs: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """``{"count": N, "sha256": hex}`` over ``iri <TAB> version <LF>`` lines of live records sorted by IRI."""
    hasher = hashlib.sha256()
    count = 0
    for iri, version in sorted(pairs):
        hasher.update(f"{iri}\t{version}\n".encode())
        count += 1
    return {"count": count, "sha256": hasher.hexdigest()}


@dataclass
class SyncReport:
    applied: int = 0
    refused: int = 0
    resynced: bool = False
    error: str | None = None


class Syncer:
    def __init__(self, store: Store, client: SafeClient, mirror: Mirror, peers: PeerBook) -> None:
        self.store = store
        self.client = client
        self.mirror = mirror
        self.peers = peers

    async def sync(self, peer: Peer) -> SyncReport:
        """Pull, then compare digests and resync on drift. Errors are recorded on the peer, not raised."""
        report = SyncReport()
        try:
            await self.pull(peer, report)
            if await self.drifted(peer):
                await self.resync(peer, report)
        except FetchError as error:
            report.error = f"{error.url}: {error.reason}"
        except (KeyError, TypeError, ValueError) as error:
            report.error = f"malformed response: {error}"
        await self.peers.update(peer.id, last_sync=datetime.now(UTC), last_error=report.error)
        if report.error:
            log.info("sync with %s: %s", peer.base_url, report.error)
        return report

    async def pull(self, peer: Peer, report: SyncReport) -> None:
        outbox = peer.outbox or f"{peer.base_url}/outbox"
        collection = await self.client.get_json(outbox)
        head = int(collection.get("totalItems", 0))
        await self.peers.update(peer.id, remote_head=head)
        cursor = peer.cursor
        for _ in range(MAX_PAGES_PER_SYNC):
            page = await self.client.get_json(f"{outbox}?after={cursor}&limit={PAGE_SIZE}")
            items = page.get("orderedItems") or []
            for item in items:
                seq = seq_of(peer.base_url, str(item.get("id", ""))) if isinstance(item, dict) else None
                if seq is None or seq <= cursor:
                    continue
                outcome, refusal = await self.mirror.accept_quietly(item.get("object"), via=peer.base_url)
                report.applied += int(bool(outcome and outcome.applied))
                if refusal:
                    report.refused += 1
                    log.warning("record from %s refused: %s", peer.base_url, refusal)
                cursor = seq
            await self.peers.update(peer.id, cursor=cursor, remote_head=max(head, cursor))
            peer.cursor = cursor
            if not items or not page.get("next"):
                return

    async def drifted(self, peer: Peer) -> bool:
        remote = await self.client.get_json(f"{peer.base_url}/federation/digest")
        local = digest(await self.store.live_versions(urlsplit(peer.base_url).netloc, own=False))
        return bool(remote.get("count") != local["count"] or remote.get("sha256") != local["sha256"])

    async def _fetch_record(self, url: str) -> Any:
        """A record by IRI; a withdrawn one answers 410 with its Tombstone, which is just as much a record."""
        response = await self.client.request("GET", url, headers={"Accept": "application/ld+json"})
        if response.status not in (200, 410):
            raise FetchError(url, f"HTTP {response.status}", status=response.status)
        return response.json()

    async def resync(self, peer: Peer, report: SyncReport) -> None:
        """Walk the peer's record list; fetch what is newer there, forget what it no longer has."""
        report.resynced = True
        held = await self.store.mirrored_versions(urlsplit(peer.base_url).netloc)
        listed: set[str] = set()
        host = urlsplit(peer.base_url).netloc
        url: str | None = f"{peer.base_url}/api/records?origin={quote(host)}&limit={LIST_PAGE_SIZE}"
        while url:
            page = await self.client.get_json(url)
            for item in page.get("items", []):
                iri, version = str(item["id"]), int(item["version"])
                if urlsplit(iri).netloc != host:  # only the peer's own records: others are verified elsewhere
                    continue
                listed.add(iri)
                if iri in held and held[iri][0] >= version:
                    continue
                document = await self._fetch_record(f"{peer.base_url}/api/records?iri={quote(iri, safe='')}")
                outcome, refusal = await self.mirror.accept_quietly(document, via=peer.base_url)
                report.applied += int(bool(outcome and outcome.applied))
                report.refused += int(refusal is not None)
            next_url = page.get("next")
            url = str(next_url) if next_url and urlsplit(str(next_url)).netloc == host else None
        gone = [iri for iri in held if iri not in listed]
        if gone:
            await self.store.remove_mirrored(gone)
