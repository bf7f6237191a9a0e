"""Reading request bodies safely: media type, size and nesting depth are checked before anything else."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from node.json_text import parse_json
from node.web.problems import MAX_BODY

JSON_TYPES = ("application/json", "application/ld+json")


async def read_json_object(request: web.Request, depth_limit: int) -> dict[str, Any]:
    if request.content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            "Unsupported media type",
            detail=f"send {' or '.join(JSON_TYPES)}; got {request.content_type or 'nothing'}",
            field="Content-Type",
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            "Request body too large", detail=f"the limit is {request.app[MAX_BODY]} bytes", field="body"
        ) from None
    value = parse_json(raw, depth_limit)
    if not isinstance(value, dict):
        raise BadRequest("A JSON object is required", detail=f"got {type(value).__name__}", field="body")
    return value
