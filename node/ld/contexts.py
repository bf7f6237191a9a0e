"""The bundled, pinned JSON-LD contexts.

A proof only means something if every party expands a document with the same context bytes, so EduFed never
fetches a context: the ones it understands ship with the package, each pinned by SHA-256 in ``manifest.json``.
Our own vocabulary (``vocab/``) is the single source of its context; the manifest points at it with the
``vocab:`` prefix.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

CONTEXTS_DIR = Path(__file__).with_name("contexts")
EDUFED_CONTEXT = "https://w3id.org/edufed/v1"
DATA_INTEGRITY_CONTEXT = "https://w3id.org/security/data-integrity/v2"
CREDENTIALS_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
CREDENTIALS_V1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
RECORD_CONTEXT: tuple[str, ...] = (EDUFED_CONTEXT, DATA_INTEGRITY_CONTEXT)


def vocab_dir() -> Path:
    """Where ``vocab/`` is: the repository's folder in a checkout, ``node/_vocab`` in an installed wheel."""
    checkout = Path(__file__).resolve().parents[2] / "vocab"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parents[1] / "_vocab"


@cache
def manifest() -> dict[str, dict[str, Any]]:
    """Context IRI -> {file, source, sha256}."""
    data: dict[str, dict[str, Any]] = json.loads((CONTEXTS_DIR / "manifest.json").read_text("utf-8"))
    return data


def context_path(iri: str) -> Path | None:
    """The file holding the context for ``iri``, or None when the context is not bundled."""
    entry = manifest().get(iri)
    if entry is None:
        return None
    file = str(entry["file"])
    if file.startswith("vocab:"):
        return vocab_dir() / file.removeprefix("vocab:")
    return CONTEXTS_DIR / file


@cache
def context_bytes(iri: str) -> bytes:
    """The exact pinned bytes of a bundled context; KeyError when it is not bundled or its hash is wrong."""
    path = context_path(iri)
    if path is None:
        raise KeyError(iri)
    data = path.read_bytes()
    expected = manifest()[iri].get("sha256")
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise KeyError(f"{iri}: bundled file {path.name} does not match its pinned sha256")
    return data


@cache
def context_document(iri: str) -> dict[str, Any]:
    """The parsed context document (shared: callers must not mutate it)."""
    doc: dict[str, Any] = json.loads(context_bytes(iri))
    return doc


def published_digests(iri: str) -> dict[str, bytes] | None:
    """Digests (algorithm -> bytes) of the document at ``iri`` as its publisher serves it, when the manifest
    records them: a ``relatedResource`` naming that document can be checked without fetching it."""
    entry = manifest().get(iri, {}).get("published")
    if not isinstance(entry, dict):
        return None
    return {name: bytes.fromhex(value) for name, value in entry.items() if name in ("sha256", "sha384")}


def bundled_iris() -> list[str]:
    return sorted(manifest())
