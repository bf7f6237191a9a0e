"""HTML pages for people. Everything from records is escaped (mirrored records are input from strangers) and
pages carry a strict Content-Security-Policy: no scripts and styles from this node only; the learning map alone
runs this node's own script (Leaflet and map.js) and loads images from the configured tile server."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
import rdflib
from aiohttp import web

from node.catalog.indexing import index_entry, texts
from node.catalog.search import EARTH_RADIUS_KM, bounding_box, cursor_for, distance_km, parse_query
from node.config import DEFAULT_TILE_ATTRIBUTION, DEFAULT_TILE_URL, NodeConfig
from node.errors import EduFedError
from node.json_text import parse_json
from node.ld.contexts import vocab_dir
from node.store.records import StoredRecord
from node.web.services import services

HERE = Path(__file__).parent
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
HIDDEN = {"@context", "proof", "name", "description", "type", "id"}


def is_link(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://"))


def display(value: Any, languages: tuple[str, ...]) -> Any:
    """A value as the template shows it: plain text, a link, or a nested table."""
    if isinstance(value, dict) and not any(k.startswith("@") for k in value) and all(
        isinstance(v, (str, list)) for v in value.values()
    ) and all(len(k) <= 8 for k in value):
        return " / ".join(texts(value, languages))
    if isinstance(value, dict):
        return {k: display(v, languages) for k, v in value.items() if k != "@context"}
    if isinstance(value, list):
        return [display(v, languages) for v in value]
    return value


def html(template: str, status: int = 200, **context: Any) -> web.Response:
    body = ENV.get_template(template).render(**context)
    return web.Response(
        text=body, status=status, content_type="text/html", charset="utf-8",
        headers={"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Vary": "Accept"},
    )


def record_page(request: web.Request, record: StoredRecord, status: int) -> web.Response:
    found = services(request)
    document = json.loads(record.document_json)
    languages = found.config.languages
    names = texts(document.get("name") or document.get("prefLabel"), languages)
    proof = document.get("proof") if isinstance(document.get("proof"), dict) else {}
    api = f"/api/records?iri={quote(record.iri, safe='')}"
    return html(
        "record.html",
        status,
        node=found.config,
        record=record,
        title=names[0] if names else record.type,
        description=" ".join(texts(document.get("description") or document.get("definition"), languages)),
        properties={k: display(v, languages) for k, v in document.items() if k not in HIDDEN},
        proof=proof,
        own=record.iri.startswith(found.config.records_base),
        api=api,
        is_link=is_link,
    )


async def home(request: web.Request) -> web.Response:
    found = services(request)
    return html(
        "home.html",
        node=found.config,
        did=found.did,
        total=await found.store.count(),
        formats=["application/ld+json", "text/turtle", "application/n-triples", "text/html"],
    )


async def federation_page(request: web.Request) -> web.Response:
    """Peers with their state, lag and last error, for an operator's eyes."""
    found = services(request)
    return html(
        "federation.html",
        node=found.config,
        peers=await found.federation.peers.all(),
        queue=await found.federation.deliverer.queue_depth(),
        digest=await found.federation.own_digest(),
    )


async def verify_page(request: web.Request) -> web.Response:
    """A person's way to check a credential: paste it or choose its file, see every check."""
    found = services(request)
    if request.method == "GET":
        return html("verify.html", node=found.config, text="", challenge="", domain="", verdict=None, error=None)
    form = await request.post()
    upload = form.get("file")
    raw = upload.file.read() if isinstance(upload, web.FileField) and upload.filename else str(form.get("document", ""))
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    challenge, domain = str(form.get("challenge", "")), str(form.get("domain", ""))
    context = {"node": found.config, "text": text, "challenge": challenge, "domain": domain, "verdict": None,
               "error": None}
    try:
        document = parse_json(text.encode("utf-8"), found.config.limits.max_json_depth)
    except EduFedError as error:
        return html("verify.html", 400, **{**context, "error": f"{error.title}: {error.detail or ''}"})
    verifier = found.credit_bank.verifier
    kinds = document.get("type") if isinstance(document, dict) else None
    if "VerifiablePresentation" in (kinds if isinstance(kinds, list) else [kinds]):
        verdict = await verifier.verify_presentation(document, challenge=challenge or None, domain=domain or None)
    else:
        verdict = await verifier.verify_credential(document)
    return html("verify.html", 200 if verdict.verified else 422, **{**context, "verdict": verdict})


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/verify", verify_page)
    app.router.add_post("/verify", verify_page)
    app.router.add_get("/federation", federation_page)
    app.router.add_get("/search", search_page)
    app.router.add_get("/map", map_page)
    app.router.add_static("/static", HERE / "static", append_version=True)


