"""eddsa-rdfc-2022 proofs, Multikey keys and DID documents: official vectors, tampering, and interop.

Why: Ed25519 is deterministic, so signing a published vector's input must reproduce its proofValue byte for
byte; every check of the verifier must refuse the tampering it exists for; and what we sign must verify in an
independent implementation (Digital Bazaar's JavaScript stack) given only the DID document we publish.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from node.errors import EduFedError
from node.ld.canon import canonicalize
from node.trust.did import (
    KeyEntry,
    VerificationMethodError,
    build_did_document,
    did_key_document,
    did_web_document_url,
    did_web_from_base_url,
    find_verification_method,
)
from node.trust.multikey import (
    Ed25519Key,
    MultikeyError,
    decode_multibase,
    decode_public_multibase,
    encode_multibase,
    verify_signature,
)
from node.trust.proofs import VerificationResult, sign, verify
from tests.interop_verifier import verify_independently

VECTORS = Path(__file__).resolve().with_name("vectors")
W3C = VECTORS / "w3c-vc-di-eddsa" / "TestVectors"
W3C_STEPS = W3C / "eddsa-rdfc-2022"
OB3 = VECTORS / "1edtech-ob3"
NODE_DID = "did:web:a.example"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _text(path: Path) -> str:
    return path.read_text("utf-8").strip()


def _no_resolve(controller: str) -> dict[str, Any]:
    raise AssertionError(f"nothing should be resolved, asked for {controller}")


def _w3c_key() -> Ed25519Key:
    return Ed25519Key.from_private_multibase(str(_load(W3C / "keyPair.json")["privateKeyMultibase"]))


def _ob3_key() -> Ed25519Key:
    return Ed25519Key.from_seed(bytes.fromhex(str(_load(OB3 / "keyPair.json")["privateKeyHex"]))[:32])


def _ob3_controller(relation: str = "assertionMethod") -> dict[str, Any]:
    pair = _load(OB3 / "keyPair.json")
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": pair["controller"],
        "verificationMethod": [{"id": pair["id"], "type": "Multikey", "controller": pair["controller"],
                                "publicKeyMultibase": pair["publicKeyMultibase"]}],
        relation: [pair["id"]],
    }


def _course() -> dict[str, Any]:
    return {
        "@context": ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"],
        "id": "https://a.example/records/course-1",
        "type": "Course",
        "name": {"en": "Bell ringing", "fi": "Kellonsoitto"},
        "description": {"en": "Change ringing for beginners."},
        "provider": "https://a.example/",
        "hasCourseInstance": ["https://a.example/records/run-1"],
        "dateModified": "2024-05-01T12:00:00Z",
        "version": 1,
    }


def _credential(issuer: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
        "id": "urn:uuid:0b6f2f0e-6c2a-4a43-9f4e-0c3b1b7b6a01",
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": {"id": issuer, "type": ["Profile"], "name": "A node"},
        "validFrom": "2024-05-01T12:00:00Z",
        "name": "Bell ringing, level 1",
        "credentialSubject": {
            "id": "did:key:z6MkhWqdDBPojHA7cprTGTt5yHv5yUi1B8cnXn8ReLumkw6E",
            "type": ["AchievementSubject"],
            "achievement": {"id": "https://a.example/achievements/bells-1", "type": ["Achievement"],
                            "name": "Bell ringing 1", "description": "Rings rounds.",
                            "criteria": {"narrative": "Rang rounds on six bells."}},
        },
    }


class Node:
    """A node identity: its key ring as KeyEntry list and its DID document."""

    def __init__(self, did: str = NODE_DID) -> None:
        self.did = did
        self.key = Ed25519Key.generate()
        self.entries = [KeyEntry(self.key.public_multibase, datetime(2024, 1, 1, tzinfo=UTC), None)]

    @property
    def method(self) -> str:
        return f"{self.did}#{self.key.public_multibase}"

    def document(self) -> dict[str, Any]:
        return build_did_document(self.did, self.entries)

    def resolve(self, did: str) -> dict[str, Any]:
        assert did == self.did
        return self.document()

    def sign(self, document: dict[str, Any], created: datetime = CREATED, **extra: Any) -> dict[str, Any]:
        return sign(document, self.key, self.method, created=created, **extra)


def _failed(result: VerificationResult) -> str:
    assert result.verified is False, result
    return result.failures[0].name


# --- official vectors ------------------------------------------------------------------------------------


def test_w3c_vector_every_step() -> None:
    unsigned = _load(W3C / "unsigned.json")
    config = _load(W3C_STEPS / "proofConfigDataInt.json")
    proof_hash = hashlib.sha256(canonicalize(config).encode()).hexdigest()
    doc_hash = hashlib.sha256(canonicalize(unsigned).encode()).hexdigest()
    assert proof_hash == _text(W3C_STEPS / "proofHashDataInt.txt")
    assert doc_hash == _text(W3C_STEPS / "docHashDataInt.txt")
    assert proof_hash + doc_hash == _text(W3C_STEPS / "combinedHashDataInt.txt")
    key = _w3c_key()
    assert key.public_multibase == _load(W3C / "keyPair.json")["publicKeyMultibase"]
    signature = key.sign(bytes.fromhex(proof_hash + doc_hash))
    assert signature.hex() == _text(W3C_STEPS / "sigHexDataInt.txt")
    assert encode_multibase(signature) == _text(W3C_STEPS / "sigBTC58DataInt.txt")


def test_w3c_vector_sign_reproduces_signed_document() -> None:
    signed = _load(W3C_STEPS / "signedDataInt.json")
    created = datetime.fromisoformat(signed["proof"]["created"].replace("Z", "+00:00"))
    method = signed["proof"]["verificationMethod"]
    ours = sign(_load(W3C / "unsigned.json"), _w3c_key(), method, created=created)
    assert ours == signed


def test_w3c_vector_verifies_at_proof_level() -> None:
    """DESIGN §9: its issuer is not its key's controller, so without an expected controller it verifies."""
    signed = _load(W3C_STEPS / "signedDataInt.json")
    result = verify(signed, _no_resolve)
    assert result.verified, result
    assert {c.name for c in result.checks} >= {"signature", "controller", "purpose", "canonicalization"}
    assert _failed(verify(signed, _no_resolve, expected_controller=signed["issuer"])) == "controller"


