"""VC-API exchanges for wallets that speak them (the DCC Learner Credential Wallet): DID authentication, then
the credential bound to the authenticated DID.

The wallet POSTs ``{}`` to the exchange URL and gets a ``VerifiablePresentationRequest`` asking for
``DIDAuthentication`` with a challenge and a domain; it answers with a presentation signed by its DID's key
(``eddsa-rdfc-2022``, purpose ``authentication``); the node checks that proof (the key must be the holder's) and
returns the credential issued to that DID. An exchange completes once and expires (:mod:`node.credentials.offers`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any
from urllib.parse import quote

from node.credentials.issuance import CredentialIssuer
from node.credentials.offers import Offers, check_template, expires_in
from node.errors import BadRequest, Conflict, Gone, NotFound, Unprocessable
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.net.did_resolver import DidResolver
from node.trust.did import iso_z
from node.trust.proofs import CRYPTOSUITE, proof_methods, verify

LCW_REQUEST = "https://lcw.app/request.html?request="


class PresentationRefused(Unprocessable):
    """A DID authentication that does not prove control of the holder's DID."""

    code = "did-authentication"


class Exchanges:
    def __init__(self, offers: Offers, issuer: CredentialIssuer, resolver: DidResolver, base_url: str) -> None:
        self.offers = offers
        self.issuer = issuer
        self.resolver = resolver
        self.base_url = base_url

    def url(self, exchange_id: str) -> str:
        return f"{self.base_url}/exchanges/{exchange_id}"

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /exchanges``: the exchange URL, and the deep link the Learner Credential Wallet opens."""
        if "credential" not in body:
            raise BadRequest("credential is required", field="credential")
        credential = check_template(body["credential"], self.issuer.issuer_did)
        offer = await self.offers.create(kind="exchange", credential=credential, formats=["ldp_vc"],
                                         seconds=expires_in(body), challenge=secrets.token_urlsafe(24))
        url = self.url(offer.id)
        request = json.dumps({"credentialRequestOrigin": self.base_url, "protocols": {"vcapi": url}},
                             separators=(",", ":"))
        return {"exchange": url, "protocols": {"vcapi": url}, "walletLink": LCW_REQUEST + quote(request, safe=""),
                "expiresAt": iso_z(offer.expires_at)}

    def _request(self, challenge: str) -> dict[str, Any]:
        return {"verifiablePresentationRequest": {
            "query": [{"type": "DIDAuthentication", "acceptedMethods": [{"method": "key"}, {"method": "web"}],
                       "acceptedCryptosuites": [{"cryptosuite": CRYPTOSUITE}]}],
            "challenge": challenge,
            "domain": self.base_url,
        }}

    async def participate(self, exchange_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """One step of the exchange: ``{}`` starts it, a DID authentication presentation completes it."""
        offer = await self.offers.get(exchange_id, "exchange")
        if offer is None:
            raise NotFound("No such exchange")
        state = await self.offers.state(offer)
        if state.state == "redeemed":
            raise Conflict("This exchange is complete", detail="each exchange hands out its credential once")
        if state.state == "expired":
            raise Gone("This exchange has expired")
        challenge = str(offer.challenge)
        if "verifiablePresentation" not in body:
            return self._request(challenge)
        holder = await self._authenticate(body["verifiablePresentation"], challenge)
        claim = await self.offers.claim(offer, "ldp_vc")
        if claim is None:
            raise Conflict("This exchange is complete", detail="each exchange hands out its credential once")
        credential = await self.offers.issue(offer, claim, holder)
        return {"verifiablePresentation": {"@context": [CREDENTIALS_V2_CONTEXT], "type": ["VerifiablePresentation"],
                                           "verifiableCredential": [credential]}}

    async def _authenticate(self, presentation: Any, challenge: str) -> str:
        """The holder DID whose key signed ``presentation`` for this challenge and domain."""
        field = "verifiablePresentation"
        if not isinstance(presentation, dict) or "VerifiablePresentation" not in _types(presentation.get("type")):
            raise PresentationRefused("A VerifiablePresentation is required", field=field)
        holder = presentation.get("holder")
        holder = holder.get("id") if isinstance(holder, dict) else holder
        if not isinstance(holder, str) or not holder.startswith(("did:key:", "did:web:")):
            raise PresentationRefused("holder must be a did:key or did:web", field=f"{field}.holder")
        documents: dict[str, dict[str, Any]] = {}
        if holder.startswith("did:web:"):
            documents[holder] = await self.resolver.resolve_for(holder, proof_methods(presentation))
        result = await asyncio.to_thread(verify, presentation, documents.__getitem__,
                                         expected_purpose="authentication", expected_controller=holder,
                                         challenge=challenge, domain=self.base_url)
        if not result.verified:
            raise PresentationRefused("DID authentication failed", detail=result.error, field=f"{field}.proof")
        return holder


def _types(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
