"""Reading request bodies safely: media type, size and nesting depth are checked before anything else."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from node.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from node.web.problems import MAX_BODY

JSON_TYPES = ("application/json", "application/ld+json")


def check_depth(value: Any, limit: int) -> None:
    """Refuse documents nested deeper than ``limit`` (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise BadRequest("JSON nested too deeply", detail=f"the limit is {limit} levels", field="body")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def parse_json(raw: bytes | str, depth_limit: int) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest("JSON nested too deeply", field="body") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        where = f" at line {line}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise BadRequest("Malformed JSON", detail=f"{exc.__class__.__name__}{where}: {exc}", field="body") from None
    check_depth(value, depth_limit)
    return value


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