def test_ob3_vector_sign_and_verify() -> None:
    intermediate = _load(OB3 / "ob3-intermediate.json")
    signed = _load(OB3 / "ob3-signed.json")
    created = datetime.fromisoformat(signed["proof"]["created"].replace("Z", "+00:00"))
    ours = sign(_load(OB3 / "ob3-unsigned.json"), _ob3_key(), signed["proof"]["verificationMethod"],
                created=created)
    assert ours["proof"]["proofValue"] == intermediate["proofValue"] == signed["proof"]["proofValue"]
    assert _ob3_key().sign(bytes.fromhex(intermediate["hashData"])).hex() == intermediate["signatureHex"]
    issuer = signed["issuer"]["id"]
    resolve = {issuer: _ob3_controller()}.__getitem__
    assert verify(signed, resolve, expected_controller=issuer).verified
    assert _failed(verify(signed, {issuer: _ob3_controller("authentication")}.__getitem__)) == "purpose"


@pytest.mark.parametrize("name", ["signedProofSet2.json", "signedProofChain2.json"])
def test_w3c_proof_sets_and_chains(name: str) -> None:
    """A list of proofs: every one is verified (chains with their previousProof included)."""
    document = _load(W3C / "proof-set-chain" / name)
    result = verify(document, _no_resolve)
    assert result.verified, result.error
    assert sum(c.name == "signature" and c.ok for c in result.checks) == len(document["proof"])
    document["proof"][1]["created"] = "2023-02-24T23:36:39Z"
    result = verify(document, _no_resolve)
    assert not result.verified
    failed = [c.reason for c in result.failures]
    assert failed[0] == "proof 1: Ed25519 signature does not match"
    # in the chain, proof 2 signs over proof 1 (its previousProof), so it breaks too; proof 0 stands
    assert failed[1:] == (["proof 2: Ed25519 signature does not match"] if "Chain" in name else [])


# --- our own proofs, and the checks that refuse tampering -----------------------------------------------


def test_sign_then_verify_record() -> None:
    node = Node()
    signed = node.sign(_course())
    assert signed["proof"]["created"] == "2024-05-01T12:00:00Z"
    assert verify(signed, node.resolve, expected_controller=NODE_DID).verified
    assert "proof" not in _course()  # input left alone


def test_sign_adds_data_integrity_context_when_missing() -> None:
    node = Node()
    document = _course()
    document["@context"] = ["https://w3id.org/edufed/v1"]
    signed = node.sign(document)
    assert signed["@context"] == ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"]
    assert verify(signed, node.resolve).verified


