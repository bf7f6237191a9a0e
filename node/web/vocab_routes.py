"""Bundled contexts and our vocabulary, served so that other implementations can pin the exact bytes."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web

from node.errors import NotFound
from node.ld.contexts import bundled_iris, context_bytes, context_path, vocab_dir
from node.web.services import services

PUBLIC = {"Cache-Control": "public, max-age=86400"}  # CORS: node/web/cors.py


@cache
def vocab_resources() -> tuple[dict[str, Any], ...]:
    """The vocabulary files and the IRIs they define (``vocab/v1/index.json``)."""
    index = json.loads((vocab_dir() / "v1" / "index.json").read_text("utf-8"))
    return tuple(index["resources"])


def context_url(base_url: str, iri: str) -> str:
    path = context_path(iri)
    assert path is not None
    return f"{base_url}/contexts/{path.name}"


async def list_contexts(request: web.Request) -> web.Response:
    """``{context IRI: URL of its copy on this node}``."""
    base = services(request).config.base_url
    return web.json_response({iri: context_url(base, iri) for iri in bundled_iris()})


async def get_context(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    for iri in bundled_iris():
        path = context_path(iri)
        if path is not None and path.name == name:
            return web.Response(
                body=context_bytes(iri),
                content_type="application/ld+json",
                headers=PUBLIC,
            )
    raise NotFound("No such context", detail=name)


async def list_vocab(request: web.Request) -> web.Response:
    """``{vocabulary IRI: URL of its copy on this node}``: ontology, context, shapes, schemes, credit systems."""
    base = services(request).config.base_url
    return web.json_response({r["iri"]: f"{base}/vocab/{r['file']}" for r in vocab_resources()})


async def get_vocab_file(request: web.Request) -> web.Response:
    path = request.match_info["path"]
    for resource in vocab_resources():
        if resource["file"] == path:
            return web.Response(body=(vocab_dir() / path).read_bytes(), content_type=resource["mediaType"],
                                charset="utf-8", headers=PUBLIC)
    raise NotFound("No such vocabulary file", detail=path)


def setup(app: web.Application) -> None:
    app.router.add_get("/contexts", list_contexts)
    app.router.add_get("/contexts/{name}", get_context)
    app.router.add_get("/vocab", list_vocab)
    app.router.add_get("/vocab/{path:.+}", get_vocab_file)
