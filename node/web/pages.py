"""HTML pages for people. Everything from records is escaped (mirrored records are input from strangers) and
pages carry a strict Content-Security-Policy: no scripts, styles from this node only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from node.catalog.indexing import texts
from node.errors import EduFedError
from node.store.records import StoredRecord
from node.web.inputs import parse_json
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
    app.router.add_static("/static", HERE / "static", append_version=True)