def _tamper_value(d: dict[str, Any]) -> None:
    d["name"]["en"] = "Bell wringing"


def _tamper_add_defined(d: dict[str, Any]) -> None:
    d["keywords"] = {"en": "bells"}


def _tamper_add_undefined(d: dict[str, Any]) -> None:
    d["price"] = 10


def _tamper_context(d: dict[str, Any]) -> None:
    d["@context"] = ["https://schema.org/", "https://w3id.org/security/data-integrity/v2"]


def _tamper_proof_created(d: dict[str, Any]) -> None:
    d["proof"]["created"] = "2024-05-01T12:00:01Z"


def _tamper_proof_method(d: dict[str, Any]) -> None:
    d["proof"]["verificationMethod"] = d["proof"]["verificationMethod"].replace("a.example", "b.example")


def _tamper_proof_value(d: dict[str, Any]) -> None:
    signature = bytearray(decode_multibase(d["proof"]["proofValue"]))
    signature[0] ^= 1
    d["proof"]["proofValue"] = encode_multibase(bytes(signature))


def _tamper_purpose(d: dict[str, Any]) -> None:
    d["proof"]["proofPurpose"] = "authentication"


def _tamper_suite(d: dict[str, Any]) -> None:
    d["proof"]["cryptosuite"] = "ecdsa-rdfc-2019"


def _tamper_no_proof(d: dict[str, Any]) -> None:
    del d["proof"]


def _tamper_future(d: dict[str, Any]) -> None:
    d["proof"]["created"] = "2999-01-01T00:00:00Z"


def _tamper_bad_date(d: dict[str, Any]) -> None:
    d["proof"]["created"] = "yesterday"


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (_tamper_value, "signature"),
        (_tamper_add_defined, "signature"),
        (_tamper_add_undefined, "canonicalization"),
        (_tamper_context, "signature"),
        (_tamper_proof_created, "signature"),
        (_tamper_proof_method, "verification-method"),
        (_tamper_proof_value, "signature"),
        (_tamper_purpose, "purpose"),
        (_tamper_suite, "cryptosuite"),
        (_tamper_no_proof, "proof-present"),
        (_tamper_future, "created"),
        (_tamper_bad_date, "created"),
    ],
)
def test_tampering_is_refused(tamper: Any, check: str) -> None:
    node = Node()
    signed = node.sign(_course())
    assert verify(signed, node.resolve, now=CREATED).verified
    tamper(signed)

    def resolve(did: str) -> dict[str, Any]:
        if did != NODE_DID:
            raise LookupError(f"unknown {did}")
        return node.document()

    assert _failed(verify(signed, resolve, now=CREATED)) == check


def test_wrong_key_is_refused() -> None:
    """The DID document names another key under the same verification method id."""
    node, impostor = Node(), Node()
    signed = impostor.sign(_course())
    signed["proof"]["verificationMethod"] = node.method
    assert _failed(verify(signed, node.resolve)) == "signature"
    signed = impostor.sign(_course())  # impostor's key id is not in the node's DID document
    assert _failed(verify(signed, node.resolve)) == "verification-method"


def test_key_rotation_and_revocation() -> None:
    """Retired keys stay listed with ``revoked``: earlier proofs verify, later ones are refused."""
    node = Node()
    before = node.sign(_course(), created=CREATED)
    after = node.sign(_course(), created=CREATED + timedelta(days=2))
    old = node.key
    node.key = Ed25519Key.generate()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    node.entries = [KeyEntry(old.public_multibase, start, CREATED + timedelta(days=1)),
                    KeyEntry(node.key.public_multibase, CREATED + timedelta(days=1), None)]
    did_doc = node.document()
    assert did_doc["verificationMethod"][0]["revoked"] == "2024-05-02T12:00:00Z"
    assert "revoked" not in did_doc["verificationMethod"][1]
    assert len(did_doc["assertionMethod"]) == 2
    assert verify(before, node.resolve).verified
    assert _failed(verify(after, node.resolve)) == "key-revoked"
    # [ID-7] the instant of revocation is already too late; one second before is not
    at_revocation = sign(_course(), old, before["proof"]["verificationMethod"], created=CREATED + timedelta(days=1))
    assert _failed(verify(at_revocation, node.resolve)) == "key-revoked"
    one_before = sign(_course(), old, before["proof"]["verificationMethod"],
                      created=CREATED + timedelta(days=1, seconds=-1))
    assert verify(one_before, node.resolve).verified
    assert verify(node.sign(_course(), created=CREATED + timedelta(days=2)), node.resolve).verified


