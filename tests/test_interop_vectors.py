"""The independent JavaScript verifier on official vectors: it must accept them and refuse tampered copies.

Why: interop tests trust this verifier's verdict on our own output, so it has to be shown right first, on
documents signed by others (W3C vc-di-eddsa, 1EdTech Open Badges 3.0).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests import interop_verifier
from tests.interop_verifier import InteropVerifierError, collect_contexts, verify_independently

VECTORS = Path(__file__).resolve().with_name("vectors")
W3C_SIGNED = VECTORS / "w3c-vc-di-eddsa" / "TestVectors" / "eddsa-rdfc-2022" / "signedDataInt.json"
W3C_KEY = VECTORS / "w3c-vc-di-eddsa" / "TestVectors" / "keyPair.json"
OB3_SIGNED = VECTORS / "1edtech-ob3" / "ob3-signed.json"
OB3_KEY = VECTORS / "1edtech-ob3" / "keyPair.json"
DID_V1 = "https://www.w3.org/ns/did/v1"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
VERIFIED = {"verified": True, "error": ""}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _controller_document(controller: str, method_id: str, public_key: str, relation: str) -> dict[str, Any]:
    """A minimal controller (DID) document listing one Multikey under ``relation``."""
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": controller,
        "verificationMethod": [
            {"id": method_id, "type": "Multikey", "controller": controller, "publicKeyMultibase": public_key}
        ],
        relation: [method_id],
    }


def _w3c_controllers() -> dict[str, dict[str, Any]]:
    public_key = str(_load(W3C_KEY)["publicKeyMultibase"])
    did = f"did:key:{public_key}"
    return {did: _controller_document(did, f"{did}#{public_key}", public_key, "assertionMethod")}


def _ob3_controllers(relation: str = "assertionMethod") -> dict[str, dict[str, Any]]:
    key = _load(OB3_KEY)
    controller = str(key["controller"])
    public_key = str(key["publicKeyMultibase"])
    return {controller: _controller_document(controller, str(key["id"]), public_key, relation)}


def test_w3c_vector_verifies_at_proof_level() -> None:
    document = _load(W3C_SIGNED)
    assert document["proof"]["verificationMethod"].startswith("did:key:")
    assert verify_independently(document, _w3c_controllers(), kind="record") == VERIFIED


def test_w3c_vector_did_key_resolves_without_a_given_document() -> None:
    """did:key is derived from the key itself, so no controller document has to be supplied."""
    assert verify_independently(_load(W3C_SIGNED), {}, kind="record")["verified"] is True


def test_w3c_vector_tampered_is_rejected() -> None:
    document = _load(W3C_SIGNED)
    document["credentialSubject"]["alumniOf"] = "The School of Forgeries"
    result = verify_independently(document, _w3c_controllers(), kind="record")
    assert result["verified"] is False
    assert "Invalid signature" in result["error"]


def test_w3c_vector_tampered_proof_option_is_rejected() -> None:
    """The proof options are signed too: moving ``created`` must break the signature."""
    document = _load(W3C_SIGNED)
    document["proof"]["created"] = "2023-02-24T23:36:39Z"
    assert verify_independently(document, _w3c_controllers(), kind="record")["verified"] is False


def test_w3c_vector_as_credential_is_refused_for_issuer_mismatch() -> None:
    """DESIGN §9: its issuer is not the key's controller, which a credential check must refuse."""
    result = verify_independently(_load(W3C_SIGNED), _w3c_controllers(), kind="credential")
    assert result["verified"] is False
    assert "issuer must match" in result["error"]


def test_ob3_vector_verifies_as_credential() -> None:
    document = _load(OB3_SIGNED)
    assert document["issuer"]["id"] == _load(OB3_KEY)["controller"]
    assert verify_independently(document, _ob3_controllers(), kind="credential") == VERIFIED


def test_ob3_vector_tampered_is_rejected() -> None:
    document = _load(OB3_SIGNED)
    document["credentialSubject"]["achievement"]["name"] = "Teamwork (forged)"
    result = verify_independently(document, _ob3_controllers(), kind="credential")
    assert result["verified"] is False
    assert "Invalid signature" in result["error"]


def test_ob3_key_not_under_assertion_method_is_rejected() -> None:
    """A valid signature is not enough: the controller must authorise the key for assertions."""
    result = verify_independently(_load(OB3_SIGNED), _ob3_controllers("authentication"), kind="record")
    assert result["verified"] is False
    assert "not authorized" in result["error"]


def test_missing_controller_document_is_an_error_not_a_fetch() -> None:
    result = verify_independently(_load(OB3_SIGNED), {}, kind="credential")
    assert result["verified"] is False
    assert "was not given to the interop verifier" in result["error"]


def test_unbundled_context_is_an_error_not_a_fetch() -> None:
    document = copy.deepcopy(_load(OB3_SIGNED))
    document["@context"].append("https://example.org/unbundled/v1")
    result = verify_independently(document, _ob3_controllers(), kind="credential")
    assert result["verified"] is False
    assert "https://example.org/unbundled/v1" in result["error"]


def test_collect_contexts_takes_only_what_the_documents_name() -> None:
    contexts = collect_contexts([_load(OB3_SIGNED), *_ob3_controllers().values()])
    assert set(contexts) == {
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        DID_V1,
        MULTIKEY_V1,
    }
    assert all("@context" in doc for doc in contexts.values())


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        verify_independently(_load(OB3_SIGNED), {}, kind="bogus")


def test_missing_node_modules_fails_loudly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CI installs the JavaScript stack; without it the interop tests must fail, not skip."""
    monkeypatch.setattr(interop_verifier, "INTEROP_DIR", tmp_path)
    with pytest.raises(InteropVerifierError, match="npm ci --prefix tests/interop"):
        verify_independently(_load(OB3_SIGNED), _ob3_controllers(), kind="credential")


def test_schemaorg_context_is_pinned_and_usable() -> None:
    """The schema.org snapshot must stay byte-identical to the release it names, under both IRIs."""
    manifest = json.loads((interop_verifier.CONTEXTS_DIR / "manifest.json").read_text("utf-8"))
    https, http = manifest["https://schema.org/"], manifest["http://schema.org/"]
    assert https == http
    data = (interop_verifier.CONTEXTS_DIR / https["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == https["sha256"]
    context = json.loads(data)["@context"]
    assert context["@vocab"] == "http://schema.org/"
    assert context["url"] == {"@id": "schema:url", "@type": "@id"}
    assert collect_contexts([{"@context": "https://schema.org/"}])["https://schema.org/"] == json.loads(data)
