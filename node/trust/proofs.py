"""Data Integrity proofs with the ``eddsa-rdfc-2022`` cryptosuite (W3C vc-di-eddsa §3.3).

Signing: the proof options carry the document's ``@context``; both are canonicalized (RDFC-1.0, safe mode),
the signed bytes are ``sha256(canon(proof options)) || sha256(canon(document without proof))``, and the
Ed25519 signature becomes ``proofValue`` (multibase base58btc).

Verification never raises for a bad document: it returns a :class:`VerificationResult` naming every check, so
callers (the inbox, VC-API endpoints, the CLI) can say exactly why a proof failed. The one exception is work the
node refuses (:class:`~node.ld.work.WorkRefused`: the canonicalization budget, the request's time): that is no
verdict on the document, so it is raised and answered as a problem. Checks: ``proof-present``,
``cryptosuite``, ``verification-method``, ``controller``, ``purpose``, ``key-revoked``, ``created``,
``challenge``, ``domain``, ``previous-proof``, ``canonicalization``, ``signature``. Every proof of a set is
checked; the result says, per proof, the controller of its key and whether it verified.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, NoReturn

from node.errors import EduFedError
from node.ld.canon import canonicalize
from node.ld.contexts import CREDENTIALS_V2_CONTEXT, DATA_INTEGRITY_CONTEXT
from node.ld.work import WorkRefused
from node.trust.did import did_key_document, find_verification_method, iso_z
from node.trust.multikey import Ed25519Key, decode_multibase, encode_multibase, verify_signature

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
# A proof dated further ahead than this (clock skew between nodes) is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_DATE_TIME_STAMP = re.compile(r"^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# find_verification_method's error codes -> the check that failed
_METHOD_ERROR_CHECKS = {"controller-mismatch": "controller", "key-not-authorised": "purpose"}

Resolver = Callable[[str], dict[str, Any]]


class Check(NamedTuple):
    name: str
    ok: bool
    reason: str


class ProofOutcome(NamedTuple):
    """One proof of a proof set: the controller of its key (when it got that far) and whether it verified."""

    controller: str | None
    verified: bool


@dataclass
class VerificationResult:
    verified: bool
    checks: list[Check] = field(default_factory=list)
    proofs: list[ProofOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def error(self) -> str:
        """The first failure as ``check: reason`` (empty when verified)."""
        first = next(iter(self.failures), None)
        return "" if first is None else f"{first.name}: {first.reason}"


class _Failed(Exception):
    """Internal: stop checking one proof at the first failed check."""


def _with_suite_context(context: Any) -> Any:
    """The context plus the Data Integrity context unless it (or VC 2.0) is there (as jsonld.js does)."""
    contexts = context if isinstance(context, list) else [] if context is None else [context]
    if DATA_INTEGRITY_CONTEXT in contexts or CREDENTIALS_V2_CONTEXT in contexts:
        return context
    return [*contexts, DATA_INTEGRITY_CONTEXT]


def _proofs(document: dict[str, Any]) -> list[Any]:
    proof = document.get("proof")
    if proof is None:
        return []
    return proof if isinstance(proof, list) else [proof]


MAX_CACHED_OPTIONS = 2048


@lru_cache(maxsize=256)
def _proof_options_hash(options_json: str) -> bytes:
    """SHA-256 of the canonical proof options. A batch (an import, a page of mirrored records) shares one
    ``created`` and key, so the same options come again and again: canonicalize them once."""
    return hashlib.sha256(canonicalize(json.loads(options_json)).encode("utf-8")).digest()


def _hash_data(proof_options: dict[str, Any], unsigned: dict[str, Any]) -> bytes:
    options_json = json.dumps(proof_options, sort_keys=True)
    if len(options_json) > MAX_CACHED_OPTIONS:  # bound the cache's memory: proofs come from strangers too
        proof_hash = hashlib.sha256(canonicalize(proof_options).encode("utf-8")).digest()
    else:
        proof_hash = _proof_options_hash(options_json)
    doc_hash = hashlib.sha256(canonicalize(unsigned).encode("utf-8")).digest()
    return proof_hash + doc_hash


def sign(
    document: dict[str, Any],
    key: Ed25519Key,
    verification_method: str,
    created: datetime,
    proof_purpose: str = "assertionMethod",
    challenge: str | None = None,
    domain: str | None = None,
) -> dict[str, Any]:
    """A copy of ``document`` with an ``eddsa-rdfc-2022`` proof added (to any proofs already there).

    Raises the canonicalization errors (undefined term, unknown context) of the document: never signs what
    would not be covered.
    """
    signed = {k: v for k, v in document.items() if k != "proof"}
    signed["@context"] = _with_suite_context(document.get("@context"))
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": iso_z(created),
        "verificationMethod": verification_method,
        "proofPurpose": proof_purpose,
    }
    if challenge is not None:
        options["challenge"] = challenge
    if domain is not None:
        options["domain"] = domain
    data = _hash_data({"@context": signed["@context"], **options}, signed)
    proof = {**options, "proofValue": encode_multibase(key.sign(data))}
    existing = _proofs(document)
    signed["proof"] = [*existing, proof] if existing else proof
    return signed


def _controller_of(method_id: str) -> str:
    return method_id.split("#", 1)[0]


def proof_methods(document: dict[str, Any]) -> list[str]:
    """The verification methods the document's proofs name (what a verifier must find in DID documents)."""
    methods = []
    for proof in _proofs(document):
        method = proof.get("verificationMethod") if isinstance(proof, dict) else None
        method = method.get("id") if isinstance(method, dict) else method
        if isinstance(method, str):
            methods.append(method)
    return methods