def test_controller_checks() -> None:
    node = Node()
    signed = node.sign(_course())
    assert _failed(verify(signed, node.resolve, expected_controller="did:web:b.example")) == "controller"
    lying = node.document()
    lying["verificationMethod"][0]["controller"] = "did:web:b.example"
    assert _failed(verify(signed, lambda did: lying)) == "controller"
    other_id = {**node.document(), "id": "did:web:b.example"}
    assert _failed(verify(signed, lambda did: other_id)) == "controller"


def test_challenge_and_domain() -> None:
    node = Node()
    signed = node.sign(_course(), proof_purpose="authentication", challenge="c-123", domain="https://v.example")
    ok = verify(signed, node.resolve, expected_purpose="authentication", challenge="c-123",
                domain="https://v.example")
    assert ok.verified, ok.error
    auth = "authentication"
    assert _failed(verify(signed, node.resolve, expected_purpose=auth, challenge="c-999")) == "challenge"
    assert _failed(verify(signed, node.resolve, expected_purpose="authentication",
                          domain="https://evil.example")) == "domain"
    signed["proof"]["challenge"] = "c-999"
    assert _failed(verify(signed, node.resolve, expected_purpose=auth, challenge="c-999")) == "signature"


def test_proof_set_signed_by_us() -> None:
    first, second = Node(), Node("did:web:b.example")
    both = second.sign(first.sign(_course()))
    assert isinstance(both["proof"], list) and len(both["proof"]) == 2
    docs = {first.did: first.document(), second.did: second.document()}
    assert verify(both, docs.__getitem__).verified
    both["proof"][0]["proofValue"] = both["proof"][1]["proofValue"]
    assert not verify(both, docs.__getitem__).verified


@pytest.mark.parametrize("bad", [None, [], "text", {"proof": "not an object"}, {"proof": [1]}])
def test_verify_never_raises(bad: Any) -> None:
    result = verify(bad, _no_resolve)
    assert result.verified is False
    assert result.failures[0].name == "proof-present"


def test_sign_refuses_undefined_terms() -> None:
    document = _course()
    document["price"] = 10
    with pytest.raises(EduFedError, match="Undefined JSON-LD term"):
        Node().sign(document)


# --- Multikey and DIDs -----------------------------------------------------------------------------------


def test_key_pem_round_trip_and_multibase() -> None:
    key = Ed25519Key.generate()
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = Ed25519Key.from_pem(pem)
    assert again.public_multibase == key.public_multibase and key.public_multibase.startswith("z6Mk")
    assert decode_multibase(key.public_multibase)[:2] == b"\xed\x01"
    assert verify_signature(key.public_multibase, b"data", key.sign(b"data"))
    assert not verify_signature(key.public_multibase, b"datA", key.sign(b"data"))
    assert not verify_signature(key.public_multibase, b"data", b"short")


def test_multikey_refuses_other_keys() -> None:
    raw = decode_multibase(Ed25519Key.generate().public_multibase)
    with pytest.raises(MultikeyError, match="header"):
        decode_public_multibase(encode_multibase(b"\x12\x00" + raw[2:]))  # secp256k1-pub header
    with pytest.raises(MultikeyError, match="bytes"):
        decode_public_multibase(encode_multibase(raw + b"\x00"))
    with pytest.raises(MultikeyError):
        decode_public_multibase("u" + raw.hex())
    with pytest.raises(MultikeyError):
        decode_public_multibase("z0OIl")  # not base58
    p256 = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(MultikeyError, match="Ed25519"):
        Ed25519Key.from_pem(p256)


@pytest.mark.parametrize(
    ("base_url", "did", "url"),
    [
        ("https://a.example", "did:web:a.example", "https://a.example/.well-known/did.json"),
        ("https://A.Example/", "did:web:a.example", "https://a.example/.well-known/did.json"),
        ("http://127.0.0.1:8001", "did:web:127.0.0.1%3A8001", "https://127.0.0.1:8001/.well-known/did.json"),
        ("https://a.example/nodes/x/", "did:web:a.example:nodes:x", "https://a.example/nodes/x/did.json"),
    ],
)
def test_did_web(base_url: str, did: str, url: str) -> None:
    assert did_web_from_base_url(base_url) == did
    assert did_web_document_url(did) == url
    assert did_web_document_url(did, scheme="http").startswith("http://")


def test_did_web_refuses_non_urls() -> None:
    with pytest.raises(EduFedError):
        did_web_from_base_url("a.example")
    with pytest.raises(EduFedError):
        did_web_document_url("did:key:z6Mk")


