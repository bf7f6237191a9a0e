"""CORS for the public read APIs, so browser applications on other sites can search, read records, resolve the
node's DID, harvest, query and verify; nothing else.

Why a table and not a library: the rule is one small list of (path, methods) that no credential ever reaches.
Answers are ``Access-Control-Allow-Origin: *`` without credentials, and a preflight may ask only for the
methods listed for its path and for plain content headers: a cross-origin script can never send the admin
token (``Authorization`` is not an allowed request header) nor reach an admin route (no CORS headers there,
so the browser refuses to send or read).
"""

from __future__ import annotations

import re

from aiohttp import web

from node.web.problems import Handler

READ = ("GET", "HEAD")
VERIFY = ("POST",)

# Path templates as aiohttp writes them ({name} is one segment, {name:.+} any rest) and the methods other sites
# may use on them.
PUBLIC: dict[str, tuple[str, ...]] = {
    "/api/search": READ,
    "/search": READ,
    "/api/records": READ,
    "/records/{id}": READ,
    "/contexts": READ,
    "/contexts/{name}": READ,
    "/vocab": READ,
    "/vocab/{path:.+}": READ,
    "/.well-known/did.json": READ,
    "/.well-known/nodeinfo": READ,
    "/.well-known/webfinger": READ,  # RFC 7033 section 5 asks for it
    "/nodeinfo/2.1": READ,
    "/oai": (*READ, "POST"),
    "/oai/jsonld.xsd": READ,
    "/sparql": (*READ, "POST"),
    "/credentials/verify": VERIFY,
    "/presentations/verify": VERIFY,
    "/credits/transcript": VERIFY,
    "/credits/systems": READ,
    "/credentials/status/{list}": READ,  # verifiers in a browser check revocation too
    "/openapi.json": READ,
}
ALLOWED_HEADERS = ("accept", "accept-language", "content-type", "if-none-match")
EXPOSED_HEADERS = "ETag, Link, Location, Retry-After"
MAX_AGE_SECONDS = 86400

def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-z]+(?::\.\+)?\})", template)
    return re.compile("".join(
        (".+" if part.endswith(":.+}") else "[^/]+") if part.startswith("{") else re.escape(part) for part in parts
    ))


_PATTERNS = [(_pattern(path), methods) for path, methods in PUBLIC.items()]


def public_methods(path: str) -> tuple[str, ...]:
    """The methods other sites may use on ``path``; empty for admin and private routes."""
    return next((methods for pattern, methods in _PATTERNS if pattern.fullmatch(path)), ())


def _preflight_allowed(request: web.Request, methods: tuple[str, ...]) -> bool:
    method = request.headers.get("Access-Control-Request-Method", "")
    asked = request.headers.get("Access-Control-Request-Headers", "")
    headers = {h.strip().lower() for h in asked.split(",") if h.strip()}
    return method in methods and headers <= set(ALLOWED_HEADERS)


@web.middleware
async def preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers the preflights of public routes that ask for what the table allows; any other OPTIONS goes on to
    the router (405, without CORS headers, so the browser stops there)."""
    methods = public_methods(request.path)
    if (request.method == "OPTIONS" and methods and "Origin" in request.headers
            and _preflight_allowed(request, methods)):
        return web.Response(status=204, headers={
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
        })
    return await handler(request)


async def mark_public_response(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """(``on_response_prepare``, so streamed answers and problem answers get it too) Lets any site read the answer
    of a public (path, method)."""
    if request.method in public_methods(request.path):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def setup(app: web.Application) -> None:
    app.middlewares.append(preflight_middleware)
    app.on_response_prepare.append(mark_public_response)
