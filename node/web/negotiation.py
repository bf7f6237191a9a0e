"""Content negotiation for linked-data resources: JSON-LD by default, RDF serializations and HTML on request."""

from __future__ import annotations

import json
from typing import Any

import mimeparse
from aiohttp import web

from node.errors import EduFedError
from node.ld.rdf import serialize

JSON_LD = "application/ld+json"
# RDF media type -> node.ld.rdf.serialize format
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/n-quads": "nquads",
    "application/trig": "trig",
}
# Ties go to the last entry, so JSON-LD (the default) stays last.
OFFERED = ["text/html", *RDF_FORMATS, "application/json", "application/activity+json", JSON_LD]


class NotAcceptable(EduFedError):
    status = 406
    code = "not-acceptable"


def choose(request: web.Request, offered: list[str] = OFFERED) -> str:
    """The media type to answer with; JSON-LD when the client does not say."""
    accept = request.headers.get("Accept") or "*/*"
    try:
        best = mimeparse.best_match(offered, accept)
    except ValueError:
        best = ""
    if not best:
        raise NotAcceptable(
            "None of the accepted media types is available",
            detail=f"available: {', '.join(offered)}",
            field="Accept",
        )
    return str(best)


def json_ld_response(document: dict[str, Any] | str, *, status: int = 200, media_type: str = JSON_LD,
                     headers: dict[str, str] | None = None) -> web.Response:
    body = document if isinstance(document, str) else json.dumps(document, ensure_ascii=False)
    if media_type == "application/json":
        media_type = JSON_LD
    return web.Response(status=status, text=body, content_type=media_type, charset="utf-8", headers=headers)


def rdf_response(document: dict[str, Any], media_type: str, *, status: int = 200,
                 headers: dict[str, str] | None = None) -> web.Response:
    text = serialize(document, RDF_FORMATS[media_type])
    return web.Response(status=status, text=text, content_type=media_type, charset="utf-8", headers=headers)