def test_did_key_document_and_lookup() -> None:
    public = str(_load(W3C / "keyPair.json")["publicKeyMultibase"])
    document = did_key_document(f"did:key:{public}#{public}")
    method_id = f"did:key:{public}#{public}"
    assert find_verification_method(document, method_id, "assertionMethod")["publicKeyMultibase"] == public
    canonicalize(document)  # every term is defined
    with pytest.raises(MultikeyError):
        did_key_document("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme")  # secp256k1


def test_find_verification_method_errors() -> None:
    node = Node()
    document = node.document()
    assert find_verification_method(document, node.method, "authentication")["controller"] == NODE_DID
    with pytest.raises(VerificationMethodError, match="not listed under capabilityInvocation"):
        find_verification_method(document, node.method, "capabilityInvocation")
    with pytest.raises(VerificationMethodError, match="not found"):
        find_verification_method(document, NODE_DID + "#other", "assertionMethod")
    document["verificationMethod"][0]["controller"] = "did:web:b.example"
    with pytest.raises(VerificationMethodError, match="controller"):
        find_verification_method(document, node.method, "assertionMethod")
    relative = {"id": NODE_DID, "assertionMethod": ["#k"],
                "verificationMethod": [{"id": "#k", "type": "Multikey", "publicKeyMultibase": "z"}]}
    assert find_verification_method(relative, NODE_DID + "#k", "assertionMethod")["id"] == NODE_DID + "#k"


def test_did_document_is_valid_json_ld() -> None:
    node = Node()
    node.entries.append(KeyEntry(Ed25519Key.generate().public_multibase, CREATED, None))
    node.entries[0] = KeyEntry(node.entries[0].public_multibase, node.entries[0].created, CREATED)
    nquads = canonicalize(node.document())
    assert '<https://w3id.org/security#revoked> "2024-05-01T12:00:00Z"' in nquads


# --- interop with the independent JavaScript verifier -----------------------------------------------------


def test_our_record_verifies_in_js_with_our_did_document() -> None:
    node = Node()
    signed = node.sign(_course())
    assert verify_independently(signed, {node.did: node.document()}, kind="record") == {"verified": True,
                                                                                         "error": ""}
    tampered = copy.deepcopy(signed)
    _tamper_value(tampered)
    assert verify_independently(tampered, {node.did: node.document()}, kind="record")["verified"] is False


def test_our_credential_verifies_in_js() -> None:
    node = Node()
    signed = node.sign(_credential(node.did))
    assert verify(signed, node.resolve, expected_controller=node.did).verified
    assert verify_independently(signed, {node.did: node.document()}, kind="credential")["verified"] is True
    other = Node("did:web:b.example")
    forged = other.sign(_credential(node.did))  # issuer is not the signer
    assert _failed(verify(forged, other.resolve, expected_controller=node.did)) == "controller"
    result = verify_independently(forged, {other.did: other.document()}, kind="credential")
    assert result["verified"] is False and "issuer must match" in result["error"]


def test_control_characters_agree_with_js() -> None:
    """DESIGN §9: a literal with U+0008 / U+000C signs the same here and in jsonld.js; raw pyld would not."""
    node = Node()
    document = _course()
    document["description"] = {"en": "tab\there, back\bspace, form\ffeed, bell\x07, del\x7f"}
    signed = node.sign(document)
    assert verify(signed, node.resolve).verified
    assert verify_independently(signed, {node.did: node.document()}, kind="record")["verified"] is True

    # the same proof made over pyld's raw N-Quads is refused by the independent verifier
    from pyld import jsonld

    from node.ld.loader import frozen_document_loader

    def raw(doc: dict[str, Any]) -> bytes:
        options = {"algorithm": "URDNA2015", "format": "application/n-quads",
                   "documentLoader": frozen_document_loader}
        return hashlib.sha256(jsonld.normalize(doc, options).encode()).digest()

    config = {k: v for k, v in signed["proof"].items() if k != "proofValue"}
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    data = raw({"@context": signed["@context"], **config}) + raw(unsigned)
    naive = {**unsigned, "proof": {**config, "proofValue": encode_multibase(node.key.sign(data))}}
    assert naive["proof"]["proofValue"] != signed["proof"]["proofValue"]
    assert verify_independently(naive, {node.did: node.document()}, kind="record")["verified"] is False
    assert _failed(verify(naive, node.resolve)) == "signature"
