"""``did:web`` and ``did:key`` identifiers, the node's DID document, and verification-method lookup.

Why the DID document lists retired keys: records and credentials signed before a rotation must still verify.
A retired key carries ``revoked`` (the Multikey term), and the proof verifier accepts it only for proofs
created before that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from node.errors import BadRequest, Unprocessable
from node.trust.multikey import decode_public_multibase

DID_V1_CONTEXT = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1_CONTEXT = "https://w3id.org/security/multikey/v1"
RELATIONS = (
    "assertionMethod", "authentication", "capabilityInvocation", "capabilityDelegation", "keyAgreement"
)


class InvalidDidError(BadRequest):
    code = "invalid-did"


class VerificationMethodError(Unprocessable):
    """The controller document does not authorise this key for this use."""

    code = "verification-method"


def iso_z(moment: datetime | str) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (XSD dateTimeStamp in UTC); ISO strings pass through normalised."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def did_web_from_base_url(base_url: str) -> str:
    """``https://host:port/a/b`` -> ``did:web:host%3Aport:a:b`` (did:web method spec)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidDidError("Base URL cannot name a did:web", detail=f"{base_url!r} has no http(s) host")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host += f":{parts.port}"
    segments = [quote(s, safe="") for s in parts.path.split("/") if s]
    return ":".join(["did:web", quote(host, safe="[]"), *segments])


def did_web_document_url(did: str, scheme: str = "https") -> str:
    """Where a did:web document lives: ``/.well-known/did.json`` for a bare host, else ``/path/did.json``."""
    if not did.startswith("did:web:"):
        raise InvalidDidError("Not a did:web", detail=did)
    method_specific = did.removeprefix("did:web:").split("#", 1)[0]
    host, *segments = method_specific.split(":")
    if not host:
        raise InvalidDidError("Not a did:web", detail=f"{did} has no host")
    path = "/".join(unquote(s) for s in segments) + "/did.json" if segments else ".well-known/did.json"
    return f"{scheme}://{unquote(host)}/{path}"


@dataclass(frozen=True)
class KeyEntry:
    """A public key of the node, when it was created and (once rotated out) when it was retired.

    Times are aware datetimes (the keyring's index stores them as ISO strings with ``Z``).
    """

    public_multibase: str
    created: datetime
    retired: datetime | None


def _method(controller: str, public_multibase: str) -> dict[str, Any]:
    return {
        "id": f"{controller}#{public_multibase}",
        "type": "Multikey",
        "controller": controller,
        "publicKeyMultibase": public_multibase,
    }


def build_did_document(did: str, entries: list[KeyEntry]) -> dict[str, Any]:
    """The node's DID document: every key (retired ones with ``revoked``) for assertions and logins."""
    methods = []
    for entry in entries:
        method = _method(did, entry.public_multibase)
        if entry.retired is not None:
            method["revoked"] = iso_z(entry.retired)
        methods.append(method)
    ids = [m["id"] for m in methods]
    return {
        "@context": [DID_V1_CONTEXT, MULTIKEY_V1_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": list(ids),
        "authentication": list(ids),
    }


def did_key_document(did_key: str) -> dict[str, Any]:
    """The DID document of an Ed25519 ``did:key:z6Mk…``, derived from the key itself (nothing fetched)."""
    did = did_key.split("#", 1)[0]
    public_multibase = did.removeprefix("did:key:")
    if not did.startswith("did:key:"):
        raise InvalidDidError("Not a did:key", detail=did_key)
    decode_public_multibase(public_multibase)
    method = _method(did, public_multibase)
    return {
        "@context": [DID_V1_CONTEXT, MULTIKEY_V1_CONTEXT],
        "id": did,
        "verificationMethod": [method],
        **{relation: [method["id"]] for relation in RELATIONS if relation != "keyAgreement"},
    }


def _absolute(ref: str, base: str) -> str:
    return base + ref if ref.startswith("#") else ref


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def lists_method(did_document: dict[str, Any], method_id: str) -> bool:
    """Whether the document defines the verification method ``method_id`` (on its own or embedded)."""
    base = str(did_document.get("id", ""))
    return any(
        isinstance(entry, dict) and _absolute(str(entry.get("id", "")), base) == method_id
        for key in ("verificationMethod", "assertionMethod", "authentication")
        for entry in _as_list(did_document.get(key))
    )


def find_verification_method(did_document: dict[str, Any], method_id: str, relation: str) -> dict[str, Any]:
    """The method ``method_id`` if ``did_document`` lists it under ``relation`` and is its controller."""
    doc_id = did_document.get("id")
    if not isinstance(doc_id, str):
        raise VerificationMethodError("Controller document has no id", field="id")
    found: dict[str, Any] | None = None
    authorised = False
    for entry in _as_list(did_document.get("verificationMethod")):
        if isinstance(entry, dict) and _absolute(str(entry.get("id", "")), doc_id) == method_id:
            found = entry
    for entry in _as_list(did_document.get(relation)):
        if isinstance(entry, str) and _absolute(entry, doc_id) == method_id:
            authorised = True
        elif isinstance(entry, dict) and _absolute(str(entry.get("id", "")), doc_id) == method_id:
            authorised, found = True, entry
    if found is None:
        raise VerificationMethodError(
            "Verification method not found", detail=f"{method_id} is not in the document of {doc_id}",
            field="verificationMethod")
    if not authorised:
        raise VerificationMethodError(
            "Verification method not authorised",
            detail=f"{method_id} is not listed under {relation} of {doc_id}", field=relation,
            code="key-not-authorised")
    controller = found.get("controller", doc_id)
    if controller != doc_id:
        raise VerificationMethodError(
            "Verification method controller mismatch",
            detail=f"{method_id} names controller {controller!r}, but it is listed by {doc_id}",
            field="controller", code="controller-mismatch")
    return {**found, "id": method_id, "controller": controller}
