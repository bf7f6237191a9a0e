"""Run the independent JavaScript (Digital Bazaar) Data Integrity verifier in ``tests/interop/``.

Why: a signer and a verifier written together can share a mistake and still agree. Interop tests hand our
signed documents to another implementation, fed only with our bundled contexts and the controller documents
the test gives, so a pass means the proof holds outside EduFed's own code.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
INTEROP_DIR = Path(__file__).resolve().with_name("interop")
VERIFY_SCRIPT = INTEROP_DIR / "verify.mjs"
CONTEXTS_DIR = REPO_ROOT / "node" / "ld" / "contexts"
VOCAB_DIR = REPO_ROOT / "vocab"
EDUFED_CONTEXT = "https://w3id.org/edufed/v1"
EDUFED_CONTEXT_FILE = VOCAB_DIR / "v1" / "context.jsonld"
TIMEOUT_SECONDS = 60.0
KINDS = ("record", "credential")


class InteropVerifierError(RuntimeError):
    """The independent verifier could not run (not installed, crashed, or a bundled context is broken)."""


def _manifest() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((CONTEXTS_DIR / "manifest.json").read_text("utf-8"))
    return data


def _context_file(iri: str, entry: dict[str, Any] | None) -> Path | None:
    """Where the bundle keeps ``iri``'s context; ours lives in ``vocab/`` (manifest prefix ``vocab:``)."""
    if entry is None:
        return EDUFED_CONTEXT_FILE if iri == EDUFED_CONTEXT else None
    file = str(entry["file"])
    if file.startswith("vocab:"):
        return VOCAB_DIR / file.removeprefix("vocab:")
    return (CONTEXTS_DIR / file).resolve()


def _load_context(iri: str, manifest: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The bundled context document for ``iri`` (hash-checked when pinned); None when not bundled."""
    entry = manifest.get(iri)
    path = _context_file(iri, entry)
    if path is None or not path.is_file():
        return None
    data = path.read_bytes()
    expected = entry.get("sha256") if entry is not None else None
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise InteropVerifierError(f"bundled context {path} for {iri} does not match its pinned sha256")
    document: dict[str, Any] = json.loads(data)
    return document


def _context_iris(value: Any) -> Iterator[str]:
    """Every remote context IRI referenced anywhere in ``value`` (``@context`` at any depth, ``@import``)."""
    if isinstance(value, list):
        for item in value:
            yield from _context_iris(item)
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if key == "@context":
            for ctx in item if isinstance(item, list) else [item]:
                if isinstance(ctx, str):
                    yield ctx
                else:
                    yield from _context_iris(ctx)
        elif key == "@import" and isinstance(item, str):
            yield item
        else:
            yield from _context_iris(item)


def collect_contexts(documents: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The bundled contexts these documents need, followed transitively.

    Unbundled IRIs are left out on purpose, so the verifier fails on them as a node without them would.
    """
    manifest = _manifest()
    found: dict[str, dict[str, Any]] = {}
    pending = [iri for doc in documents for iri in _context_iris(doc)]
    seen: set[str] = set()
    while pending:
        iri = pending.pop()
        if iri in seen:
            continue
        seen.add(iri)
        document = _load_context(iri, manifest)
        if document is None:
            continue
        found[iri] = document
        pending.extend(_context_iris(document))
    return found


def _node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise InteropVerifierError("Node.js (`node`) is not on PATH; the interop verifier needs Node.js 20+")
    return node


def ensure_installed() -> None:
    """Fail loudly (never skip) when the JavaScript dependencies are missing: CI installs them."""
    if not (INTEROP_DIR / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        raise InteropVerifierError(
            "tests/interop/node_modules is missing: "
            "run `npm ci --prefix tests/interop` from the repository root"
        )


def verify_independently(
    document: dict[str, Any], controllers: dict[str, dict[str, Any]], kind: str = "record"
) -> dict[str, Any]:
    """Verify ``document``'s proof with the JavaScript stack; returns ``{"verified": bool, "error": str}``.

    ``kind="record"`` checks the proof with an assertionMethod purpose (the key must be listed under its
    controller's ``assertionMethod``); ``kind="credential"`` runs ``vc.verifyCredential``, which also requires
    the issuer to be the key's controller.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    ensure_installed()
    payload = {
        "document": document,
        "controllers": controllers,
        "contexts": collect_contexts([document, *controllers.values()]),
        "kind": kind,
    }
    try:
        completed = subprocess.run(
            [_node_binary(), str(VERIFY_SCRIPT)],
            input=json.dumps(payload).encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            cwd=INTEROP_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InteropVerifierError(f"interop verifier timed out after {TIMEOUT_SECONDS} s") from exc
    stdout = completed.stdout.decode("utf-8", errors="replace").strip()
    stderr = completed.stderr.decode("utf-8", errors="replace").strip()
    lines = stdout.splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError as exc:
        raise InteropVerifierError(f"interop verifier printed no JSON result: {stdout!r} {stderr!r}") from exc
    if completed.returncode != 0 or not isinstance(result.get("verified"), bool):
        raise InteropVerifierError(
            f"interop verifier failed (exit {completed.returncode}): {stdout!r} {stderr!r}"
        )
    return result
