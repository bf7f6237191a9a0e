"""``GET /api/search``: full text, facets and "near me" over the node's own and mirrored records."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from node.catalog.search import SearchResult, cursor_for, parse_query
from node.errors import BadRequest
from node.web.services import services


def query_params(request: web.Request) -> dict[str, str]:
    """Single-valued query parameters (a repeated one is ambiguous: 400)."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        if name in params:
            raise BadRequest("Repeated search parameter", detail=name, field=name)
        params[name] = value
    return params


def result_json(request: web.Request, result: SearchResult, params: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"total": result.total, "items": result.items, "facets": result.facets, "next": None}
    if result.next_offset is not None:
        following = {k: v for k, v in params.items() if k != "cursor"}
        following["cursor"] = cursor_for(result.query, result.next_offset)
        body["next"] = f"{services(request).config.base_url}/api/search?{urlencode(following)}"
    return body


async def run_search(request: web.Request) -> tuple[SearchResult, dict[str, str]]:
    found = services(request)
    params = query_params(request)
    return await found.search.run(parse_query(params)), params


async def search(request: web.Request) -> web.Response:
    result, params = await run_search(request)
    return web.json_response(result_json(request, result, params))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/search", search)
