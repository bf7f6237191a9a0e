"""Federation over HTTP: discovery documents, the actor, outbox (change feed), inbox, peers, digest, status."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from node.errors import BadRequest, NotFound, UnsupportedMediaType
from node.federation import activities
from node.federation.activities import ACTIVITY_MEDIA_TYPE, AS_CONTEXT, record_activity
from node.federation.discovery import actor_document, nodeinfo, nodeinfo_links, webfinger
from node.json_text import parse_json
from node.store import feed
from node.store.models import Follower
from node.web.services import Services, services

ACTIVITY_TYPES = ("application/activity+json", "application/ld+json", "application/json")
OUTBOX_PAGE_MAX = 500


def activity_json(body: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), status=status,
                        content_type=ACTIVITY_MEDIA_TYPE, charset="utf-8")


async def actor(request: web.Request) -> web.Response:
    found = services(request)
    return activity_json(actor_document(found.config, found.federation.rsa_key.public_pem()))


async def well_known_nodeinfo(request: web.Request) -> web.Response:
    return web.json_response(nodeinfo_links(services(request).config.base_url))


async def nodeinfo_21(request: web.Request) -> web.Response:
    found = services(request)
    own = len(await found.store.live_versions(urlsplit(found.config.base_url).netloc, own=True))
    total = await found.store.count()
    peers = await found.federation.peers.all()
    body = nodeinfo(found.config, own, total - own, sum(p.state == "following" for p in peers))
    return web.json_response(
        body, content_type='application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )


async def webfinger_route(request: web.Request) -> web.Response:
    resource = request.query.get("resource")
    if not resource:
        raise BadRequest("Query parameter resource is required", field="resource")
    document = webfinger(services(request).config, resource)
    if document is None:
        raise NotFound("No such resource on this node", detail=resource, field="resource")
    return web.json_response(document, content_type="application/jrd+json")


def _int_query(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise BadRequest(f"Query parameter {name} must be an integer from 0 to {high}", detail=raw, field=name)
    return int(raw)


async def _items(found: Services, entries: list[feed.FeedEntry]) -> list[dict[str, Any]]:
    items = []
    for entry in entries:
        record = await found.store.get(entry.object_iri)
        if record is not None:
            items.append(record_activity(found.config.base_url, entry, json.loads(record.document_json)))
    return items


async def outbox(request: web.Request) -> web.Response:
    """The change feed: the collection (``totalItems`` = last sequence number), or a page after a cursor."""
    found = services(request)
    base = activities.outbox_url(found.config.base_url)
    with found.store.bound():
        head = await feed.head()
    if "after" not in request.query and "limit" not in request.query:
        return activity_json({"@context": AS_CONTEXT, "id": base, "type": "OrderedCollection", "totalItems": head,
                              "first": f"{base}?after=0&limit=100"})
    after = _int_query(request, "after", 0, 2**62)
    limit = max(1, _int_query(request, "limit", 100, OUTBOX_PAGE_MAX))
    with found.store.bound():
        entries = await feed.entries_after(after, limit)
    page: dict[str, Any] = {
        "@context": AS_CONTEXT, "id": f"{base}?after={after}&limit={limit}", "type": "OrderedCollectionPage",
        "partOf": base, "orderedItems": await _items(found, entries),
    }
    if len(entries) == limit:
        page["next"] = f"{base}?after={entries[-1].seq}&limit={limit}"
    return activity_json(page)


async def outbox_item(request: web.Request) -> web.Response:
    found = services(request)
    raw = request.match_info["seq"]
    with found.store.bound():
        entry = await feed.entry(int(raw)) if raw.isdigit() else None
    items = await _items(found, [entry]) if entry else []
    if not items:
        raise NotFound("No such activity", detail=raw)
    return activity_json(items[0])


async def followers(request: web.Request) -> web.Response:
    """Only the count: who follows a node is nobody else's business."""
    found = services(request)
    with found.store.bound():
        count = await Follower.all().count()
    return activity_json({"@context": AS_CONTEXT, "id": f"{found.config.base_url}/followers",
                          "type": "OrderedCollection", "totalItems": count})


async def following(request: web.Request) -> web.Response:
    found = services(request)
    peers = [p for p in await found.federation.peers.all() if p.state == "following"]
    return activity_json({"@context": AS_CONTEXT, "id": f"{found.config.base_url}/following",
                          "type": "OrderedCollection", "totalItems": len(peers)})


async def inbox(request: web.Request) -> web.Response:
    found = services(request)
    if request.content_type not in ACTIVITY_TYPES:
        raise UnsupportedMediaType("Unsupported media type", detail="send application/activity+json",
                                   field="Content-Type")
    body = await request.read()
    activity = parse_json(body, found.config.limits.max_json_depth)
    if not isinstance(activity, dict) or not isinstance(activity.get("id"), str):
        raise BadRequest("An activity must be a JSON object with an id", field="body")
    url = found.config.base_url + request.raw_path  # the URL the sender signed, as this node is known
    await found.federation.inbox.receive(url, request.headers, body, activity)
    return web.Response(status=202)


async def peers(request: web.Request) -> web.Response:
    return web.json_response({"peers": await services(request).federation.peers.gossip_list()})


async def digest(request: web.Request) -> web.Response:
    return web.json_response(await services(request).federation.own_digest())


async def status(request: web.Request) -> web.Response:
    return web.json_response(await services(request).federation.status())


def setup(app: web.Application) -> None:
    app.router.add_get("/actor", actor)
    app.router.add_get("/.well-known/nodeinfo", well_known_nodeinfo)
    app.router.add_get("/nodeinfo/2.1", nodeinfo_21)
    app.router.add_get("/.well-known/webfinger", webfinger_route)
    app.router.add_get("/outbox", outbox)
    app.router.add_get("/outbox/{seq}", outbox_item)
    app.router.add_get("/followers", followers)
    app.router.add_get("/following", following)
    app.router.add_post("/inbox", inbox)
    app.router.add_get("/federation/peers", peers)
    app.router.add_get("/federation/digest", digest)
    app.router.add_get("/federation/status", status)
