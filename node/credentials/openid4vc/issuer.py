"""The node as an OpenID for Verifiable Credential Issuance 1.0 issuer, pre-authorized code flow.

A registrar makes an offer (``POST /credentials/offers``); the learner's wallet reads it from a link or QR code,
trades the pre-authorized code (and the PIN, when one was asked for) for an access token, fetches a nonce, and
asks for the credential with a key proof; the credential is issued to the key's DID by the node's ordinary
issuer, so it is stored, has a status entry and can be revoked like any other. Every step is single-use and
kept in the database (:mod:`node.credentials.offers`).

Why the code is derived from the offer's reference: the offer object must be served again at
``credential_offer_uri``, yet the database should hold nothing that redeems an offer; it keeps the SHA-256 of the
reference and of the code, and the code is a hash of the reference, which only the offer's link carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from node.catalog.records import Signer
from node.credentials.issuance import OB3_CONTEXT, CredentialIssuer
from node.credentials.offers import (
    MAX_TX_FAILURES,
    TOKEN_SECONDS,
    Offers,
    check_template,
    expires_in,
    now_utc,
    secret_hash,
)
from node.credentials.openid4vc.errors import OAuthError
from node.credentials.openid4vc.jwt_vc import vc_jwt
from node.credentials.openid4vc.keys import PROOF_ALGORITHMS, verify_key_proof
from node.errors import BadRequest, Gone, NotFound
from node.ld.contexts import CREDENTIALS_V2_CONTEXT
from node.store.models import WalletOffer
from node.trust.did import iso_z

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME = "openid-credential-offer://"
CREDENTIAL_TYPE = ["VerifiableCredential", "OpenBadgeCredential"]
# format -> credential configuration id, in the order metadata lists them
CONFIGURATIONS = {"ldp_vc": "OpenBadgeCredential_ldp_vc", "jwt_vc_json": "OpenBadgeCredential_jwt_vc_json"}
FORMAT_OF = {configuration: fmt for fmt, configuration in CONFIGURATIONS.items()}
BINDING_METHODS = ["did:key", "did:jwk", "jwk"]
TX_CODE_LENGTH = 6


@dataclass(frozen=True)
class Endpoints:
    """Where the issuer's endpoints live under the node's base URL."""

    base: str

    @property
    def token(self) -> str:
        return f"{self.base}/openid4vci/token"

    @property
    def nonce(self) -> str:
        return f"{self.base}/openid4vci/nonce"

    @property
    def credential(self) -> str:
        return f"{self.base}/openid4vci/credential"

    def offer_object(self, reference: str) -> str:
        return f"{self.base}/openid4vci/offers/{reference}"

    def status(self, offer_id: str) -> str:
        return f"{self.base}/credentials/offers/{offer_id}"


def derived(reference: str, purpose: str) -> str:
    """A secret derived from a link's ``reference`` (the pre-authorized code, an OpenID4VP state), so that the
    database needs to keep only hashes and the link's object can still be served again."""
    digest = hmac.new(reference.encode("ascii"), purpose.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def code_for(reference: str) -> str:
    """The pre-authorized code of the offer whose link carries ``reference``."""
    return derived(reference, "pre-authorized_code")


def offer_formats(body: dict[str, Any]) -> list[str]:
    formats = body.get("formats", ["ldp_vc"])
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise BadRequest("formats must be a non-empty list of format names", field="formats")
    unknown = [f for f in formats if f not in CONFIGURATIONS]
    if unknown or len(set(formats)) != len(formats):
        raise BadRequest("Unsupported or repeated format", field="formats",
                         detail=f"this node offers {', '.join(CONFIGURATIONS)}; got {', '.join(formats)}")
    return formats


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OAuthError("invalid_token", "send the access token as Authorization: Bearer …", 401)
    return token.strip()


class CredentialOffers:
    """Offers, the authorization server (token endpoint) and the credential issuer of one node."""

    def __init__(self, offers: Offers, issuer: CredentialIssuer, base_url: str, languages: tuple[str, ...],
                 signer: Callable[[], Signer]) -> None:
        self.offers = offers
        self.issuer = issuer
        self.endpoints = Endpoints(base_url)
        self.languages = languages
        self.signer = signer

    # ---- metadata ----------------------------------------------------------------------------------------------

    def _display(self, name: str) -> list[dict[str, Any]]:
        return [{"name": name, "locale": language} for language in self.languages]

    def issuer_metadata(self) -> dict[str, Any]:
        """Credential Issuer Metadata (OpenID4VCI 1.0 section 12.2): one configuration per format."""
        proof_types = {"jwt": {"proof_signing_alg_values_supported": list(PROOF_ALGORITHMS)}}
        configurations: dict[str, Any] = {}
        for fmt, configuration in CONFIGURATIONS.items():
            definition: dict[str, Any] = {"type": CREDENTIAL_TYPE}
            if fmt == "ldp_vc":
                definition = {"@context": [CREDENTIALS_V2_CONTEXT, OB3_CONTEXT], **definition}
            configurations[configuration] = {
                "format": fmt,
                "scope": configuration,
                "cryptographic_binding_methods_supported": BINDING_METHODS,
                "credential_signing_alg_values_supported": ["eddsa-rdfc-2022"] if fmt == "ldp_vc" else ["EdDSA"],
                "proof_types_supported": proof_types,
                "credential_definition": definition,
                "credential_metadata": {"display": self._display("Achievement")},
            }
        return {
            "credential_issuer": self.endpoints.base,
            "credential_endpoint": self.endpoints.credential,
            "nonce_endpoint": self.endpoints.nonce,
            "display": self._display(self.issuer.issuer_name),
            "credential_configurations_supported": configurations,
        }

    def authorization_server_metadata(self) -> dict[str, Any]:
        """RFC 8414 metadata of the node as its own authorization server: the pre-authorized code grant only."""
        return {
            "issuer": self.endpoints.base,
            "token_endpoint": self.endpoints.token,
            "grant_types_supported": [PRE_AUTHORIZED_GRANT],
            "pre-authorized_grant_anonymous_access_supported": True,
            "token_endpoint_auth_methods_supported": ["none"],
        }

    # ---- offers ------------------------------------------------------------------------------------------------

    def _offer_object(self, offer: WalletOffer, reference: str) -> dict[str, Any]:
        grant: dict[str, Any] = {"pre-authorized_code": code_for(reference)}
        if offer.tx_code_hash:
            grant["tx_code"] = {"input_mode": "numeric", "length": TX_CODE_LENGTH,
                                "description": "The PIN the registrar sent you separately"}
        return {
            "credential_issuer": self.endpoints.base,
            "credential_configuration_ids": [CONFIGURATIONS[f] for f in offer.formats.split(",")],
            "grants": {PRE_AUTHORIZED_GRANT: grant},
        }

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /credentials/offers``: the offer links, the PIN when asked for, and the status URL."""
        if "credential" not in body:
            raise BadRequest("credential is required", field="credential")
        credential = check_template(body["credential"], self.issuer.issuer_did)
        formats = offer_formats(body)
        wants_tx_code = body.get("txCode", False)
        if not isinstance(wants_tx_code, bool):
            raise BadRequest("txCode must be true or false", field="txCode")
        seconds = expires_in(body)
        reference = secrets.token_urlsafe(32)
        tx_code = f"{secrets.randbelow(10 ** TX_CODE_LENGTH):0{TX_CODE_LENGTH}d}" if wants_tx_code else None
        offer = await self.offers.create(kind="openid4vci", credential=credential, formats=formats, seconds=seconds,
                                         reference=reference, code=code_for(reference), tx_code=tx_code)
        by_value = json.dumps(self._offer_object(offer, reference), separators=(",", ":"))
        answer: dict[str, Any] = {
            "offer": f"{OFFER_SCHEME}?credential_offer={quote(by_value, safe='')}",
            "offerByReference": OFFER_SCHEME + "?credential_offer_uri="
            + quote(self.endpoints.offer_object(reference), safe=""),
            "status": self.endpoints.status(offer.id),
            "expiresAt": iso_z(offer.expires_at),
            "formats": formats,
        }
        if tx_code is not None:
            answer["txCode"] = tx_code
        return answer

    async def offer_object(self, reference: str) -> dict[str, Any]:
        """The offer at its ``credential_offer_uri``, while it can still be redeemed."""
        offer = await self.offers.by_reference(reference)
        if offer is None:
            raise NotFound("No such credential offer")
        state = await self.offers.state(offer)
        if state.state != "pending" or offer.token_hash is not None:
            raise Gone("This credential offer was redeemed or has expired", detail=state.state)
        return self._offer_object(offer, reference)

    async def status(self, offer_id: str) -> dict[str, Any]:
        offer = await self.offers.get(offer_id, "openid4vci")
        if offer is None:
            raise NotFound("No such credential offer")
        state = await self.offers.state(offer)
        answer: dict[str, Any] = {"state": state.state, "expiresAt": iso_z(state.expires_at),
                                  "credentials": state.credentials}
        if state.reason:
            answer["reason"] = state.reason
        return answer

    # ---- token, nonce and credential endpoints -----------------------------------------------------------------

    async def token(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Token endpoint (RFC 6749 section 5, OpenID4VCI 1.0 section 6): pre-authorized code and PIN."""
        if form.get("grant_type") != PRE_AUTHORIZED_GRANT:
            raise OAuthError("unsupported_grant_type", f"only {PRE_AUTHORIZED_GRANT} is supported")
        code = form.get("pre-authorized_code")
        if not code:
            raise OAuthError("invalid_request", "pre-authorized_code is required")
        offer = await self.offers.by_code(code)
        if offer is None:
            raise OAuthError("invalid_grant", "unknown pre-authorized code")
        if offer.token_hash is not None:
            raise OAuthError("invalid_grant", "this pre-authorized code was already used")
        if offer.state == "dead":
            raise OAuthError("invalid_grant", "the offer is void after too many wrong transaction codes")
        if offer.expires_at <= now_utc():
            raise OAuthError("invalid_grant", "the offer has expired")
        if offer.tx_code_hash is not None:
            tx_code = form.get("tx_code")
            if not tx_code:
                raise OAuthError("invalid_request", "this offer needs the transaction code (tx_code)")
            if not hmac.compare_digest(secret_hash(tx_code), offer.tx_code_hash):
                failures = await self.offers.count_tx_failure(offer)
                left = max(0, MAX_TX_FAILURES - failures)
                raise OAuthError("invalid_grant", f"wrong transaction code; {left} tries left" if left
                                 else "wrong transaction code; the offer is now void")
        token = secrets.token_urlsafe(32)
        if not await self.offers.redeem_code(offer, token):
            raise OAuthError("invalid_grant", "this pre-authorized code was already used or is no longer valid")
        return {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS,
                # not in 1.0 (which has the nonce endpoint) but what wallets of the earlier drafts read
                "c_nonce": await self.offers.new_nonce(), "c_nonce_expires_in": TOKEN_SECONDS}

    async def nonce(self) -> dict[str, Any]:
        return {"c_nonce": await self.offers.new_nonce()}

    @staticmethod
    def _key_proof(body: dict[str, Any]) -> str:
        """The one JWT key proof of a request (``proofs.jwt[0]``, or ``proof`` of the earlier drafts)."""
        proofs, single = body.get("proofs"), body.get("proof")
        if proofs is not None and single is not None:
            raise OAuthError("invalid_credential_request", "send proofs or proof, not both")
        if isinstance(proofs, dict):
            jwts = proofs.get("jwt")
            if set(proofs) != {"jwt"} or not isinstance(jwts, list) or len(jwts) != 1:
                raise OAuthError("invalid_proof", "proofs must hold exactly one jwt key proof (no batch issuance)")
            return str(jwts[0]) if isinstance(jwts[0], str) else ""
        if isinstance(single, dict) and single.get("proof_type") == "jwt" and isinstance(single.get("jwt"), str):
            return str(single["jwt"])
        if proofs is None and single is None:
            raise OAuthError("invalid_proof", "a key proof is required: proofs.jwt")
        raise OAuthError("invalid_proof", "only jwt key proofs are supported")

    async def credential(self, authorization: str | None, body: dict[str, Any]) -> dict[str, Any]:
        """Credential endpoint (OpenID4VCI 1.0 section 8): one credential, bound to the key proof's key."""
        token = _bearer(authorization)
        offer = await self.offers.by_token(token)
        if offer is None or offer.token_expires_at is None or offer.token_expires_at <= now_utc():
            raise OAuthError("invalid_token", "unknown or expired access token", 401)
        configuration = body.get("credential_configuration_id")
        if not isinstance(configuration, str):
            raise OAuthError("invalid_credential_request", "credential_configuration_id is required")
        fmt = FORMAT_OF.get(configuration)
        if fmt is None or fmt not in offer.formats.split(","):
            raise OAuthError("unknown_credential_configuration",
                             f"{configuration} is not among the configurations of this offer")
        now = now_utc()
        holder, nonce = verify_key_proof(self._key_proof(body), audience=self.endpoints.base, now=now)
        if nonce is None:
            raise OAuthError("invalid_proof", "the key proof must carry a nonce from the nonce endpoint")
        if not await self.offers.consume_nonce(nonce):
            raise OAuthError("invalid_nonce", "the nonce is unknown, used or expired; fetch a new one")
        claim = await self.offers.claim(offer, fmt)
        if claim is None:
            raise OAuthError("credential_request_denied", f"the {configuration} credential of this offer was issued")
        issued = await self.offers.issue(offer, claim, holder.did)
        credential: Any = vc_jwt(issued, self.signer(), now) if fmt == "jwt_vc_json" else issued
        answer: dict[str, Any] = {"credentials": [{"credential": credential}]}
        if "proof" in body:  # a wallet of the earlier drafts reads the single credential
            answer["credential"] = credential
        return answer
