"""Parsing JSON that strangers send or serve: one function for request bodies, fetched documents and files, so
every door refuses the same malformed or over-deep input with the same clear error."""

from __future__ import annotations

import json
from typing import Any

from node.errors import BadRequest


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
