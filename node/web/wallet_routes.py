"""Learners' wallets over HTTP: OpenID4VCI offers and endpoints, VC-API exchanges, and the staff offer page.

The OAuth 2.0 / OpenID4VCI endpoints (token, nonce, credential) answer errors as the specifications name them
(``{"error", "error_description"}``); everything of our own (offers, exchanges, pages) answers problem+json.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import segno
from aiohttp import web

from node.catalog.records import Signer, node_signer
from node.credentials.exchanges import Exchanges
from node.credentials.offers import Offers
from node.credentials.openid4vc.errors import OAuthError
from node.credentials.openid4vc.issuer import CONFIGURATIONS, CredentialOffers
from node.credentials.openid4vc.verifier import REQUEST_TYPE, PresentationRequests
from node.errors import EduFedError
from node.json_text import parse_json
from node.trust.admin_token import check_bearer
from node.web.inputs import read_json_object
from node.web.pages import html
from node.web.services import SERVICES, require_admin, services

NO_STORE = {"Cache-Control": "no-store"}
REQUESTS_PER_MINUTE = 30  # presentation requests one client address may start, per worker


class TooManyRequests(EduFedError):
    status = 429
    code = "too-many-requests"


class RateLimit:
    """At most ``limit`` events per client address in any ``window`` seconds (in memory, per worker): anyone may
    start presentation requests, so no one may fill the database with them."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}

    def check(self, address: str) -> None:
        now = time.monotonic()
        if len(self._seen) > 10_000:  # bounded memory: forget addresses quiet for a window
            self._seen = {a: q for a, q in self._seen.items() if q and now - q[-1] < self.window}
        recent = self._seen.setdefault(address, deque())
        while recent and now - recent[0] >= self.window:
            recent.popleft()
        if len(recent) >= self.limit:
            retry = int(self.window - (now - recent[0])) + 1
            raise TooManyRequests("Too many presentation requests from this address",
                                  detail=f"at most {self.limit} a minute; try again in {retry} s",
                                  extra={"retryAfter": retry})
        recent.append(now)


@dataclass(frozen=True)
class Wallets:
    offers: CredentialOffers
    exchanges: Exchanges
    presentations: PresentationRequests
    limit: RateLimit


WALLETS = web.AppKey("wallets", Wallets)


async def _wire(app: web.Application) -> AsyncIterator[None]:
    """Built once the node's services exist (this context runs after theirs)."""
    found = app[SERVICES]
    offers = Offers(found.store, found.credit_bank.issuer)

    def signer() -> Signer:
        return node_signer(found.config.base_url, found.keyring)

    app[WALLETS] = Wallets(
        CredentialOffers(offers, found.credit_bank.issuer, found.config.base_url, found.config.languages, signer),
        Exchanges(offers, found.credit_bank.issuer, found.federation.resolver, found.config.base_url),
        PresentationRequests(offers, found.credit_bank, found.config.base_url, found.did, signer,
                             found.config.limits.max_json_depth),
        RateLimit(REQUESTS_PER_MINUTE),
    )
    yield


Handler = Callable[[web.Request], Awaitable[web.Response]]


def oauth(handler: Handler) -> Handler:
    """Answer :class:`OAuthError` as the OAuth error JSON, never cached."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except OAuthError as error:
            headers = dict(NO_STORE)
            if error.status == 401:
                headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
            return web.json_response(error.as_json(), status=error.status, headers=headers)

    return wrapped


# ---- OpenID4VCI ----------------------------------------------------------------------------------------------


async def create_offer(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await read_json_object(request, found.config.limits.max_json_depth)
    answer = await request.app[WALLETS].offers.create(body)
    return web.json_response(answer, status=201, headers={"Location": answer["status"], **NO_STORE})


async def offer_status(request: web.Request) -> web.Response:
    answer = await request.app[WALLETS].offers.status(request.match_info["id"])
    return web.json_response(answer, headers=NO_STORE)


async def offer_object(request: web.Request) -> web.Response:
    answer = await request.app[WALLETS].offers.offer_object(request.match_info["reference"])
    return web.json_response(answer, headers=NO_STORE)


async def issuer_metadata(request: web.Request) -> web.Response:
    return web.json_response(request.app[WALLETS].offers.issuer_metadata())


async def authorization_server_metadata(request: web.Request) -> web.Response:
    return web.json_response(request.app[WALLETS].offers.authorization_server_metadata())


@oauth
async def token(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the token request as application/x-www-form-urlencoded")
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return web.json_response(await request.app[WALLETS].offers.token(fields), headers=NO_STORE)


@oauth
async def nonce(request: web.Request) -> web.Response:
    return web.json_response(await request.app[WALLETS].offers.nonce(), headers=NO_STORE)


@oauth
async def credential(request: web.Request) -> web.Response:
    found = services(request)
    try:
        body = await read_json_object(request, found.config.limits.max_json_depth)
    except EduFedError as error:
        raise OAuthError("invalid_credential_request", error.title) from None
    answer = await request.app[WALLETS].offers.credential(request.headers.get("Authorization"), body)
    return web.json_response(answer, headers=NO_STORE)


# ---- OpenID4VP -------------------------------------------------------------------------------------------------


async def create_presentation_request(request: web.Request) -> web.Response:
    found = services(request)
    request.app[WALLETS].limit.check(request.remote or "")
    body = await read_json_object(request, found.config.limits.max_json_depth)
    answer = await request.app[WALLETS].presentations.create(body)
    return web.json_response(answer, status=201, headers={"Location": answer["result"], **NO_STORE})


async def presentation_result(request: web.Request) -> web.Response:
    answer = await request.app[WALLETS].presentations.result(request.match_info["id"])
    return web.json_response(answer, headers=NO_STORE)


async def request_object(request: web.Request) -> web.Response:
    text = await request.app[WALLETS].presentations.request_object(request.match_info["reference"])
    return web.Response(text=text, content_type=f"application/{REQUEST_TYPE}", headers=NO_STORE)


@oauth
async def presentation_response(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the response as application/x-www-form-urlencoded (direct_post)")
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return web.json_response(await request.app[WALLETS].presentations.respond(fields), headers=NO_STORE)


# ---- VC-API exchanges ------------------------------------------------------------------------------------------


async def create_exchange(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await read_json_object(request, found.config.limits.max_json_depth)
    answer = await request.app[WALLETS].exchanges.create(body)
    return web.json_response(answer, status=201, headers={"Location": answer["exchange"], **NO_STORE})


async def participate(request: web.Request) -> web.Response:
    found = services(request)
    body = await read_json_object(request, found.config.limits.max_json_depth)
    answer = await request.app[WALLETS].exchanges.participate(request.match_info["id"], body)
    return web.json_response(answer, headers=NO_STORE)


# ---- the staff page: make an offer, show its QR code -----------------------------------------------------------


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as an inline SVG element (segno; error correction M, a quiet zone of 4)."""
    return str(segno.make(text, error="m").svg_inline(scale=5, dark="#111", light="#fff", title="credential offer"))


