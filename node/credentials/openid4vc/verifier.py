"""The node as an OpenID for Verifiable Presentations 1.0 verifier: DCQL query, request by reference, direct_post.

Anyone (a partner institution, an employer's page) asks the node to create a presentation request for
credentials of some types, optionally from trusted issuers. The wallet fetches the request object (a JWT signed
with the node's DID key; client identifier prefix ``decentralized_identifier``), answers with ``direct_post`` to
the response endpoint, and the node keeps one verdict in words: ``valid``, ``revoked``, ``suspended``, ``unknown``
(a status list could not be fetched or trusted: never "valid" by default) or ``invalid``, with the checks and
the credits converted by the node's published rules. A response that does not prove itself (unknown state,
wrong nonce or audience, a proof that fails) is refused and changes nothing, so the real wallet can still answer.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from joserfc import jwt

from node.catalog.records import Signer
from node.credentials.offers import Offers, expires_in, now_utc
from node.credentials.openid4vc.errors import OAuthError
from node.credentials.openid4vc.issuer import derived
from node.credentials.openid4vc.jwt_vc import ALGORITHM, jose_key
from node.credentials.service import CreditBank
from node.credentials.verification import Verdict
from node.errors import BadRequest, EduFedError, Gone, NotFound
from node.json_text import parse_json
from node.trust.did import iso_z

REQUEST_SCHEME = "openid4vp://"
REQUEST_TYPE = "oauth-authz-req+jwt"
SELF_ISSUED = "https://self-issued.me/v2"
FORMATS = ("ldp_vc",)  # jwt_vc_json and dc+sd-jwt presentations are not verified yet
DEFAULT_TYPES = ["VerifiableCredential"]
# short type names -> the IRIs DCQL type_values name for ldp_vc (expanded JSON-LD types)
EXPANDED_TYPES = {
    "VerifiableCredential": "https://www.w3.org/2018/credentials#VerifiableCredential",
    "OpenBadgeCredential": "https://purl.imsglobal.org/spec/vc/ob/vocab.html#OpenBadgeCredential",
    "AchievementCredential": "https://purl.imsglobal.org/spec/vc/ob/vocab.html#OpenBadgeCredential",
}
PRESENTATION_CHECKS = {"structure", "challenge", "domain", "holder", "proof", "context"}
SEVERITY = ("valid", "unknown", "suspended", "revoked", "invalid")  # the verdict is the worst of its credentials
MAX_LIST = 20


def _strings(body: dict[str, Any], name: str, default: list[str] | None = None) -> list[str]:
    value = body.get(name, default)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or len(value) > MAX_LIST:
        raise BadRequest(f"{name} must be a list of at most {MAX_LIST} strings", field=name)
    return list(value)


def credential_status(verdict: Verdict) -> str:
    """One credential's verdict in words: a failed status check says revoked, suspended or unknown."""
    failures = verdict.failures()
    if not failures:
        return "valid"
    if any(check.name != "status" for check in failures):
        return "invalid"
    reason = failures[0].reason
    if "revoked" in reason:
        return "revoked"
    if "suspended" in reason:
        return "suspended"
    return "unknown"