# --- Search and the learning map (pages for people; the JSON API is node/web/search_routes.py) -------------------

SEARCH_LABELS = {"type": "Type", "category": "Field of education", "level": "Level", "language": "Language",
                 "license": "Licence", "free": "Free", "mode": "Mode", "origin": "Origin node"}
MAP_LIMIT = 100
CENTRED_RADIUS_KM = 5
PICTURE_WIDTH = 640.0
PICTURE_MARGIN = 16.0


@dataclass(frozen=True)
class Tiles:
    """Where the map's tiles come from; the origin goes into the page's CSP (img-src), nothing else does."""

    url: str
    attribution: str

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"


def _valid_tile_url(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.scheme in ("http", "https") and bool(re.fullmatch(r"(\{s\}\.)?[A-Za-z0-9.\-]+(:\d{1,5})?",
                                                                    parts.netloc))
            and all(f"{{{key}}}" in url for key in "zxy") and not re.search(r"[\s;,'\"]", url))


def tile_options(config: NodeConfig) -> Tiles:
    """The ``[web]`` tile server of the node's config; OpenStreetMap's when it is not a plain tile URL."""
    url, attribution = config.web.tile_url, config.web.tile_attribution
    if not _valid_tile_url(url):
        return Tiles(DEFAULT_TILE_URL, DEFAULT_TILE_ATTRIBUTION)
    return Tiles(url, attribution)


def map_csp(tiles: Tiles) -> str:
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: {tiles.origin}; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


@functools.cache
def category_labels() -> dict[str, str]:
    """prefLabels of the bundled ISCED-F scheme (English first), read once."""
    graph = rdflib.Graph().parse(vocab_dir() / "v1" / "schemes" / "isced-f-2013.ttl", format="turtle")
    labels: dict[str, str] = {}
    for concept, label in graph.subject_objects(rdflib.SKOS.prefLabel):
        if isinstance(label, rdflib.Literal) and (label.language in (None, "en") or str(concept) not in labels):
            labels[str(concept)] = str(label)
    return labels


def facet_label(name: str, value: str) -> str:
    if name == "category":
        return category_labels().get(value, value)
    if name == "free":
        return {"true": "free", "false": "paid"}.get(value, value)
    return value


def record_href(config: Any, iri: str) -> str:
    """This node's page of a record: its own IRI when it is ours, else the lookup page (never a stranger's URL)."""
    if iri.startswith(config.records_base):
        return iri
    return f"/api/records?iri={quote(iri, safe='')}"


def page_params(request: web.Request) -> dict[str, str]:
    """The query a page was asked for: empty form fields dropped, a radius only with a centre."""
    params: dict[str, str] = {}
    for name, value in request.query.items():
        if value.strip() and name not in params:
            params[name] = value.strip()
    if "near" not in params:
        params.pop("radius", None)
    return params


def search_link(params: dict[str, str], **changes: str | None) -> str:
    merged = {k: v for k, v in params.items() if k != "cursor"}
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return "/search?" + urlencode(merged) if merged else "/search"


def page_response(template: str, csp: str, status: int = 200, **context: Any) -> web.Response:
    response = html(template, status, **context)
    response.headers["Content-Security-Policy"] = csp
    return response


async def search_page(request: web.Request) -> web.Response:
    """Search with facets for people: a plain form and links, so it works without JavaScript and on a phone."""
    found = services(request)
    params = page_params(request)
    context: dict[str, Any] = {
        "node": found.config, "params": params, "labels": SEARCH_LABELS, "facet_label": facet_label,
        "link": lambda **changes: search_link(params, **changes), "href": lambda iri: record_href(found.config, iri),
        "category_options": _broad_fields(), "result": None, "error": None, "next": None,
    }
    try:
        result = await found.search.run(parse_query(params))
    except EduFedError as error:
        return html("search.html", 400, **{**context, "error": f"{error.title}: {error.detail or ''}".rstrip(": ")})
    following = None
    if result.next_offset is not None:
        following = "/search?" + urlencode({**params, "cursor": cursor_for(result.query, result.next_offset)})
    return html("search.html", **{**context, "result": result, "next": following})