async def offer_page(request: web.Request) -> web.Response:
    """A registrar's page: the token, the credential, the formats; the answer shows the offer as a QR code."""
    found = services(request)
    context: dict[str, Any] = {"node": found.config, "formats": list(CONFIGURATIONS), "chosen": ["ldp_vc"],
                               "text": "", "tx_code": False, "error": None, "offer": None, "qr": None}
    if request.method == "GET":
        return html("wallet-offer.html", **context)
    form = await request.post()
    text = str(form.get("credential", ""))
    chosen = [str(value) for value in form.getall("formats", [])]
    context.update(text=text, chosen=chosen, tx_code=form.get("txCode") == "on")
    try:
        check_bearer(f"Bearer {form.get('token', '')}", found.config.admin_token_sha256)
        body = {"credential": parse_json(text.encode("utf-8"), found.config.limits.max_json_depth),
                "formats": chosen, "txCode": context["tx_code"]}
        offer = await request.app[WALLETS].offers.create(body)
    except EduFedError as error:
        context["error"] = f"{error.title}{': ' + error.detail if error.detail else ''}"
        return html("wallet-offer.html", error.status, **context)
    return html("wallet-offer.html", 201, **{**context, "offer": offer, "qr": qr_svg(offer["offerByReference"])})


VERDICT_WORDS = {
    "valid": "Valid: every check passed",
    "revoked": "Revoked by its issuer",
    "suspended": "Suspended by its issuer",
    "unknown": "Unknown: the issuer's status list could not be checked",
    "invalid": "Invalid: a check failed, or not what was asked for",
}


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


async def verify_page(request: web.Request) -> web.Response:
    """A verifier's page: start a presentation request, show it as a QR code; the answer page follows it."""
    found = services(request)
    context: dict[str, Any] = {"node": found.config, "request": None, "result": None, "qr": None, "page": None,
                               "words": VERDICT_WORDS}
    if request.method == "GET":
        return html("wallet-verify.html", **context)
    request.app[WALLETS].limit.check(request.remote or "")
    form = await request.post()
    body = {"types": _names(str(form.get("types", ""))), "issuers": _names(str(form.get("issuers", "")))}
    created = await request.app[WALLETS].presentations.create(body)
    page = "/wallets/verify/" + created["result"].rsplit("/", 1)[1]
    return html("wallet-verify.html", 201, **{**context, "request": created, "qr": qr_svg(created["request"]),
                                              "page": page})


async def verify_result_page(request: web.Request) -> web.Response:
    found = services(request)
    result = await request.app[WALLETS].presentations.result(request.match_info["id"])
    return html("wallet-verify.html", node=found.config, request=None, result=result, qr=None, page=None,
                words=VERDICT_WORDS)


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(_wire)
    app.router.add_post("/credentials/offers", create_offer)
    app.router.add_get("/credentials/offers/{id}", offer_status)
    app.router.add_get("/openid4vci/offers/{reference}", offer_object)
    app.router.add_get("/.well-known/openid-credential-issuer", issuer_metadata)
    app.router.add_get("/.well-known/oauth-authorization-server", authorization_server_metadata)
    app.router.add_post("/openid4vci/token", token)
    app.router.add_post("/openid4vci/nonce", nonce)
    app.router.add_post("/openid4vci/credential", credential)
    app.router.add_post("/presentations/requests", create_presentation_request)
    app.router.add_get("/presentations/requests/{id}", presentation_result)
    app.router.add_get("/openid4vp/requests/{reference}", request_object)
    app.router.add_post("/openid4vp/response", presentation_response)
    app.router.add_post("/exchanges", create_exchange)
    app.router.add_post("/exchanges/{id}", participate)
    app.router.add_get("/wallets/offer", offer_page)
    app.router.add_post("/wallets/offer", offer_page)
    app.router.add_get("/wallets/verify", verify_page)
    app.router.add_post("/wallets/verify", verify_page)
    app.router.add_get("/wallets/verify/{id}", verify_result_page)

