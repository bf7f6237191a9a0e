"""Taking in another node's record: verify it back to its origin, check its shape, keep it verbatim.

The same rules hold whoever delivered the record (its origin by push, a peer's outbox, a digest repair):
the proof must verify with a key of the DID of the record's own origin (same-origin rule). Which node handed
it over does not matter, so a record can travel through any number of mirrors and stay trustworthy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from node.catalog.indexing import index_entry
from node.catalog.records import PUBLISHABLE_TYPES, to_stored
from node.catalog.validation import validate_document
from node.errors import EduFedError, Forbidden, Unprocessable
from node.net.did_resolver import DidResolver
from node.store.records import Store
from node.trust.did import did_web_from_base_url
from node.trust.proofs import VerificationResult, proof_methods, verify


class RecordRefused(Forbidden):
    """A record that does not verify back to its origin, or breaks the rules for records."""

    code = "record-refused"


@dataclass(frozen=True)
class Outcome:
    iri: str
    applied: bool  # False: the same or a newer version was already held


def origin_did(iri: str) -> str:
    parts = urlsplit(iri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RecordRefused("Record id is not an http(s) IRI", detail=iri, field="id")
    return did_web_from_base_url(f"{parts.scheme}://{parts.netloc}")


class Mirror:
    """Verifies and stores records of other nodes."""

    def __init__(self, store: Store, resolver: DidResolver, own_base_url: str, languages: tuple[str, ...]) -> None:
        self.store = store
        self.resolver = resolver
        self.own_host = urlsplit(own_base_url).netloc
        self.languages = languages

    async def check(self, document: Any) -> VerificationResult:
        """Verify a record's proof against its origin's DID."""
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            raise RecordRefused("A record must be a JSON object with an id", field="object")
        did = origin_did(document["id"])
        documents = {did: await self.resolver.resolve_for(did, proof_methods(document))}

        def resolve(name: str) -> dict[str, Any]:
            return documents[name]

        return await asyncio.to_thread(verify, document, resolve, expected_controller=did)

    async def accept(self, document: Any, *, via: str | None) -> Outcome:
        """Store ``document`` if it verifies, has a valid shape and is newer than the copy held."""
        result = await self.check(document)
        iri = str(document["id"])
        if urlsplit(iri).netloc == self.own_host:
            raise RecordRefused("A node does not take its own records from others", detail=iri, field="id")
        if not result.verified:
            raise RecordRefused("Record proof does not verify with its origin's DID", detail=result.error,
                                field="proof")
        record_type = document.get("type")
        if record_type != "Tombstone" and record_type not in PUBLISHABLE_TYPES:
            raise RecordRefused("Unsupported record type", detail=str(record_type), field="type")
        violations = await asyncio.to_thread(validate_document, document)
        if violations:
            raise RecordRefused("Record does not satisfy its shape", detail=violations[0].message,
                                field=violations[0].path)
        deleted = record_type == "Tombstone"
        try:
            stored = to_stored(document, None, deleted=deleted)
        except (KeyError, ValueError, TypeError) as error:
            raise Unprocessable("Record lacks version or dateModified", detail=str(error), field="version") from None
        stored = replace(stored, mirrored_from=via)
        index = None if deleted else index_entry(document, self.languages)
        return Outcome(iri, await self.store.apply_mirrored(stored, index))

    async def accept_quietly(self, document: Any, *, via: str | None) -> tuple[Outcome | None, str | None]:
        """``accept`` for batch paths (pull, resync): a refused record is reported, not raised."""
        try:
            return await self.accept(document, via=via), None
        except EduFedError as error:
            return None, f"{error.title}: {error.detail or ''}".strip()
