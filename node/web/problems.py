"""Every error leaves the node as an RFC 9457 ``application/problem+json`` document."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.errors import PROBLEM_BASE, EduFedError

log = logging.getLogger("edufed.web")
PROBLEM_TYPE = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_TITLES = {
    404: ("not-found", "No such resource"),
    405: ("method-not-allowed", "Method not allowed"),
    408: ("request-timeout", "Request body not received in time"),
    413: ("payload-too-large", "Request body too large"),
}


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=int(problem["status"]),
        body=json.dumps(problem, ensure_ascii=False).encode("utf-8"),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except EduFedError as error:
        if error.status >= 500:
            log.exception("internal error on %s %s", request.method, request.path)
        else:
            log.info("refused %s %s: %s", request.method, request.path, error)
        scheme = "Signature" if error.field == "Signature" else "Bearer"  # RFC 9421 / admin token
        headers = {"WWW-Authenticate": f'{scheme} realm="edufed"'} if error.status == 401 else None
        return problem_response(error.problem(), headers)
    except web.HTTPException as http:
        if http.status < 400:
            raise
        code, title = _HTTP_TITLES.get(http.status, ("http-error", http.reason))
        problem: dict[str, Any] = {"type": PROBLEM_BASE + code, "title": title, "status": http.status}
        if http.status == 413:
            problem["detail"] = f"the limit is {request.app[MAX_BODY]} bytes"
            problem["field"] = "body"
        return problem_response(problem, {k: v for k, v in http.headers.items() if k == "Allow"})
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return problem_response(
            {"type": PROBLEM_BASE + "internal-error", "title": "Internal server error", "status": 500}
        )


MAX_BODY = web.AppKey("max_body", int)
