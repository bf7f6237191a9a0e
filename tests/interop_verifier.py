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

from node.trust.multikey import Ed25519Key

REPO_ROOT = Path(__file__).resolve().parents[1]
INTEROP_DIR = Path(__file__).resolve().with_name("interop")
VERIFY_SCRIPT = INTEROP_DIR / "verify.mjs"
SIGN_SCRIPT = INTEROP_DIR / "sign.mjs"
CONTEXTS_DIR = REPO_ROOT / "node" / "ld" / "contexts"
VOCAB_DIR = REPO_ROOT / "vocab"
EDUFED_CONTEXT = "https://w3id.org/edufed/v1"
EDUFED_CONTEXT_FILE = VOCAB_DIR / "v1" / "context.jsonld"
TIMEOUT_SECONDS = 60.0
KINDS = ("record", "credential", "presentation")


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


def _run_script(script: Path, payload: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    """Run ``script`` with ``payload`` on stdin; its exit code, the JSON on its last stdout line, and a
    description of what it printed (for error messages)."""
    try:
        completed = subprocess.run(
            [_node_binary(), str(script)],
            input=json.dumps(payload).encode("utf-8"),
            capture_output=True,
            timeout=TIMEOUT_SECONDS,
            cwd=INTEROP_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InteropVerifierError(f"{script.name} timed out after {TIMEOUT_SECONDS} s") from exc
    stdout = completed.stdout.decode("utf-8", errors="replace").strip()
    stderr = completed.stderr.decode("utf-8", errors="replace").strip()
    lines = stdout.splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError as exc:
        raise InteropVerifierError(f"{script.name} printed no JSON result: {stdout!r} {stderr!r}") from exc
    if not isinstance(result, dict):
        raise InteropVerifierError(f"{script.name} printed JSON that is not an object: {stdout!r} {stderr!r}")
    return completed.returncode, result, f"{stdout!r} {stderr!r}"


def verify_independently(
    document: dict[str, Any],
    controllers: dict[str, dict[str, Any]],
    kind: str = "record",
    challenge: str | None = None,
    domain: str | None = None,
    status_lists: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Verify ``document``'s proof with the JavaScript stack; returns ``{"verified": bool, "error": str}``.

    ``status_lists`` (status list credential URL -> the credential, as fetched) lets the JavaScript side check
    a credential's Bitstring Status List entries itself; without them a ``credentialStatus`` is refused.

    ``kind="record"`` checks the proof with an assertionMethod purpose (the key must be listed under its
    controller's ``assertionMethod``); ``kind="credential"`` runs ``vc.verifyCredential``, which also requires
    the issuer to be the key's controller; ``kind="presentation"`` runs ``vc.verify`` on a VerifiablePresentation
    (authentication proof with this ``challenge``, required, and ``domain``; every embedded credential; and the
    proving key's controller must be the ``holder``).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "presentation" and not challenge:
        raise ValueError("kind='presentation' is verified against a challenge: pass challenge=")
    ensure_installed()
    payload: dict[str, Any] = {
        "document": document,
        "controllers": controllers,
        "contexts": collect_contexts([document, *controllers.values()]),
        "kind": kind,
    }
    if challenge is not None:
        payload["challenge"] = challenge
    if domain is not None:
        payload["domain"] = domain
    if status_lists is not None:
        payload["statusLists"] = status_lists
        payload["contexts"] = collect_contexts([document, *controllers.values(), *status_lists.values()])
    returncode, result, printed = _run_script(VERIFY_SCRIPT, payload)
    if returncode != 0 or not isinstance(result.get("verified"), bool):
        raise InteropVerifierError(f"interop verifier failed (exit {returncode}): {printed}")
    return result


def sign_independently(
    credential: dict[str, Any], key_seed_or_multibase: bytes | str, created: str | None = None
) -> dict[str, Any]:
    """Issue ``credential`` with the JavaScript stack (``vc.issue``, ``eddsa-rdfc-2022``) as a ``did:key`` issuer.

    The key is a 32-byte Ed25519 seed, or a ``secretKeyMultibase`` (``z3u2…``, multicodec ed25519-priv). The
    issuer becomes ``did:key:<publicKeyMultibase>`` (``issuer.id`` when the issuer is an object) and the proof's
    verificationMethod ``did:key:…#<publicKeyMultibase>``. ``created`` (XSD dateTimeStamp) fixes the proof
    date for reproducible output. Returns the signed credential; raises InteropVerifierError when it refuses.
    """
    ensure_installed()
    payload: dict[str, Any] = {"credential": credential, "contexts": collect_contexts([credential])}
    if isinstance(key_seed_or_multibase, bytes):
        if len(key_seed_or_multibase) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, not {len(key_seed_or_multibase)}")
        payload["seed"] = key_seed_or_multibase.hex()
    else:
        payload["privateKeyMultibase"] = key_seed_or_multibase
        payload["publicKeyMultibase"] = Ed25519Key.from_private_multibase(key_seed_or_multibase).public_multibase
    if created is not None:
        payload["created"] = created
    returncode, result, printed = _run_script(SIGN_SCRIPT, payload)
    if returncode != 0 or "proof" not in result:
        raise InteropVerifierError(f"independent signer refused (exit {returncode}): {printed}")
    return result