def _parse_date_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not _DATE_TIME_STAMP.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class _ProofCheck:
    """The checks of one proof, in order; the first failure stops it."""

    def __init__(self, checks: list[Check], prefix: str) -> None:
        self.checks = checks
        self.prefix = prefix
        self.controller: str | None = None

    def ok(self, name: str, reason: str = "") -> None:
        self.checks.append(Check(name, True, self.prefix + reason))

    def fail(self, name: str, reason: str) -> NoReturn:
        self.checks.append(Check(name, False, self.prefix + reason))
        raise _Failed

    def require(self, condition: bool, name: str, reason: str, ok_reason: str = "") -> None:
        if condition:
            self.ok(name, ok_reason)
        else:
            self.fail(name, reason)


def _unsigned_for(document: dict[str, Any], proof: dict[str, Any], proofs: list[Any]) -> dict[str, Any]:
    """The document as signed: without proofs, or with the ones this proof chains to (previousProof)."""
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    previous = proof.get("previousProof")
    if previous:
        wanted = set(previous if isinstance(previous, list) else [previous])
        chained = [p for p in proofs if isinstance(p, dict) and p.get("id") in wanted]
        if len(chained) != len(wanted):
            raise ValueError(f"previousProof {sorted(wanted)} not all found in the proof set")
        unsigned["proof"] = chained[0] if len(chained) == 1 else chained
    return unsigned


