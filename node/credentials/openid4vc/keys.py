"""Wallet keys and the OpenID4VCI key proof (``openid4vci-proof+jwt``).

A wallet proves it holds a key by signing a short JWT for this issuer (``aud``), now (``iat``) and a nonce this
node handed out; the credential is then bound to that key: its subject ``id`` is the key's DID. Keys come as a
``kid`` naming a ``did:key`` (Ed25519 or P-256) or ``did:jwk`` verification method, or as a bare public ``jwk``,
which becomes a ``did:jwk``. JOSE itself is done by joserfc.
"""

from __future__ import annotations

import base64
import json
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, import_key

from node.credentials.openid4vc.errors import OAuthError
from node.errors import EduFedError
from node.trust.multikey import decode_multibase, decode_public_multibase

PROOF_TYPE = "openid4vci-proof+jwt"
# "EdDSA" is what wallets send today; RFC 9864 names it "Ed25519". Both mean Ed25519 here.
PROOF_ALGORITHMS = ("EdDSA", "Ed25519", "ES256")
KEY_ALGORITHMS = {("OKP", "Ed25519"): {"EdDSA", "Ed25519"}, ("EC", "P-256"): {"ES256"}}
P256_PUB_HEADER = b"\x80\x24"  # multicodec p256-pub, varint
MAX_IAT_SKEW_SECONDS = 300
MAX_PROOF_BYTES = 8192

warnings.filterwarnings("ignore", message="EdDSA is deprecated", module="joserfc")


@dataclass(frozen=True)
class HolderKey:
    """A wallet's public key and the DID a credential bound to it names."""

    did: str
    key: OKPKey | ECKey


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def did_jwk(public_jwk: dict[str, Any]) -> str:
    """``did:jwk:`` and the base64url of the public JWK's JSON (the did:jwk method)."""
    members = {k: public_jwk[k] for k in ("kty", "crv", "x", "y") if k in public_jwk}
    text = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return "did:jwk:" + base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _public_key(value: Any) -> OKPKey | ECKey:
    """A supported public JWK (Ed25519 or P-256) as a joserfc key; never a private one."""
    if not isinstance(value, dict) or (value.get("kty"), value.get("crv")) not in KEY_ALGORITHMS:
        raise ValueError("only Ed25519 (OKP) and P-256 (EC) public keys are accepted")
    if "d" in value:
        raise ValueError("the JWK holds a private key")
    key = import_key(value)
    if not isinstance(key, OKPKey | ECKey):
        raise ValueError("unsupported key type")
    return key


def _did_key(did: str) -> OKPKey | ECKey:
    multibase = did.removeprefix("did:key:")
    if multibase.startswith("z6Mk"):
        return OKPKey.import_key(decode_public_multibase(multibase))
    raw = decode_multibase(multibase)
    if raw[:2] == P256_PUB_HEADER and len(raw) == 35:
        return ECKey.import_key(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:]))
    raise ValueError("only Ed25519 (z6Mk…) and P-256 (zDn…) did:key are supported")


def holder_from_kid(kid: str) -> HolderKey:
    """The key a ``kid`` names: a ``did:key`` or ``did:jwk`` DID URL (nothing is fetched)."""
    did, _, fragment = kid.partition("#")
    try:
        if did.startswith("did:key:"):
            if fragment and fragment != did.removeprefix("did:key:"):
                raise ValueError("the fragment of a did:key URL is the key itself")
            return HolderKey(did, _did_key(did))
        if did.startswith("did:jwk:"):
            if fragment not in ("", "0"):
                raise ValueError("a did:jwk has one verification method, #0")
            key = _public_key(json.loads(_b64url_decode(did.removeprefix("did:jwk:"))))
            return HolderKey(did, key)
    except (ValueError, EduFedError, JoseError, TypeError) as error:
        raise OAuthError("invalid_proof", f"kid {kid!r} does not resolve: {error}") from None
    raise OAuthError("invalid_proof", f"kid {kid!r} does not resolve: use a did:key or did:jwk DID URL, or a jwk")


def holder_from_jwk(value: Any) -> HolderKey:
    try:
        key = _public_key(value)
    except (ValueError, JoseError, TypeError) as error:
        raise OAuthError("invalid_proof", f"jwk: {error}") from None
    return HolderKey(did_jwk(key.as_dict(private=False)), key)


def _header(proof: str) -> dict[str, Any]:
    try:
        header = jws.extract_compact(proof.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeEncodeError) as error:
        raise OAuthError("invalid_proof", f"the key proof is not a compact JWS: {error}") from None
    if not isinstance(header, dict):
        raise OAuthError("invalid_proof", "the key proof has no JOSE header")
    return header


def verify_key_proof(proof: Any, *, audience: str, now: datetime) -> tuple[HolderKey, str | None]:
    """The wallet's key and the proof's ``nonce`` (None when it has none), once every check of the key proof
    passed: ``typ``, ``alg`` (never ``none``), a resolvable ``kid`` or public ``jwk`` (not both), the signature,
    ``aud`` and ``iat`` within five minutes. The nonce itself is checked by the caller, which owns the store."""
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_BYTES:
        raise OAuthError("invalid_proof", f"a key proof is a compact JWT of at most {MAX_PROOF_BYTES} characters")
    header = _header(proof)
    if header.get("typ") != PROOF_TYPE:
        raise OAuthError("invalid_proof", f"typ must be {PROOF_TYPE}, got {header.get('typ')!r}")
    alg = header.get("alg")
    if alg not in PROOF_ALGORITHMS:
        raise OAuthError("invalid_proof", f"alg {alg!r} is not accepted; use one of {', '.join(PROOF_ALGORITHMS)}")
    if ("kid" in header) == ("jwk" in header) or "x5c" in header:
        raise OAuthError("invalid_proof", "the key proof must name its key by exactly one of kid or jwk")
    holder = holder_from_kid(str(header["kid"])) if "kid" in header else holder_from_jwk(header["jwk"])
    public = holder.key.as_dict(private=False)
    if alg not in KEY_ALGORITHMS[(str(public["kty"]), str(public["crv"]))]:
        raise OAuthError("invalid_proof", f"alg {alg} does not match the {public['crv']} key")
    try:
        claims = jwt.decode(proof, holder.key, algorithms=[str(alg)]).claims
    except (JoseError, ValueError) as error:
        raise OAuthError("invalid_proof", f"the key proof's signature does not verify: {error}") from None
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise OAuthError("invalid_proof", f"aud must be this credential issuer, {audience}; got {aud!r}")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise OAuthError("invalid_proof", "iat (a NumericDate) is required")
    if abs(now.timestamp() - iat) > MAX_IAT_SKEW_SECONDS:
        raise OAuthError("invalid_proof", f"iat is more than {MAX_IAT_SKEW_SECONDS} seconds from now")
    nonce = claims.get("nonce")
    return holder, nonce if isinstance(nonce, str) else None