class PresentationRequests:
    def __init__(self, offers: Offers, bank: CreditBank, base_url: str, did: str,
                 signer: Callable[[], Signer], max_json_depth: int) -> None:
        self.offers = offers
        self.bank = bank
        self.base_url = base_url
        self.client_id = f"decentralized_identifier:{did}"
        self.signer = signer
        self.max_json_depth = max_json_depth

    @property
    def response_uri(self) -> str:
        return f"{self.base_url}/openid4vp/response"

    def result_url(self, request_id: str) -> str:
        return f"{self.base_url}/presentations/requests/{request_id}"

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /presentations/requests``: the ``openid4vp://`` link (by reference) and the result URL."""
        types = _strings(body, "types", DEFAULT_TYPES) or DEFAULT_TYPES
        formats = _strings(body, "formats", list(FORMATS))
        unsupported = [f for f in formats if f not in FORMATS]
        if unsupported or not formats:
            raise BadRequest("Unsupported presentation format", field="formats",
                             detail=f"this node verifies {', '.join(FORMATS)} presentations; got {', '.join(formats)}")
        issuers = _strings(body, "issuers")
        target = body.get("targetUnit", "ECTS")
        if not isinstance(target, str):
            raise BadRequest("targetUnit must be a credit system IRI or notation", field="targetUnit")
        query = {"types": types, "formats": formats, "issuers": issuers, "targetUnit": target}
        reference, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        row = await self.offers.create(kind="presentation", credential=query, formats=formats,
                                       seconds=expires_in(body), reference=reference, code=derived(reference, "state"),
                                       challenge=nonce)
        request_uri = f"{self.base_url}/openid4vp/requests/{reference}"
        link = (f"{REQUEST_SCHEME}?client_id={quote(self.client_id, safe='')}"
                f"&request_uri={quote(request_uri, safe='')}")
        return {"request": link, "result": self.result_url(row.id), "expiresAt": iso_z(row.expires_at)}

    def dcql(self, query: dict[str, Any]) -> dict[str, Any]:
        """The DCQL query of a request: one credential query per format, any one of them answering."""
        credentials = []
        for fmt in query["formats"]:
            entry: dict[str, Any] = {"id": f"credential_{fmt}", "format": fmt, "meta": {
                "type_values": [[EXPANDED_TYPES.get(t, t) for t in query["types"]]]}}
            credentials.append(entry)
        return {"credentials": credentials,
                "credential_sets": [{"options": [[c["id"]] for c in credentials]}]}

    async def request_object(self, reference: str) -> str:
        """The signed request object (JAR, RFC 9101) at the ``request_uri``, while the request is pending."""
        row = await self.offers.by_reference(reference)
        if row is None or row.kind != "presentation":
            raise NotFound("No such presentation request")
        if row.state != "pending" or row.expires_at <= now_utc():
            raise Gone("This presentation request was answered or has expired")
        query = json.loads(row.credential)
        moment = int(now_utc().timestamp())
        claims = {
            "iss": self.client_id, "aud": SELF_ISSUED, "iat": moment, "exp": int(row.expires_at.timestamp()),
            "client_id": self.client_id, "response_type": "vp_token", "response_mode": "direct_post",
            "response_uri": self.response_uri, "nonce": row.challenge, "state": derived(reference, "state"),
            "dcql_query": self.dcql(query),
            "client_metadata": {"vp_formats_supported": {"ldp_vc": {
                "proof_type_values": ["DataIntegrityProof"], "cryptosuite_values": ["eddsa-rdfc-2022"]}}},
        }
        signer = self.signer()
        header = {"alg": ALGORITHM, "typ": REQUEST_TYPE, "kid": signer.verification_method}
        return jwt.encode(header, claims, jose_key(signer), algorithms=[ALGORITHM])

    def _presentations(self, form: Mapping[str, str]) -> list[Any]:
        raw = form.get("vp_token")
        if not raw:
            raise OAuthError("invalid_request", "vp_token is required")
        try:
            token = parse_json(raw.encode("utf-8"), self.max_json_depth)
        except EduFedError as error:
            raise OAuthError("invalid_request", f"vp_token is not JSON: {error.title}") from None
        if not isinstance(token, dict) or len(token) != 1:
            raise OAuthError("invalid_request", "vp_token must answer exactly one credential query of the request")
        ((query_id, presentations),) = token.items()
        if not isinstance(presentations, list) or not presentations:
            raise OAuthError("invalid_request", f"vp_token.{query_id} must be a non-empty array of presentations")
        return presentations

    async def respond(self, form: Mapping[str, str]) -> dict[str, Any]:
        """The response endpoint (``direct_post``): verify, and keep the verdict once."""
        state = form.get("state")
        row = await self.offers.by_code(state) if state else None
        if row is None or row.kind != "presentation":
            raise OAuthError("invalid_request", "unknown state")
        if row.state != "pending" or row.expires_at <= now_utc():
            raise OAuthError("invalid_request", "this presentation request was answered or has expired")
        query = json.loads(row.credential)
        presentations = self._presentations(form)
        if len(presentations) != 1 or not isinstance(presentations[0], dict):
            raise OAuthError("invalid_request", "one ldp_vc presentation (a JSON object) is expected")
        presentation = presentations[0]
        nonce = str(row.challenge)
        verdict = await self.bank.verifier.verify_presentation(presentation, challenge=nonce, domain=self.client_id,
                                                               holder_must_be_subject=True)
        refused = [c for c in verdict.checks if not c.ok and c.name in PRESENTATION_CHECKS]
        if refused:  # not the wallet's answer to this request: change nothing
            first = refused[0]
            raise OAuthError("invalid_request", f"the presentation does not answer this request: {first.name}: "
                             f"{first.reason}")
        result = await self._result(presentation, verdict, query, nonce)
        if not await self.offers.record_result(row, result):
            raise OAuthError("invalid_request", "this presentation request was answered already")
        return {}

    async def _result(self, presentation: dict[str, Any], verdict: Verdict, query: dict[str, Any],
                      nonce: str) -> dict[str, Any]:
        credentials = presentation.get("verifiableCredential")
        credentials = credentials if isinstance(credentials, list) else [credentials]
        lines = []
        for credential, checked in zip(credentials, verdict.credentials, strict=False):
            status = credential_status(checked)
            checks = [c.as_json() for c in checked.checks]
            types = credential.get("type") if isinstance(credential, dict) else None
            types = types if isinstance(types, list) else [types]
            issuer = credential.get("issuer") if isinstance(credential, dict) else None
            issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
            wanted = all(t in types for t in query["types"]) and (not query["issuers"] or issuer in query["issuers"])
            checks.append({"check": "request", "ok": wanted, "reason": "what the request asked for" if wanted
                           else "not of the requested types or not from a trusted issuer"})
            lines.append({"id": credential.get("id") if isinstance(credential, dict) else None, "issuer": issuer,
                          "status": status if wanted else "invalid", "checks": checks})
        lines_status = "invalid" if not lines else max((line["status"] for line in lines), key=SEVERITY.index)
        result: dict[str, Any] = {"state": "done", "status": lines_status, "holder": presentation.get("holder"),
                                  "presentation": [c.as_json() for c in verdict.checks], "credentials": lines}
        try:
            _, transcript = await self.bank.transcript(presentation, challenge=nonce, domain=self.client_id,
                                                       target_unit=query["targetUnit"])
            result["credits"] = {"total": transcript["total"], "lines": [
                {k: line[k] for k in ("credential", "counted", "credits", "converted", "reason") if k in line}
                for line in transcript["lines"]]}
        except EduFedError as error:
            result["credits"] = {"error": error.title}
        return result

    async def result(self, request_id: str) -> dict[str, Any]:
        row = await self.offers.get(request_id, "presentation")
        if row is None:
            raise NotFound("No such presentation request")
        if row.result is not None:
            return dict(json.loads(row.result))
        if row.expires_at <= now_utc():
            return {"state": "expired"}
        return {"state": "pending"}
