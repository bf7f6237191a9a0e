"""The node's identity: its did:web DID document, and liveness."""

from __future__ import annotations

import json

from aiohttp import web

from node.web.services import services


async def did_document(request: web.Request) -> web.Response:
    body = json.dumps(services(request).did_document(), indent=2)
    return web.Response(text=body, content_type="application/did+json", headers={"Cache-Control": "max-age=300"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup(app: web.Application) -> None:
    app.router.add_get("/.well-known/did.json", did_document)
    app.router.add_get("/healthz", healthz)