def _verify_one(
    check: _ProofCheck,
    document: dict[str, Any],
    proof: Any,
    proofs: list[Any],
    resolve: Resolver,
    expected_purpose: str,
    expected_controller: str | None,
    challenge: str | None,
    domain: str | None,
    now: datetime,
) -> None:
    check.require(isinstance(proof, dict), "proof-present", "proof is not a JSON object", "proof found")
    check.require(
        proof.get("type") == PROOF_TYPE and proof.get("cryptosuite") == CRYPTOSUITE,
        "cryptosuite",
        f"expected {PROOF_TYPE} / {CRYPTOSUITE}, got {proof.get('type')!r} / {proof.get('cryptosuite')!r}",
        CRYPTOSUITE,
    )
    purpose = proof.get("proofPurpose")
    check.require(purpose == expected_purpose, "purpose",
                  f"proofPurpose is {purpose!r}, expected {expected_purpose!r}", str(purpose))

    method_id = proof.get("verificationMethod")
    if isinstance(method_id, dict):
        method_id = method_id.get("id")
    if not isinstance(method_id, str) or not method_id:
        check.fail("verification-method", "proof has no verificationMethod")
    controller_id = _controller_of(method_id)
    try:
        is_did_key = method_id.startswith("did:key:")
        controller_doc = did_key_document(method_id) if is_did_key else resolve(controller_id)
        if not isinstance(controller_doc, dict):
            raise TypeError(f"resolving {controller_id} gave no JSON object")
    except Exception as exc:
        check.fail("verification-method", f"cannot resolve {controller_id}: {exc}")
    if controller_doc.get("id") != controller_id:
        check.fail("controller", f"document resolved for {controller_id} has id {controller_doc.get('id')!r}")
    try:
        method = find_verification_method(controller_doc, method_id, expected_purpose)
    except EduFedError as exc:
        check.fail(_METHOD_ERROR_CHECKS.get(exc.code, "verification-method"), str(exc))
    check.ok("verification-method", method_id)
    if expected_controller is not None and method["controller"] != expected_controller:
        check.fail("controller", f"key controller {method['controller']} is not {expected_controller}")
    check.ok("controller", str(method["controller"]))
    check.controller = str(method["controller"])

    created_raw = proof.get("created")
    created = _parse_date_time(created_raw)
    if created_raw is not None and created is None:
        check.fail("created", f"created {created_raw!r} is not an XSD dateTimeStamp")
    if created is not None and created > now + MAX_CLOCK_SKEW:
        check.fail("created", f"created {created_raw} is in the future")
    expires = _parse_date_time(proof.get("expires")) if "expires" in proof else None
    if "expires" in proof and (expires is None or expires <= now):
        check.fail("created", f"proof expired or has a bad expires ({proof.get('expires')!r})")
    check.ok("created", str(created_raw or "not stated"))

    # A key signs until the instant it is revoked; the key ring sets ``revoked`` to the whole second after a
    # rotation, so a proof made in the second of the rotation still comes before it.
    for bound, name in (("revoked", "key-revoked"), ("expires", "key-revoked")):
        if bound in method:
            limit = _parse_date_time(method[bound])
            if limit is None or created is None or created >= limit:
                check.fail(name, f"key {bound} {method[bound]!r}; proof created {created_raw!r} not before it")
    check.ok("key-revoked", "key valid when the proof was created")

    if challenge is not None:
        check.require(proof.get("challenge") == challenge, "challenge",
                      f"challenge {proof.get('challenge')!r} does not match the expected one")
    if domain is not None:
        stated = proof.get("domain")
        stated_list = stated if isinstance(stated, list) else [stated]
        check.require(domain in stated_list, "domain", f"domain {stated!r} does not include {domain!r}")

    previous = proof.get("previousProof")
    if previous is not None:
        wanted = previous if isinstance(previous, list) else [previous]
        known = {p.get("id") for p in proofs if isinstance(p, dict)}
        missing = [w for w in wanted if not isinstance(w, str) or w not in known]
        check.require(not missing, "previous-proof",
                      f"previousProof {missing!r} names no proof of this proof set", "chained proofs present")

    proof_value = proof.get("proofValue")
    try:
        signature = decode_multibase(proof_value)
    except EduFedError as exc:
        check.fail("signature", f"proofValue: {exc}")
    try:
        options = {k: v for k, v in proof.items() if k != "proofValue"}
        options["@context"] = _with_suite_context(document.get("@context"))
        data = _hash_data(options, _unsigned_for(document, proof, proofs))
    except WorkRefused:
        raise
    except Exception as exc:
        check.fail("canonicalization", str(exc))
    check.ok("canonicalization", "RDFC-1.0")
    try:
        valid = verify_signature(str(method.get("publicKeyMultibase")), data, signature)
    except EduFedError as exc:
        check.fail("signature", f"key: {exc}")
    check.require(valid, "signature", "Ed25519 signature does not match", "Ed25519")


def verify(
    document: dict[str, Any],
    resolve: Resolver,
    expected_purpose: str = "assertionMethod",
    expected_controller: str | None = None,
    challenge: str | None = None,
    domain: str | None = None,
    now: datetime | None = None,
) -> VerificationResult:
    """Verify every proof of ``document``; ``resolve(controller)`` returns a controller (DID) document.

    With ``expected_controller`` (a credential's issuer) each key must belong to it; without, the check is at
    proof level: the key must be its own controller document's and listed under ``expected_purpose``.
    """
    checks: list[Check] = []
    if not isinstance(document, dict):
        return VerificationResult(False, [Check("proof-present", False, "document is not a JSON object")])
    proofs = _proofs(document)
    if not proofs:
        return VerificationResult(False, [Check("proof-present", False, "document has no proof")])
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    outcomes: list[ProofOutcome] = []
    for index, proof in enumerate(proofs):
        prefix = f"proof {index}: " if len(proofs) > 1 else ""
        check = _ProofCheck(checks, prefix)
        try:
            _verify_one(check, document, proof, proofs, resolve, expected_purpose,
                        expected_controller, challenge, domain, moment)
            outcomes.append(ProofOutcome(check.controller, True))
        except _Failed:
            outcomes.append(ProofOutcome(check.controller, False))
        except WorkRefused:
            raise
        except Exception as exc:  # never raise for a bad document
            checks.append(Check("proof-present", False, f"{prefix}unexpected error: {exc!r}"))
            outcomes.append(ProofOutcome(check.controller, False))
    return VerificationResult(all(o.verified for o in outcomes), checks, outcomes)
