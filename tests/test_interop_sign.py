"""Credentials issued by an independent implementation (Digital Bazaar's JS stack) verify here.

Why: the issue's interop promise runs both ways. ``tests/interop/sign.mjs`` issues with ``vc.issue`` and the
``eddsa-rdfc-2022`` cryptosuite as a ``did:key`` issuer; EduFed's verifier must accept the result and refuse
any tampering, and (Ed25519 being deterministic) our signer must produce the very same proofValue.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from node.trust.did import did_key_document
from node.trust.multikey import Ed25519Key
from node.trust.proofs import VerificationResult, sign, verify
from tests.interop_verifier import InteropVerifierError, sign_independently

VECTORS = Path(__file__).resolve().with_name("vectors")
W3C_KEY = VECTORS / "w3c-vc-di-eddsa" / "TestVectors" / "keyPair.json"
SEED = bytes(range(32))
CREATED = "2025-03-01T10:00:00Z"
V2 = "https://www.w3.org/ns/credentials/v2"
OB3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"


def _credential() -> dict[str, Any]:
    return {
        "@context": [V2, OB3],
        "id": "urn:uuid:7f2c1a9e-3b1d-4c55-9d0e-2a6b8c4d1e01",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": "did:example:replaced", "type": ["Profile"], "name": "Elsewhere Academy"},
        "name": "Introduction to Statistics",
        "validFrom": "2025-01-01T00:00:00Z",
        "credentialSubject": {
            "id": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "https://elsewhere.example/achievements/stat-101",
                "type": ["Achievement"],
                "name": "Introduction to Statistics",
                "description": "Descriptive statistics, probability and inference.",
                "criteria": {"narrative": "Passed the final examination."},
            },
        },
    }


def _resolve(did: str) -> dict[str, Any]:
    return did_key_document(did)


def _verify(document: dict[str, Any], issuer: str) -> VerificationResult:
    return verify(document, _resolve, expected_controller=issuer)


@pytest.fixture(scope="module")
def signed() -> dict[str, Any]:
    return sign_independently(_credential(), SEED, created=CREATED)


def test_js_signed_credential_verifies_here(signed: dict[str, Any]) -> None:
    did = f"did:key:{Ed25519Key.from_seed(SEED).public_multibase}"
    assert signed["issuer"]["id"] == did
    assert signed["issuer"]["name"] == "Elsewhere Academy"
    proof = signed["proof"]
    assert proof["verificationMethod"] == f"{did}#{did.removeprefix('did:key:')}"
    assert (proof["type"], proof["cryptosuite"], proof["proofPurpose"]) == (
        "DataIntegrityProof", "eddsa-rdfc-2022", "assertionMethod")
    result = _verify(signed, did)
    assert result.verified, result.error
    assert [c.name for c in result.checks if c.ok][-1] == "signature"


def test_our_signer_gives_the_same_proof_value(signed: dict[str, Any]) -> None:
    """Same key, same document, same options: RDFC-1.0 + Ed25519 leave no room for a different signature."""
    key = Ed25519Key.from_seed(SEED)
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    created = datetime.fromisoformat(CREATED.replace("Z", "+00:00"))
    ours = sign(unsigned, key, signed["proof"]["verificationMethod"], created=created)
    assert ours["proof"]["proofValue"] == signed["proof"]["proofValue"]


def test_secret_key_multibase_from_the_w3c_vector() -> None:
    pair = json.loads(W3C_KEY.read_text("utf-8"))
    credential = _credential()
    credential["issuer"] = "did:example:replaced"
    signed = sign_independently(credential, pair["privateKeyMultibase"])
    did = f"did:key:{pair['publicKeyMultibase']}"
    assert signed["issuer"] == did
    assert _verify(signed, did).verified


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("name",), "Advanced Statistics"),
        (("credentialSubject", "id"), "did:example:someone-else"),
        (("credentialSubject", "achievement", "criteria", "narrative"), "Attended."),
        (("validFrom",), "2024-01-01T00:00:00Z"),
        (("proof", "created"), "2025-03-01T10:00:01Z"),
        (("proof", "proofPurpose"), "authentication"),
    ],
)
def test_tampered_js_credential_fails(signed: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    document = copy.deepcopy(signed)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    result = _verify(document, signed["issuer"]["id"])
    assert not result.verified
    assert result.failures[0].name in ("signature", "purpose")


def test_changed_context_fails(signed: dict[str, Any]) -> None:
    document = copy.deepcopy(signed)
    document["@context"] = [V2]  # OB3 terms now undefined: refused, never silently dropped
    result = _verify(document, signed["issuer"]["id"])
    assert not result.verified
    assert result.failures[0].name == "canonicalization"


def test_issuer_swapped_for_another_did_key_fails(signed: dict[str, Any]) -> None:
    other = f"did:key:{Ed25519Key.from_seed(bytes(32)).public_multibase}"
    document = copy.deepcopy(signed)
    document["issuer"]["id"] = other
    assert not _verify(document, other).verified  # the key is not the claimed issuer's
    assert not _verify(signed, other).verified


def test_js_signer_refuses_undefined_terms() -> None:
    """jsonld safe mode on the signing side: a term no context defines is an error, not a silent drop."""
    credential = _credential()
    credential["credentialSubject"]["undefinedTerm"] = "not covered"
    with pytest.raises(InteropVerifierError, match=r"undefinedTerm|[Ss]afe mode"):
        sign_independently(credential, SEED)


def test_bad_seed_is_refused_before_running() -> None:
    with pytest.raises(ValueError):
        sign_independently(_credential(), b"short")
