"""Turning a submitted catalog record into a signed, stored one: the rules every publication path shares.

The API, the importer and (later) federation all go through :func:`seal`, so a record is checked the same way
everywhere: our context only, a type we publish, every term defined (safe-mode expansion), the SHACL shape of
its type, then the node's proof.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from node.catalog.validation import validate_document
from node.errors import Unprocessable
from node.ld import work
from node.ld.canon import canonicalize
from node.ld.contexts import DATA_INTEGRITY_CONTEXT, EDUFED_CONTEXT, RECORD_CONTEXT, context_path
from node.ld.loader import UnknownContextError
from node.store.records import StoredRecord
from node.trust.did import did_web_from_base_url
from node.trust.keyring import KeyRing
from node.trust.multikey import Ed25519Key
from node.trust.proofs import sign

PUBLISHABLE_TYPES = frozenset(
    {
        "Course",
        "CourseInstance",
        "EducationEvent",
        "LearningResource",
        "Place",
        "ConceptScheme",
        "Concept",
        "CreditSystem",
        "CreditConversionRule",
    }
)
# Set by the node on every change; a client may send them back (as they come from a GET) and they are replaced.
NODE_MANAGED = ("version", "dateModified", "proof")
LOCAL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Signer:
    """Everything needed to sign as this node."""

    key: Ed25519Key
    verification_method: str


def node_signer(base_url: str, keyring: KeyRing) -> Signer:
    """The node's current signing key with its verification method id ``did:web:…#z6Mk…``."""
    key, entry = keyring.active()
    return Signer(key, f"{did_web_from_base_url(base_url)}#{entry.public_multibase}")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_local_id() -> str:
    return str(uuid.uuid4())


def check_context(body: dict[str, Any]) -> None:
    """Records speak EduFed's context (plus the Data Integrity one), nothing else."""
    context = body.get("@context")
    entries = context if isinstance(context, list) else [context]
    for entry in entries:
        if isinstance(entry, str) and context_path(entry) is None:
            raise UnknownContextError(
                "Unknown JSON-LD context",
                detail=f"{entry} is not one of the contexts this node bundles; remote contexts are never fetched",
                field="@context",
            )
    if not entries or entries[0] != EDUFED_CONTEXT or any(e not in RECORD_CONTEXT for e in entries):
        raise Unprocessable(
            "Records must use the EduFed context",
            detail=f'"@context" must be "{EDUFED_CONTEXT}" or ["{EDUFED_CONTEXT}", "{DATA_INTEGRITY_CONTEXT}"]',
            field="@context",
        )


def check_type(body: dict[str, Any]) -> str:
    record_type = body.get("type")
    if not isinstance(record_type, str) or record_type not in PUBLISHABLE_TYPES:
        raise Unprocessable(
            "Unsupported record type",
            detail=f"type must be one of {', '.join(sorted(PUBLISHABLE_TYPES))}; got {record_type!r}",
            field="type",
        )
    return record_type


def local_id_from_iri(iri: str, records_base: str) -> str:
    """The ``{id}`` of ``{base}/records/{id}``; Unprocessable when the IRI is not one of ours."""
    local = iri.removeprefix(records_base)
    if not iri.startswith(records_base) or not LOCAL_ID.match(local):
        raise Unprocessable(
            "Record id must be a record IRI of this node",
            detail=f"expected {records_base}<id> with an id of letters, digits, '.', '_' or '-'; got {iri}",
            field="id",
        )
    return local


def draft(body: dict[str, Any], iri: str, version: int, now: datetime) -> dict[str, Any]:
    """The unsigned record: the body with our context, its IRI, version and modification date."""
    check_context(body)
    check_type(body)
    document = {k: v for k, v in body.items() if k not in NODE_MANAGED and k not in ("@context", "id")}
    return {"@context": list(RECORD_CONTEXT), "id": iri, **document, "version": version, "dateModified": iso(now)}


def check_record(document: dict[str, Any]) -> None:
    """Every term must expand (safe mode) and the record must satisfy its SHACL shape."""
    canonicalize(document)
    work.check()  # SHACL cannot be stopped midway: do not start it for a request that has ended
    violations = validate_document(document)
    if violations:
        first = violations[0]
        raise Unprocessable(
            "Record does not satisfy its shape",
            detail=first.message,
            field=first.path,
            code="shape-violation",
            extra={"violations": [{"field": v.path, "message": v.message} for v in violations]},
        )


def seal(document: dict[str, Any], signer: Signer, now: datetime) -> dict[str, Any]:
    """Sign a checked record as this node."""
    return sign(document, signer.key, signer.verification_method, created=now)


def tombstone(iri: str, former_type: str, version: int, now: datetime) -> dict[str, Any]:
    return {
        "@context": list(RECORD_CONTEXT),
        "id": iri,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": iso(now),
        "version": version,
        "dateModified": iso(now),
    }


def to_stored(document: dict[str, Any], local_id: str | None, *, deleted: bool = False) -> StoredRecord:
    iri = str(document["id"])
    return StoredRecord(
        iri=iri,
        local_id=local_id,
        origin=urlsplit(iri).netloc,
        type=str(document["type"]),
        version=int(document["version"]),
        date_modified=datetime.fromisoformat(str(document["dateModified"]).replace("Z", "+00:00")),
        document_json=json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        deleted=deleted,
    )
