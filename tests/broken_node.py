"""A deliberately broken node, to show that each conformance check fails when it should.

It is a real node behind a small proxy: the node is initialised with the proxy's origin as its base URL (so its
DID, record ids and signatures belong to the proxy's origin) but listens on another port; the proxy forwards
every request and alters the answers that a chosen set of *breaks* names. With no break the proxy is a faithful
node, which the tests also check, so a failure is due to the break and nothing else.

``BREAKS`` maps each break to the requirement ids the checker must then report as failed, no more, no fewer.
Some breaks fail more than the requirement they target, because the specification makes it so: a DID document
that lists the key only under ``authentication`` makes every record proof fail too (section 3.3, step 3).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from node.app import create_app
from node.bootstrap import init_node
from tests.harness import free_port

TAMPERED = "pottery-101"  # the record whose proof the "tampered-proof" break alters
WITHDRAWN = "old-course"
SAMPLE = (
    {"id": TAMPERED, "type": "Course", "name": {"en": "Pottery for beginners", "zh": "陶艺入门"},
     "keywords": {"en": ["ceramics", "crafts"]}, "about": ["https://w3id.org/edufed/schemes/isced-f/02"]},
    {"id": "welding-basics", "type": "Course", "name": {"en": "Welding basics"}, "inLanguage": "en"},
    {"id": "city-library", "type": "Place", "name": {"en": "City library"},
     "geo": {"type": "GeoCoordinates", "latitude": 53.8, "longitude": -1.55}},
    {"id": WITHDRAWN, "type": "Course", "name": {"en": "A course that was withdrawn"}},
)

BREAKS: dict[str, frozenset[str]] = {
    "did-authentication-only": frozenset({"ID-5", "PRF-1", "PRF-4", "API-2"}),
    "tampered-proof": frozenset({"PRF-1", "PRF-4"}),
    "context-bytes": frozenset({"REC-8", "API-4"}),
    "errors-text-plain": frozenset({"ERR-1"}),
    "turtle-ignored": frozenset({"REC-9"}),
    "withdrawn-not-gone": frozenset({"API-2"}),
    "nodeinfo-without-edufed": frozenset({"DISC-2"}),
    "actor-foreign-inbox": frozenset({"DISC-5", "DISC-6"}),
    "outbox-not-monotonic": frozenset({"FEED-1", "FEED-3", "FEED-4"}),
    "digest-off": frozenset({"SYNC-6"}),
    "inbox-accepts-unsigned": frozenset({"INBOX-1", "INBOX-2"}),
}


@dataclass
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: bytes

    @property
    def media_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    def set_json(self, value: Any, media_type: str | None = None) -> None:
        self.body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        if media_type:
            self.headers["Content-Type"] = media_type


Alteration = Callable[[web.Request, Answer], None]


def _drop_assertion_method(request: web.Request, answer: Answer) -> None:
    if request.path == "/.well-known/did.json":
        document = answer.json()
        document.pop("assertionMethod", None)
        answer.set_json(document)


def _tamper_proof(request: web.Request, answer: Answer) -> None:
    if answer.media_type != "application/ld+json":
        return
    document = answer.json()
    if isinstance(document, dict) and str(document.get("id", "")).endswith(f"/records/{TAMPERED}"):
        value = document["proof"]["proofValue"]
        document["proof"]["proofValue"] = value[:10] + ("2" if value[10] != "2" else "3") + value[11:]
        answer.set_json(document)


def _alter_context(request: web.Request, answer: Answer) -> None:
    if request.path == "/contexts/context.jsonld":
        answer.body += b"\n"


def _plain_errors(request: web.Request, answer: Answer) -> None:
    if request.method == "GET" and answer.media_type == "application/problem+json":
        answer.body = json.loads(answer.body).get("title", "error").encode()
        answer.headers["Content-Type"] = "text/plain; charset=utf-8"


def _ignore_turtle(request: web.Request, answer: Answer) -> None:
    if request.path.startswith("/records/") and answer.media_type == "text/turtle":
        raise _Replace("application/ld+json")


def _withdrawn_not_gone(request: web.Request, answer: Answer) -> None:
    if request.path == f"/records/{WITHDRAWN}" and answer.status == 410:
        answer.status = 404
        answer.set_json({"type": "https://w3id.org/edufed/problems#not-found", "title": "No such record",
                         "status": 404}, "application/problem+json")


def _nodeinfo_without_edufed(request: web.Request, answer: Answer) -> None:
    if request.path == "/nodeinfo/2.1":
        info = answer.json()
        info["metadata"].pop("edufed")
        answer.set_json(info)


def _foreign_inbox(request: web.Request, answer: Answer) -> None:
    if request.path == "/actor":
        actor = answer.json()
        actor["inbox"] = "https://elsewhere.example/inbox"
        answer.set_json(actor)


def _reverse_outbox(request: web.Request, answer: Answer) -> None:
    if request.path == "/outbox" and "after" in request.query and answer.status == 200:
        page = answer.json()
        page["orderedItems"].reverse()
        answer.set_json(page)


def _digest_off(request: web.Request, answer: Answer) -> None:
    if request.path == "/federation/digest":
        digest = answer.json()
        digest["count"] += 1
        answer.set_json(digest)


class _Replace(Exception):
    """Answer the request again upstream with another Accept (a node that ignores what was asked)."""

    def __init__(self, accept: str) -> None:
        self.accept = accept


ALTERATIONS: dict[str, Alteration] = {
    "did-authentication-only": _drop_assertion_method,
    "tampered-proof": _tamper_proof,
    "context-bytes": _alter_context,
    "errors-text-plain": _plain_errors,
    "turtle-ignored": _ignore_turtle,
    "withdrawn-not-gone": _withdrawn_not_gone,
    "nodeinfo-without-edufed": _nodeinfo_without_edufed,
    "actor-foreign-inbox": _foreign_inbox,
    "outbox-not-monotonic": _reverse_outbox,
    "digest-off": _digest_off,
}
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "content-encoding", "connection", "date",
                          "server"})


def proxy_app(upstream: str, breaks: frozenset[str]) -> web.Application:
    """Forward everything to ``upstream``; alter the answers the ``breaks`` name."""
    unknown = breaks - BREAKS.keys()
    if unknown:
        raise ValueError(f"unknown breaks {sorted(unknown)}")
    http_key = web.AppKey("http", aiohttp.ClientSession)

    async def fetch(request: web.Request, body: bytes, accept: str | None = None) -> Answer:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS)
        if accept is not None:
            headers["Accept"] = accept
        async with request.app[http_key].request(request.method, upstream + request.path_qs, headers=headers,
                                                 data=body or None, allow_redirects=False) as response:
            kept = CIMultiDict((k, v) for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS)
            return Answer(response.status, kept, await response.read())

    async def forward(request: web.Request) -> web.Response:
        if "inbox-accepts-unsigned" in breaks and request.method == "POST" and request.path == "/inbox":
            return web.Response(status=202)
        body = await request.read()
        answer = await fetch(request, body)
        for name in sorted(breaks):
            alteration = ALTERATIONS.get(name)
            if alteration is None:
                continue
            try:
                alteration(request, answer)
            except _Replace as replace:
                answer = await fetch(request, body, replace.accept)
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)

    async def session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=True) as http:
            app[http_key] = http
            yield

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def publish_sample(http: aiohttp.ClientSession, base_url: str, token: str,
                         records_url: str | None = None) -> list[dict[str, Any]]:
    """Publish the sample records on the node at ``base_url`` (or at ``records_url``) and withdraw one."""
    admin = {"Authorization": f"Bearer {token}"}
    published = []
    target = records_url or base_url
    for record in SAMPLE:
        body = {"@context": "https://w3id.org/edufed/v1", **record, "id": f"{base_url}/records/{record['id']}"}
        async with http.post(f"{target}/api/records", json=body, headers=admin) as response:
            assert response.status == 201, await response.text()
            published.append(await response.json(content_type=None))
    async with http.delete(f"{target}/records/{WITHDRAWN}", headers=admin) as response:
        assert response.status == 200, await response.text()
    return published


@dataclass
class BrokenNode:
    base_url: str
    upstream_url: str
    breaks: frozenset[str]
    expected_failures: frozenset[str] = field(default_factory=frozenset)


@asynccontextmanager
async def broken_node(data_dir: Path, database_url: str, breaks: Iterable[str]) -> AsyncIterator[BrokenNode]:
    """A real node with the sample catalog, reachable only through a proxy that applies ``breaks``."""
    chosen = frozenset(breaks)
    port, upstream_port = free_port(), free_port()
    base_url, upstream_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{upstream_port}"
    config, token = await init_node(data_dir, base_url=base_url, name="Broken Node", database_url=database_url,
                                    allow_private_networks=True)
    runners = [await _serve(create_app(config), upstream_port)]
    try:
        async with aiohttp.ClientSession() as http:
            await publish_sample(http, base_url, token, records_url=upstream_url)
        runners.append(await _serve(proxy_app(upstream_url, chosen), port))
        expected = frozenset().union(*(BREAKS[name] for name in chosen))
        yield BrokenNode(base_url, upstream_url, chosen, expected)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()

