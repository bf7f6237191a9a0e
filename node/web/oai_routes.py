"""``/oai``: the OAI-PMH 2.0 endpoint (GET and form POST) and the schema of the ``jsonld`` metadata format.

OAI-PMH has its own error form (HTTP 200 with ``<error code=…>``), so every protocol error is answered by the
provider itself; only a body that is not a form is refused, as the spec allows, with badArgument too.
"""

from __future__ import annotations

from aiohttp import web

from node.oai.provider import JSONLD_SCHEMA_PATH, JSONLD_XSD, OaiError, Provider
from node.web.services import services

XML_HEADERS = {"X-Content-Type-Options": "nosniff"}  # CORS: node/web/cors.py
FORM = "application/x-www-form-urlencoded"


def _answer(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="text/xml", charset="utf-8", headers=XML_HEADERS)


async def oai(request: web.Request) -> web.Response:
    found = services(request)
    provider = Provider(found.config, found.store)
    pairs: list[tuple[str, str]] = list(request.query.items())
    if request.method == "POST":
        if request.content_type != FORM:
            return _answer(provider.refuse(OaiError("badArgument", f"A POST body must be {FORM}")))
        form = await request.post()
        pairs = [(k, v) for k, v in form.items() if isinstance(v, str)]
        if len(pairs) != len(form) or request.query:
            return _answer(provider.refuse(OaiError("badArgument", "Arguments of a POST go in its form only")))
    return _answer(await provider.respond(pairs))


async def jsonld_schema(request: web.Request) -> web.Response:
    return web.Response(text=JSONLD_XSD, content_type="application/xml", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=86400"})


def setup(app: web.Application) -> None:
    app.router.add_get("/oai", oai)
    app.router.add_post("/oai", oai)
    app.router.add_get(JSONLD_SCHEMA_PATH, jsonld_schema)