def _broad_fields() -> list[tuple[str, str]]:
    """The eleven ISCED-F broad fields (two-digit codes) for the form's choice."""
    fields = [(iri, label) for iri, label in category_labels().items() if re.fullmatch(r".*/isced-f/\d\d", iri)]
    return sorted(fields)


async def _own_centre(request: web.Request) -> tuple[float, float] | None:
    """Where the map opens without a centre: the most central of this node's (newest) learning places, the one
    with the least total distance to the others (a mean could fall between two towns, in a field or a sea)."""
    found = services(request)
    origin = urlsplit(found.config.base_url).netloc
    result = await found.search.run(
        parse_query({"origin": origin, "type": "Place", "limit": str(MAP_LIMIT)})
    )
    spots = [(float(i["latitude"]), float(i["longitude"])) for i in result.items
             if i["latitude"] is not None and i["longitude"] is not None]
    if not spots:
        return None
    return min(spots, key=lambda spot: (sum(distance_km(spot, other) for other in spots), spot))


def picture(centre: tuple[float, float], radius_km: float, points: list[dict[str, Any]]) -> dict[str, Any]:
    """An SVG drawing of the points, the centre and the radius: equirectangular over the radius's bounding box."""
    south, north, west, east = bounding_box(centre, radius_km)
    scale = math.cos(math.radians(centre[0])) or 1e-6
    span_x, span_y = max((east - west) * scale, 1e-9), max(north - south, 1e-9)
    k = (PICTURE_WIDTH - 2 * PICTURE_MARGIN) / span_x
    height = span_y * k + 2 * PICTURE_MARGIN

    def place(lat: float, lon: float) -> tuple[float, float]:
        return (round(PICTURE_MARGIN + (lon - west) * scale * k, 1), round(PICTURE_MARGIN + (north - lat) * k, 1))

    cx, cy = place(*centre)
    radius_px = round(math.degrees(radius_km / EARTH_RADIUS_KM) * k, 1)
    dots = [dict(zip(("x", "y"), place(p["latitude"], p["longitude"]), strict=True)) | p for p in points]
    return {"width": PICTURE_WIDTH, "height": round(height, 1), "cx": cx, "cy": cy, "r": radius_px, "dots": dots}


async def map_page(request: web.Request) -> web.Response:
    """The learning map: places, events and course runs near a point, as an SVG picture and a list (no JavaScript
    needed, no tiles needed), enhanced by map.js with Leaflet and the configured tile server."""
    found = services(request)
    tiles = tile_options(found.config)
    csp = map_csp(tiles)
    params = {k: v for k, v in page_params(request).items() if k in ("near", "radius", "type")}
    context: dict[str, Any] = {"node": found.config, "params": params, "error": None, "result": None,
                               "picture": None, "data": None, "centred_on_node": False}
    if "near" not in params:
        centre = await _own_centre(request)
        if centre is None:
            return page_response("map.html", csp, **context)
        params = {"radius": str(CENTRED_RADIUS_KM), **params, "near": f"{centre[0]},{centre[1]}"}
        context["centred_on_node"] = True
    try:
        query = parse_query({**params, "limit": str(MAP_LIMIT)})
        result = await found.search.run(query)
    except EduFedError as error:
        message = f"{error.title}: {error.detail or ''}".rstrip(": ")
        return page_response("map.html", csp, 400, **{**context, "params": params, "error": message})
    assert query.near is not None
    points = [{"name": item["name"] or item["id"], "type": item["type"], "latitude": item["latitude"],
               "longitude": item["longitude"], "distanceKm": item["distanceKm"], "origin": item["origin"],
               "href": record_href(found.config, item["id"])} for item in result.items]
    data = {"centre": list(query.near), "radiusKm": query.radius_km, "points": points,
            "tiles": {"url": tiles.url, "attribution": tiles.attribution}}
    return page_response("map.html", csp, **{**context, "params": params, "result": result, "data": data,
                                            "picture": picture(query.near, query.radius_km, points)})


def map_link(record: StoredRecord) -> str | None:
    """``/map?near=lat,lon`` for a record that has a point (its own or its location's), else None."""
    if record.deleted:
        return None
    entry = index_entry(json.loads(record.document_json))
    if entry.latitude is None or entry.longitude is None:
        return None
    return "/map?" + urlencode({"near": f"{entry.latitude},{entry.longitude}"})


ENV.globals["map_link"] = map_link
