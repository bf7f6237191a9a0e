"""Resolving the DIDs that sign records and requests: ``did:web`` over the guarded client, ``did:key`` locally.

Documents are cached in memory for a short time and the last good copy is kept in the database, so a mirror
keeps verifying an origin's records while that origin is down. The proof checks themselves (key listed under
the right relation, not revoked when the proof was made) happen in ``node.trust.proofs``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from node.errors import EduFedError, Unprocessable
from node.net.addresses import is_private_host
from node.net.client import FetchError, SafeClient
from node.store.models import CachedDidDocument
from node.store.records import Store
from node.trust.did import did_key_document, did_web_document_url, lists_method

FRESH_SECONDS = 300.0


class DidResolutionError(Unprocessable):
    code = "did-resolution"


def did_web_host(did: str) -> str:
    """``host[:port]`` of a ``did:web`` (only the origin form EduFed nodes use: no path)."""
    if not did.startswith("did:web:") or ":" in did.removeprefix("did:web:"):
        raise DidResolutionError("Unsupported DID", detail=f"{did} is not a did:web of an origin", field="did")
    return unquote(did.removeprefix("did:web:"))


class DidResolver:
    """did:web documents, fetched over https (http only for private hosts when the node allows them)."""

    def __init__(self, client: SafeClient, store: Store | None, *, allow_private: bool) -> None:
        """``store`` keeps the last good documents for offline issuers; without one, only memory caches."""
        self.client = client
        self.store = store
        self.allow_private = allow_private
        self._memory: dict[str, tuple[float, dict[str, Any]]] = {}

    def document_url(self, did: str) -> str:
        scheme = "http" if self.allow_private and is_private_host(did_web_host(did)) else "https"
        return did_web_document_url(did, scheme)

    async def resolve(self, did: str, *, refresh: bool = False) -> dict[str, Any]:
        """The DID document; the database copy when the origin cannot be reached."""
        if did.startswith("did:key:"):
            return did_key_document(did)
        cached = self._memory.get(did)
        if cached and not refresh and time.monotonic() - cached[0] < FRESH_SECONDS:
            return cached[1]
        try:
            document = await self.client.get_json(self.document_url(did))
        except FetchError as error:
            stored = await self._stored(did)
            if stored is None:
                raise DidResolutionError("DID document unavailable", detail=f"{did}: {error.reason}",
                                         field="did") from error
            return stored
        if not isinstance(document, dict) or document.get("id") != did:
            raise DidResolutionError("DID document does not match its DID", detail=did, field="did")
        self._memory[did] = (time.monotonic(), document)
        await self._keep(did, document)
        return document

    async def resolve_for(self, did: str, method_ids: Iterable[str]) -> dict[str, Any]:
        """The DID document, fetched again once when it lacks one of ``method_ids``: the controller may have
        rotated its keys since the copy was cached. A failed refetch keeps the copy (its proofs then fail)."""
        document = await self.resolve(did)
        if not all(lists_method(document, method) for method in method_ids):
            with contextlib.suppress(EduFedError):
                document = await self.resolve(did, refresh=True)
        return document

    async def _stored(self, did: str) -> dict[str, Any] | None:
        if self.store is None:
            return None
        with self.store.bound():
            row = await CachedDidDocument.get_or_none(did=did)
        if row is None:
            return None
        document: dict[str, Any] = json.loads(row.document)
        return document

    async def _keep(self, did: str, document: dict[str, Any]) -> None:
        if self.store is None:
            return
        with self.store.bound():
            await CachedDidDocument.update_or_create(
                defaults={"document": json.dumps(document), "fetched_at": datetime.now(UTC)}, did=did
            )
