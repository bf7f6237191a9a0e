"""A credential secured with JOSE (W3C VC-JOSE-COSE, ``application/vc+jwt``), for wallets that take
``jwt_vc_json``.

The payload is the very credential the node issued and stored (same ``id``, subject, ``validFrom`` and
``credentialStatus``) without its Data Integrity proof, so revoking or suspending the credential covers every
format it was handed out in. The JWS is made by joserfc with the node's current Ed25519 key; ``kid`` is that
key's DID URL in the node's ``did:web`` document, so any verifier finds the key as it does for the proof.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.jwk import OKPKey

from node.catalog.records import Signer

MEDIA_TYPE = "vc+jwt"
ALGORITHM = "EdDSA"


@lru_cache(maxsize=8)
def _jose_key(pem: bytes) -> OKPKey:
    return OKPKey.import_key(pem)


def jose_key(signer: Signer) -> OKPKey:
    """The node's signing key as a joserfc key (kept per key, so rotation takes effect at once)."""
    return _jose_key(signer.key.to_pem())


def vc_jwt(credential: dict[str, Any], signer: Signer, now: datetime) -> str:
    """The compact JWS of ``credential`` (its ``proof`` left out), signed as ``signer``."""
    payload = {k: v for k, v in credential.items() if k != "proof"}
    issuer = payload.get("issuer")
    subject = payload.get("credentialSubject")
    claims: dict[str, Any] = {**payload, "iat": int(now.timestamp())}
    claims["iss"] = issuer.get("id") if isinstance(issuer, dict) else issuer
    if isinstance(payload.get("id"), str):
        claims["jti"] = payload["id"]
    if isinstance(subject, dict) and isinstance(subject.get("id"), str):
        claims["sub"] = subject["id"]
    header = {"alg": ALGORITHM, "typ": MEDIA_TYPE, "cty": "vc", "kid": signer.verification_method}
    return jwt.encode(header, claims, jose_key(signer), algorithms=[ALGORITHM])
