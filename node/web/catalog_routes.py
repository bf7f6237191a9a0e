"""Catalog HTTP API: publish, update and withdraw (admin), and read any record (public)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from aiohttp import web

from node.errors import BadRequest
from node.store.records import StoredRecord
from node.web import pages
from node.web.inputs import read_json_object
from node.web.negotiation import RDF_FORMATS, choose, json_ld_response, rdf_response
from node.web.services import require_admin, services

ETAG = re.compile(r'^(?:W/)?"v(\d+)"$')


def etag(record: StoredRecord) -> str:
    return f'"v{record.version}"'


def if_match_version(request: web.Request) -> int | None:
    """The version named by ``If-Match: "vN"``, for optimistic updates."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    found = ETAG.match(header.strip())
    if not found:
        raise BadRequest("If-Match must be an ETag of this record", detail=header, field="If-Match")
    return int(found.group(1))


def represent(request: web.Request, record: StoredRecord, *, status: int | None = None) -> web.Response:
    """The record in the representation the client asked for; a withdrawn record answers 410 with its Tombstone."""
    code = status or (410 if record.deleted else 200)
    headers = {"ETag": etag(record), "Vary": "Accept", "Link": f'<{record.iri}>; rel="canonical"'}
    media_type = choose(request)
    if media_type == "text/html":
        return pages.record_page(request, record, code)
    if media_type in RDF_FORMATS:
        return rdf_response(json.loads(record.document_json), media_type, status=code, headers=headers)
    return json_ld_response(record.document_json, status=code, media_type=media_type, headers=headers)


async def create_record(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await read_json_object(request, found.config.limits.max_json_depth)
    record = await found.catalog.publish(body)
    return json_ld_response(
        record.document_json, status=201, headers={"Location": record.iri, "ETag": etag(record)}
    )


async def get_record(request: web.Request) -> web.Response:
    record = await services(request).catalog.by_iri(services(request).config.records_base + request.match_info["id"])
    return represent(request, record)


async def replace_record(request: web.Request) -> web.Response:
    found = require_admin(request)
    body = await read_json_object(request, found.config.limits.max_json_depth)
    record = await found.catalog.update(request.match_info["id"], body, if_match_version(request))
    return json_ld_response(record.document_json, headers={"ETag": etag(record)})


async def delete_record(request: web.Request) -> web.Response:
    found = require_admin(request)
    record = await found.catalog.withdraw(request.match_info["id"])
    return json_ld_response(record.document_json, headers={"ETag": etag(record)})


async def lookup_records(request: web.Request) -> web.Response:
    """``?iri=IRI``: any stored record, own or mirrored, exactly as its origin signed it.

    Without ``iri``: a cursor-paged list of stored records (``?after=CURSOR&limit=N``).
    """
    found = services(request)
    iri = request.query.get("iri")
    if iri is not None:
        return represent(request, await found.catalog.by_iri(iri))
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 100, 1, 1000)
    origin = request.query.get("origin")
    if origin is not None and (not origin or len(origin) > 255):
        raise BadRequest("Query parameter origin must be a host[:port]", detail=origin, field="origin")
    rows = await found.store.iter_records(after_id=after, limit=limit, origin=origin)
    items: list[dict[str, Any]] = [
        {"id": r.iri, "type": r.type, "version": r.version, "deleted": r.deleted,
         "dateModified": r.date_modified.strftime("%Y-%m-%dT%H:%M:%SZ")}
        for _, r in rows
    ]
    page: dict[str, Any] = {"items": items, "total": await found.store.count(include_deleted=True)}
    if len(rows) == limit:
        scope = f"&origin={quote(origin)}" if origin else ""
        page["next"] = f"{found.config.base_url}/api/records?after={rows[-1][0]}&limit={limit}{scope}"
    return web.json_response(page)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"Query parameter {name} must be an integer from {low} to {high}", detail=raw, field=name)
    return int(raw)


def setup(app: web.Application) -> None:
    app.router.add_post("/api/records", create_record)
    app.router.add_get("/api/records", lookup_records)
    app.router.add_get("/records/{id}", get_record)
    app.router.add_put("/records/{id}", replace_record)
    app.router.add_delete("/records/{id}", delete_record)
