"""Proof throughput: ``node.trust.proofs`` against the naive pyld path, on a catalog record and a credential.

Naive = ``jsonld.normalize(doc, {'algorithm': 'URDNA2015', 'format': 'application/n-quads'})`` with a loader
that does not tag contexts static, for the proof options and the document, then Ed25519. Both paths must give
byte-identical canonical N-Quads (asserted). Run: ``python bench/bench_proofs.py [seconds per cell]``.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyld import jsonld

from node.ld.canon import canonicalize
from node.ld.contexts import context_document
from node.trust.did import KeyEntry, build_did_document
from node.trust.multikey import Ed25519Key, decode_multibase, encode_multibase, verify_signature
from node.trust.proofs import sign, verify

DID = "did:web:helsinki.example"
CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def course() -> dict[str, Any]:
    return {
        "@context": ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"],
        "id": "https://helsinki.example/records/course-finnish-a1",
        "type": "Course",
        "name": {"en": "Finnish for beginners (A1)", "fi": "Suomen alkeet (A1)",
                 "sv": "Finska för nybörjare"},
        "description": {
            "en": "Everyday Finnish: greetings, shopping, transport and small talk, with weekly practice.",
            "fi": "Arjen suomea: tervehdykset, kaupassa asiointi, liikenne ja small talk.",
            "sv": "Vardagsfinska: hälsningar, att handla, kollektivtrafik och småprat.",
        },
        "keywords": {"en": "Finnish", "fi": "suomi"},
        "provider": "https://helsinki.example/",
        "hasCourseInstance": ["https://helsinki.example/records/run-2024-autumn",
                              "https://helsinki.example/records/run-2025-spring"],
        "inLanguage": "fi",
        "educationalLevel": "A1",
        "courseWorkload": "PT40H",
        "isAccessibleForFree": True,
        "url": "https://helsinki.example/courses/finnish-a1",
        "dateModified": "2024-05-01T12:00:00Z",
        "version": 3,
    }


def credential() -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
        "id": "urn:uuid:4f0c3c5e-0d1e-4a8f-9c36-2f7a1f5b9e10",
        "type": ["VerifiableCredential", "AchievementCredential"],
        "issuer": {"id": DID, "type": ["Profile"], "name": "Helsinki learning node"},
        "validFrom": "2024-05-01T12:00:00Z",
        "name": "Finnish for beginners (A1)",
        "credentialSubject": {
            "id": "did:key:z6MkhWqdDBPojHA7cprTGTt5yHv5yUi1B8cnXn8ReLumkw6E",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "https://helsinki.example/achievements/finnish-a1",
                "type": ["Achievement"],
                "name": "Finnish A1",
                "description": "Can handle everyday situations in Finnish at CEFR level A1.",
                "criteria": {"narrative": "Attended 40 hours and passed the oral test."},
            },
        },
    }


def naive_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Bundled contexts, not tagged static: what a plain pyld setup does."""
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(context_document(url))}


def naive_canon(document: dict[str, Any]) -> str:
    options = {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": naive_loader}
    return str(jsonld.normalize(document, options))


def naive_hash(document: dict[str, Any], proof: dict[str, Any]) -> bytes:
    config = {"@context": document["@context"], **{k: v for k, v in proof.items() if k != "proofValue"}}
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    return hashlib.sha256(naive_canon(config).encode()).digest() + hashlib.sha256(
        naive_canon(unsigned).encode()).digest()


def rate(action: Callable[[], object], seconds: float) -> float:
    action()  # warm-up (contexts loaded once)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        action()
        count += 1
    return count / elapsed


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    key = Ed25519Key.generate()
    method = f"{DID}#{key.public_multibase}"
    entry = KeyEntry(key.public_multibase, datetime(2024, 1, 1, tzinfo=UTC), None)
    did_document = build_did_document(DID, [entry])

    print(f"{'document':<12}{'op':<8}{'ours /s':>10}{'naive /s':>10}{'ratio':>8}")
    for name, make in (("record", course), ("credential", credential)):
        document = make()
        signed = sign(document, key, method, created=CREATED)
        proof = signed["proof"]
        options = {"@context": signed["@context"], **{k: v for k, v in proof.items() if k != "proofValue"}}
        for part in (document, options):
            assert canonicalize(part) == naive_canon(part), f"{name}: canonical forms differ"
        assert verify(signed, {DID: did_document}.__getitem__, expected_controller=DID).verified

        def naive_sign(doc: dict[str, Any] = document, options: dict[str, Any] = options) -> dict[str, Any]:
            data = naive_hash(doc, options)
            return {**doc, "proof": {**options, "proofValue": encode_multibase(key.sign(data))}}

        def naive_verify(doc: dict[str, Any] = signed) -> bool:
            signature = decode_multibase(doc["proof"]["proofValue"])
            return verify_signature(key.public_multibase, naive_hash(doc, doc["proof"]), signature)

        assert naive_sign()["proof"]["proofValue"] == proof["proofValue"] and naive_verify()
        ours_sign = rate(lambda d=document: sign(d, key, method, created=CREATED), seconds)
        moments = (CREATED + timedelta(seconds=n) for n in itertools.count())
        ours_sign_fresh = rate(lambda d=document, m=moments: sign(d, key, method, created=next(m)), seconds)
        ours_verify = rate(lambda d=signed: verify(d, {DID: did_document}.__getitem__), seconds)
        base_sign, base_verify = rate(naive_sign, seconds), rate(naive_verify, seconds)
        rows = (("sign", ours_sign, base_sign), ("sign*", ours_sign_fresh, base_sign),
                ("verify", ours_verify, base_verify))
        for op, ours, base in rows:
            print(f"{name:<12}{op:<8}{ours:>10.0f}{base:>10.0f}{ours / base:>7.1f}x")
    print("canonical N-Quads: byte-identical to plain pyld URDNA2015 (asserted)")
    print("sign  = one batch (same created and key, as an import signs): proof options canonicalized once")
    print("sign* = every proof with a new created time: no help from the proof-options cache")
    print("verify = the same proof again, as for the records of one batch (same created and key)")


if __name__ == "__main__":
    main()
