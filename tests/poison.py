"""Poison graphs for canonicalization: blank nodes whose neighbourhoods cannot be told apart.

A *clique* (every node linked to every other) makes RDFC-1.0 try permutations of n-1 equal neighbours: its
cost grows like n!. A *ring* (each node linked to the next) is just as symmetric at first sight but resolves in
O(n²) Hash N-Degree Quads steps: a legitimate graph that a budget must let through. Both come as a catalog
record body, a credential and a presentation, for tests and ``bench/bench_poison.py``.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from node.trust.multikey import Ed25519Key
from node.trust.proofs import sign

SHAPES = ("clique", "ring")
SIZES = (10, 20, 40, 80)
VC2 = "https://www.w3.org/ns/credentials/v2"
KNOWS_CONTEXT = {"knows": {"@id": "https://schema.org/knows", "@type": "@id"}}
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def links(shape: str, size: int) -> dict[int, list[int]]:
    """The neighbours of each of ``size`` blank nodes in a clique or a ring."""
    if shape == "clique":
        return {i: [j for j in range(size) if j != i] for i in range(size)}
    if shape == "ring":
        return {i: [(i + 1) % size] for i in range(size)}
    raise ValueError(shape)


def nodes(shape: str, size: int, link: str) -> list[dict[str, Any]]:
    """The blank nodes as JSON-LD node objects linked by ``link`` (a term whose values are node ids)."""
    return [{"id": f"_:n{i}", link: [f"_:n{j}" for j in targets]} for i, targets in links(shape, size).items()]


def record(shape: str, size: int) -> dict[str, Any]:
    """A course whose ``about`` holds the poison graph (``sameAs`` links the blank nodes)."""
    return {
        "@context": ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"],
        "type": "Course",
        "name": {"en": f"Poison {shape} {size}"},
        "description": {"en": "A course whose topics are blank nodes linked to each other."},
        "about": nodes(shape, size, "sameAs"),
    }


class Signer:
    """A did:key that signs small valid credentials and presentations, into which the poison is put after."""

    def __init__(self) -> None:
        self.key = Ed25519Key.generate()
        self.did = f"did:key:{self.key.public_multibase}"
        self.method = f"{self.did}#{self.key.public_multibase}"

    def credential(self, subject: str = "did:example:learner") -> dict[str, Any]:
        """A valid credential (its proof verifies)."""
        draft = {"@context": [VC2, KNOWS_CONTEXT], "type": ["VerifiableCredential"], "issuer": self.did,
                 "validFrom": "2026-01-01T00:00:00Z", "credentialSubject": {"id": subject}}
        return sign(draft, self.key, self.method, CREATED)

    def poison_credential(self, shape: str, size: int) -> dict[str, Any]:
        """A signed credential whose subject was then given the poison graph: canonicalization comes first."""
        credential = self.credential()
        credential["credentialSubject"] = {"id": "did:example:learner", "knows": nodes(shape, size, "knows")}
        return credential

    def presentation(self, credential: dict[str, Any], challenge: str, domain: str) -> dict[str, Any]:
        """A presentation of ``credential`` by this did:key, with a proof over whatever it holds."""
        draft = {"@context": [VC2], "type": ["VerifiablePresentation"], "holder": self.did,
                 "verifiableCredential": [self.credential()]}
        signed = sign(draft, self.key, self.method, CREATED, proof_purpose="authentication",
                      challenge=challenge, domain=domain)
        signed["verifiableCredential"] = [copy.deepcopy(credential)]
        return signed
