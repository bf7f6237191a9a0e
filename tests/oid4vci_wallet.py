"""A small OpenID4VCI 1.0 wallet in Python (joserfc for JOSE), for the tests: it follows an offer URL the way a
wallet on a phone does (offer, metadata, token, nonce, key proof, credential), and lets a test break each step."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from node.credentials.openid4vc.keys import did_jwk
from node.trust.multikey import encode_public_multibase

PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class PyWallet:
    """A wallet key: ``ed25519`` as did:key (named by kid) or ``p256`` as a bare jwk (becoming a did:jwk)."""

    kind: str = "ed25519"
    key: OKPKey | ECKey = field(init=False)

    def __post_init__(self) -> None:
        self.key = OKPKey.generate_key("Ed25519") if self.kind == "ed25519" else ECKey.generate_key("P-256")

    @property
    def alg(self) -> str:
        return "EdDSA" if self.kind == "ed25519" else "ES256"

    @property
    def did(self) -> str:
        if self.kind == "ed25519":
            public = self.key.private_key.public_key()  # type: ignore[union-attr]
            return f"did:key:{encode_public_multibase(public)}"
        return did_jwk(self.key.as_dict(private=False))

    def key_header(self) -> dict[str, Any]:
        if self.kind == "ed25519":
            return {"kid": f"{self.did}#{self.did.removeprefix('did:key:')}"}
        return {"jwk": self.key.as_dict(private=False)}

    def proof(self, audience: str, nonce: str | None, *, iat: float | None = None, alg: str | None = None,
              header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
        """A key proof JWT; every member can be overridden to make a bad one."""
        head = {"typ": "openid4vci-proof+jwt", "alg": alg or self.alg, **self.key_header(), **(header or {})}
        body: dict[str, Any] = {"aud": audience, "iat": int(iat if iat is not None else time.time())}
        if nonce is not None:
            body["nonce"] = nonce
        body.update(claims or {})
        return jwt.encode({k: v for k, v in head.items() if v is not None}, body, self.key,
                          algorithms=[str(head["alg"])])


def unsigned_jwt(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT with ``alg: none`` and no signature, as an attacker would send it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({**header, 'alg': 'none'})}.{part(claims)}."


async def fetch_json(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Reply:
    async with http.request(method, url, **kwargs) as response:
        text = await response.text()
        return Reply(response.status, json.loads(text) if text and text[0] in "{[" else text)


async def read_offer(http: aiohttp.ClientSession, offer_url: str) -> dict[str, Any]:
    """The offer object of an ``openid-credential-offer://`` URL, by value or by reference."""
    query = parse_qs(urlsplit(offer_url).query)
    if "credential_offer" in query:
        return dict(json.loads(query["credential_offer"][0]))
    reply = await fetch_json(http, "GET", query["credential_offer_uri"][0])
    assert reply.status == 200, reply.body
    return dict(reply.body)


async def token(http: aiohttp.ClientSession, offer: dict[str, Any], tx_code: str | None = None) -> Reply:
    issuer = offer["credential_issuer"]
    server = (await fetch_json(http, "GET", f"{issuer}/.well-known/oauth-authorization-server")).body
    form = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": offer["grants"][PRE_AUTHORIZED]["pre-authorized_code"]}
    if tx_code is not None:
        form["tx_code"] = tx_code
    return await fetch_json(http, "POST", server["token_endpoint"], data=form)


async def credential_request(http: aiohttp.ClientSession, metadata: dict[str, Any], access_token: str,
                             body: dict[str, Any]) -> Reply:
    return await fetch_json(http, "POST", metadata["credential_endpoint"], json=body,
                            headers={"Authorization": f"Bearer {access_token}"})


async def new_nonce(http: aiohttp.ClientSession, metadata: dict[str, Any]) -> str:
    reply = await fetch_json(http, "POST", metadata["nonce_endpoint"])
    assert reply.status == 200, reply.body
    return str(reply.body["c_nonce"])


async def receive(http: aiohttp.ClientSession, wallet: PyWallet, offer_url: str, tx_code: str | None = None,
                  ) -> dict[str, Any]:
    """Follow an offer to the end: every configuration it offers, each bound to the wallet's key."""
    offer = await read_offer(http, offer_url)
    issuer = offer["credential_issuer"]
    metadata = (await fetch_json(http, "GET", f"{issuer}/.well-known/openid-credential-issuer")).body
    granted = await token(http, offer, tx_code)
    assert granted.status == 200, granted.body
    received: dict[str, Any] = {}
    for configuration in offer["credential_configuration_ids"]:
        proof = wallet.proof(issuer, await new_nonce(http, metadata))
        reply = await credential_request(http, metadata, granted.body["access_token"], {
            "credential_configuration_id": configuration, "proofs": {"jwt": [proof]}})
        assert reply.status == 200, reply.body
        received[metadata["credential_configurations_supported"][configuration]["format"]] = \
            reply.body["credentials"][0]["credential"]
    return received




def presentation_key(wallet: PyWallet) -> Any:
    """The wallet's Ed25519 key as the node's signing key type, to sign Data Integrity presentations."""
    from node.trust.multikey import Ed25519Key

    return Ed25519Key.from_pem(wallet.key.as_pem(private=True))
