"""An ordinary ActivityPub server (Mastodon-compatible) follows an EduFed node; discovery documents are right.

The fediverse side is a small server written here, independent of ``node.federation``: it looks the node up the
way Mastodon does (WebFinger, then the actor as ``application/activity+json``, origin checks), signs its requests
with draft-cavage ``rsa-sha256`` over ``(request-target) host date digest content-type`` and verifies what the
node sends by Mastodon's rules (``SignatureVerification``): signed ``Date`` within the window, signed ``Digest``
that matches the body, key fetched from the ``keyId``'s actor, whose ``id`` must be the URL it was fetched from.
Every activity it receives, and the node's actor, must expand as JSON-LD with only the ActivityStreams and
security/v1 contexts and lose no term (design note 9).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formatdate, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyld import jsonld
from pyld.context_resolver import ContextResolver

from node.federation.http_signatures import sign_rfc9421
from node.ld.contexts import context_document
from node.store import feed
from node.store.models import Counter
from node.trust.multikey import Ed25519Key
from node.trust.rsa_keys import RsaKey
from tests.harness import RunningNode, eventually, free_port, running_node

AS = "https://www.w3.org/ns/activitystreams"
SECURITY_V1 = "https://w3id.org/security/v1"
PUBLIC_FORMS = {f"{AS}#Public", "as:Public", "Public"}  # what Mastodon accepts as the public collection
ACTIVITY_JSON = "application/activity+json"
NODEINFO_21 = "http://nodeinfo.diaspora.software/ns/schema/2.1"
# Mastodon's SignatureVerification: a signature is good for 5 minutes unless it says otherwise, never more than
# 12 hours, with an hour of clock skew allowed either way.
DEFAULT_EXPIRY = timedelta(minutes=5)
EXPIRATION_WINDOW_LIMIT = timedelta(hours=12)
CLOCK_SKEW_MARGIN = timedelta(hours=1)


def course(name: str, description: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": name}}
    if description:
        body["description"] = {"en": description}
    return body


def place(name: str) -> dict[str, Any]:
    return {"@context": "https://w3id.org/edufed/v1", "type": "Place", "name": {"en": name},
            "geo": {"type": "GeoCoordinates", "latitude": 31.19, "longitude": 121.44}}


# -- JSON-LD as a fediverse server sees it ----------------------------------------------------------------------


def fediverse_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """A loader that knows only what every ActivityPub server can load: ActivityStreams and security/v1."""
    if url not in (AS, SECURITY_V1):
        raise LookupError(f"a fediverse server cannot load the context {url}")
    return {"contextUrl": None, "documentUrl": url, "document": context_document(url)}


def _undefined(expanded: Any, where: str = "") -> list[str]:
    """Terms and types that only the ActivityStreams ``"@vocab": "_:"`` caught (blank-node IRIs: undefined),
    and ``@id``s left relative: pyld keeps the former and drops the latter from RDF without a word."""
    found: list[str] = []
    if isinstance(expanded, list):
        for item in expanded:
            found += _undefined(item, where)
    elif isinstance(expanded, dict):
        for key, value in expanded.items():
            if key.startswith("_:"):
                found.append(f"{where}/{key}")
            if key == "@type":
                found += [f"{where}/@type {t}" for t in (value if isinstance(value, list) else [value])
                          if not isinstance(t, str) or t.startswith("_:") or ":" not in t]
            if key == "@id" and (not isinstance(value, str) or ":" not in value):
                found.append(f"{where}/@id {value}")
            found += _undefined(value, f"{where}/{key}")
    return found


def expand_as_fediverse(document: dict[str, Any]) -> list[Any]:
    """Expand like a fediverse server: only AS + security/v1 loadable, no processed-context cache shared with
    the node (which caches its own contexts as static), and every dropped or undefined term is a failure."""
    dropped: list[str] = []
    processor = jsonld.JsonLdProcessor(on_property_dropped=lambda term: dropped.append(str(term)))
    resolver = ContextResolver({}, fediverse_loader)
    options = {"documentLoader": fediverse_loader, "base": None, "contextResolver": resolver}
    expanded: list[Any] = processor.expand(copy.deepcopy(document), options)
    problems = dropped + _undefined(expanded)
    assert not problems, f"terms a fediverse server cannot read in {document.get('type')}: {problems}"
    assert expanded, "the document expanded to nothing"
    return expanded


def test_the_expansion_check_catches_foreign_contexts_and_undefined_terms() -> None:
    """The check above can fail: a context it cannot load, a term nobody defines, a relative id."""
    with pytest.raises(jsonld.JsonLdError):
        expand_as_fediverse({"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": "x"})
    for bad in ({"courseCode": "X1"}, {"type": "Course"}, {"id": "relative/path"}):
        with pytest.raises(AssertionError, match="cannot read"):
            expand_as_fediverse({"@context": AS, "type": "Note", "content": "hi", **bad})
    expand_as_fediverse({"@context": AS, "id": "https://example.org/n/1", "type": "Note", "content": "hi"})


# -- a Mastodon-like server --------------------------------------------------------------------------------------


class Refused(Exception):
    """A request this server refuses; ``status`` is what Mastodon would answer."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Received:
    path: str
    activity: dict[str, Any]
    key_id: str
    signed_headers: tuple[str, ...]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def cavage_headers(key: RsaKey, key_id: str, url: str, body: bytes, *, date: str | None = None,
                   digest_of: bytes | None = None) -> dict[str, str]:
    """Headers of a POST signed the way Mastodon signs (``HttpSignatureDraft``): written from the draft, not
    with the node's signer. ``digest_of`` lets a test send a Digest of some other body."""
    target = urlsplit(url)
    fields = {
        "host": target.netloc,
        "date": date or formatdate(usegmt=True),
        "digest": "SHA-256=" + _b64(hashlib.sha256(body if digest_of is None else digest_of).digest()),
        "content-type": ACTIVITY_JSON,
    }
    covered = ["(request-target)", "host", "date", "digest", "content-type"]
    lines = [f"(request-target): post {target.path}" if name == "(request-target)" else f"{name}: {fields[name]}"
             for name in covered]
    signature = key.sign_pkcs1_sha256("\n".join(lines).encode("ascii"))
    return {
        "Host": fields["host"], "Date": fields["date"], "Digest": fields["digest"], "Content-Type": ACTIVITY_JSON,
        "Signature": f'keyId="{key_id}",algorithm="rsa-sha256",headers="{" ".join(covered)}",'
                     f'signature="{_b64(signature)}"',
    }


class Fediverse:
    """One Mastodon-like instance with one account, ``alice``."""

    def __init__(self, http: aiohttp.ClientSession, port: int) -> None:
        self.http = http
        self.host = f"127.0.0.1:{port}"
        self.base = f"http://{self.host}"
        self.actor_id = f"{self.base}/users/alice"
        self.key_id = f"{self.actor_id}#main-key"
        self.key = RsaKey.generate()
        self.received: list[Received] = []
        self.refused: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/.well-known/webfinger", self._webfinger)
        self.app.router.add_get("/users/alice", self._actor)
        self.app.router.add_post("/users/alice/inbox", self._inbox)
        self.app.router.add_post("/inbox", self._inbox)

    def actor_document(self) -> dict[str, Any]:
        return {
            "@context": [AS, SECURITY_V1, {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers"}],
            "id": self.actor_id,
            "type": "Person",
            "preferredUsername": "alice",
            "name": "Alice",
            "inbox": f"{self.actor_id}/inbox",
            "outbox": f"{self.actor_id}/outbox",
            "followers": f"{self.actor_id}/followers",
            "manuallyApprovesFollowers": False,
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {"id": self.key_id, "owner": self.actor_id, "publicKeyPem": self.key.public_pem()},
        }

    async def _webfinger(self, request: web.Request) -> web.Response:
        if request.query.get("resource") not in (f"acct:alice@{self.host}", self.actor_id):
            return web.Response(status=404)
        return web.json_response({"subject": f"acct:alice@{self.host}", "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": self.actor_id}]}, content_type="application/jrd+json")

    async def _actor(self, request: web.Request) -> web.Response:
        return web.json_response(self.actor_document(), content_type=ACTIVITY_JSON)

    # -- receiving: Mastodon's SignatureVerification --------------------------------------------------------

    async def _inbox(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            key_id, covered = await self.verify(request, body)
            activity = json.loads(body)
            if activity.get("actor") != key_id.split("#", 1)[0]:
                raise Refused("activity actor is not the signer", 403)
        except Refused as refusal:
            self.refused.append(str(refusal))
            return web.json_response({"error": str(refusal)}, status=refusal.status)
        self.received.append(Received(request.path, activity, key_id, covered))
        return web.Response(status=202)

    async def verify(self, request: web.Request, body: bytes) -> tuple[str, tuple[str, ...]]:
        """The checks of Mastodon's ``SignatureVerification`` for a POST; returns the keyId and covered headers."""
        header = request.headers.get("Signature")
        if not header:
            raise Refused("request not signed")
        params = {}
        for part in header.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep or not (value.startswith('"') and value.endswith('"')):
                raise Refused(f"malformed Signature parameter {part!r}")
            params[name] = value[1:-1]
        if not params.get("keyId") or not params.get("signature"):
            raise Refused("incompatible request signature: keyId and signature are required")
        if params.get("algorithm", "rsa-sha256") not in ("rsa-sha256", "hs2019"):
            raise Refused(f"unsupported algorithm {params['algorithm']}")
        covered = tuple(params.get("headers", "date").lower().split())
        if "date" not in covered:
            raise Refused("Mastodon requires the Date header or (created) pseudo-header to be signed")
        if "(request-target)" not in covered and "digest" not in covered:
            raise Refused("Mastodon requires the Digest header or (request-target) pseudo-header to be signed")
        if "digest" not in covered:
            raise Refused("Mastodon requires the Digest header to be signed when doing a POST request")
        self._check_digest(request.headers.get("Digest"), body)
        self._check_time_window(request.headers.get("Date"), params.get("expires"))
        public_key = await self._public_key(params["keyId"])
        lines = []
        for name in covered:
            if name == "(request-target)":
                lines.append(f"(request-target): {request.method.lower()} {request.path_qs}")
            elif name in request.headers:
                lines.append(f"{name}: {request.headers[name]}")
            else:
                raise Refused(f"signed header {name} is missing")
        try:
            public_key.verify(base64.b64decode(params["signature"]), "\n".join(lines).encode(),
                              padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise Refused("verification failed") from None
        return params["keyId"], covered

    @staticmethod
    def _check_digest(header: str | None, body: bytes) -> None:
        if header is None:
            raise Refused("Digest header missing")
        digests = dict((algorithm.lower(), value) for algorithm, _, value in
                       (item.strip().partition("=") for item in header.split(",")))
        if "sha-256" not in digests:
            raise Refused("Mastodon only supports SHA-256 in Digest header")
        if digests["sha-256"] != _b64(hashlib.sha256(body).digest()):
            raise Refused("Invalid Digest value")

    @staticmethod
    def _check_time_window(date: str | None, expires: str | None) -> None:
        if not date:
            raise Refused("Date header missing")
        try:
            created = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise Refused("Invalid Date header") from None
        until = datetime.fromtimestamp(int(expires), UTC) if expires else created + DEFAULT_EXPIRY
        until = min(until, created + EXPIRATION_WINDOW_LIMIT)
        now = datetime.now(UTC)
        if created > now + CLOCK_SKEW_MARGIN or now > until + CLOCK_SKEW_MARGIN:
            raise Refused("signed request date outside acceptable time window")

    async def _public_key(self, key_id: str) -> rsa.RSAPublicKey:
        """Fetch the keyId's actor; the actor's id must be where it was fetched from, and it must own the key."""
        actor = await self.fetch_actor(key_id.split("#", 1)[0])
        key = actor.get("publicKey")
        if not isinstance(key, dict) or key.get("id") != key_id or key.get("owner") != actor["id"]:
            raise Refused("the keyId's actor does not publish that key")
        public = serialization.load_pem_public_key(str(key["publicKeyPem"]).encode())
        if not isinstance(public, rsa.RSAPublicKey):
            raise Refused("not an RSA key")
        return public

    # -- looking up and following, as Mastodon does ---------------------------------------------------------

    async def fetch_actor(self, url: str) -> dict[str, Any]:
        async with self.http.get(url, headers={"Accept": ACTIVITY_JSON}, allow_redirects=False) as response:
            if response.status != 200:
                raise Refused(f"actor {url} answered {response.status}")
            if response.content_type not in (ACTIVITY_JSON, "application/ld+json"):
                raise Refused(f"actor {url} is {response.content_type}, not ActivityPub")
            actor: dict[str, Any] = await response.json(content_type=None)
        if actor.get("id") != url:  # Mastodon refuses an actor whose id is not where it came from
            raise Refused(f"actor id {actor.get('id')} is not {url}")
        if actor.get("type") not in ("Person", "Service", "Group", "Organization", "Application"):
            raise Refused(f"{actor.get('type')} is not an actor type")
        return actor

    async def webfinger(self, resource: str, host: str) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"http://{host}/.well-known/webfinger", params={"resource": resource},
                                 headers={"Accept": "application/jrd+json"}) as response:
            return response.status, await response.json(content_type=None)

    async def resolve(self, handle: str) -> dict[str, Any]:
        """``acct:user@host`` → WebFinger → actor; then the handle is confirmed against the actor's own host."""
        host = handle.rsplit("@", 1)[1]
        status, jrd = await self.webfinger(handle, host)
        assert status == 200, jrd
        link = next(link for link in jrd["links"] if link.get("rel") == "self" and link.get("type") == ACTIVITY_JSON)
        actor = await self.fetch_actor(link["href"])
        confirmed = f"acct:{actor['preferredUsername']}@{urlsplit(actor['id']).netloc}"
        status, again = await self.webfinger(confirmed, urlsplit(actor["id"]).netloc)
        assert status == 200 and again["subject"] == confirmed
        assert any(link.get("href") == actor["id"] for link in again["links"] if link.get("rel") == "self")
        return actor

    def activity(self, kind: str, target: Any) -> dict[str, Any]:
        return {"@context": AS, "id": f"{self.base}/{uuid.uuid4()}", "type": kind, "actor": self.actor_id,
                "object": target}

    async def post(self, inbox: str, activity: dict[str, Any], *,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
        """POST a signed activity; returns status, problem document (on errors) and content type."""
        body = json.dumps(activity).encode()
        sent = headers if headers is not None else cavage_headers(self.key, self.key_id, inbox, body)
        async with self.http.post(inbox, data=body, headers=sent) as response:
            problem = await response.json(content_type=None) if response.status >= 400 else {}
            return response.status, problem, response.content_type

    def of_type(self, kind: str) -> list[Received]:
        return [d for d in self.received if d.activity.get("type") == kind]


@asynccontextmanager
async def fediverse_server() -> AsyncIterator[Fediverse]:
    async with aiohttp.ClientSession() as http:
        server = Fediverse(http, free_port())
        runner = web.AppRunner(server.app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", int(server.host.rsplit(":", 1)[1])).start()
        try:
            yield server
        finally:
            await runner.cleanup()


async def test_the_fediverse_server_refuses_what_mastodon_refuses(fediverse: Fediverse) -> None:
    """Its verification can fail: the Accepts and Notes it takes from the node below are evidence."""
    inbox = f"{fediverse.base}/inbox"
    note = fediverse.activity("Create", {"type": "Note", "content": "hello"})
    body = json.dumps(note).encode()
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=13), usegmt=True)
    refused = {
        "another key": cavage_headers(RsaKey.generate(), fediverse.key_id, inbox, body),
        "wrong digest": cavage_headers(fediverse.key, fediverse.key_id, inbox, body, digest_of=b"{}"),
        "stale date": cavage_headers(fediverse.key, fediverse.key_id, inbox, body, date=stale),
        "unsigned": {"Content-Type": ACTIVITY_JSON},
    }
    for what, headers in refused.items():
        assert (await fediverse.post(inbox, note, headers=headers))[0] == 401, what
    assert (await fediverse.post(inbox, note))[0] == 202
    assert [r.activity for r in fediverse.received] == [note] and len(fediverse.refused) == len(refused)


# -- fixtures and helpers ----------------------------------------------------------------------------------------


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url, "Shanghai Learning") as running:
        yield running


@pytest.fixture
async def fediverse() -> AsyncIterator[Fediverse]:
    async with fediverse_server() as server:
        yield server


@dataclass
class Followed:
    node: RunningNode
    fediverse: Fediverse
    actor: dict[str, Any]
    follow: dict[str, Any]
    accept: Received = field(init=False)


def host_of(node: RunningNode) -> str:
    return urlsplit(node.base_url).netloc


async def follower_count(node: RunningNode) -> int:
    async with node.http.get(f"{node.base_url}/followers") as response:
        return int((await response.json(content_type=None))["totalItems"])


@pytest.fixture
async def followed(node: RunningNode, fediverse: Fediverse) -> Followed:
    """alice@fediverse has looked the node up by its handle, sent a Follow, and had it accepted."""
    actor = await fediverse.resolve(f"acct:node@{host_of(node)}")
    follow = fediverse.activity("Follow", actor["id"])
    status, problem, _ = await fediverse.post(actor["endpoints"]["sharedInbox"], follow)
    assert status == 202, problem
    await eventually(lambda: _has(fediverse, "Accept"), timeout=10, what="the node's Accept")
    state = Followed(node, fediverse, actor, follow)
    state.accept = fediverse.of_type("Accept")[0]
    return state


async def _has(fediverse: Fediverse, kind: str, count: int = 1) -> bool:
    return len(fediverse.of_type(kind)) >= count


async def pushed_everything(node: RunningNode) -> Callable[[], Awaitable[bool]]:
    """A check that holds once every outbox entry so far was fanned out and no delivery is waiting: anything
    the node meant to send has been answered by the receiver by then."""
    store = node.services.store
    with store.bound():
        target = await feed.head()

    async def check() -> bool:
        with store.bound():
            fanned = await Counter.get_or_none(name="fanout")
        depth = await node.services.federation.deliverer.queue_depth()
        return fanned is not None and fanned.value >= target and depth["pending"] == depth["delivering"] == 0

    return check


class _Text(HTMLParser):
    """Text and link targets of an HTML fragment, as a reader (and Mastodon's sanitizer) would keep them."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.links += [value for name, value in attrs if name == "href" and value]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_html(content: str) -> _Text:
    parsed = _Text()
    parsed.feed(content)
    parsed.close()
    return parsed


# -- the tests ---------------------------------------------------------------------------------------------------


async def test_a_fediverse_account_follows_the_node_by_its_handle(followed: Followed) -> None:
    node, fediverse, actor = followed.node, followed.fediverse, followed.actor
    assert actor["id"] == f"{node.base_url}/actor" and actor["type"] == "Service"
    assert actor["preferredUsername"] == "node" and actor["inbox"].startswith(node.base_url)
    accept = followed.accept
    assert accept.key_id == f"{node.base_url}/actor#main-key"  # verified above with the actor's RSA key
    assert {"(request-target)", "host", "date", "digest"} <= set(accept.signed_headers)
    assert accept.path == "/inbox"  # the sharedInbox alice's actor names
    assert accept.activity["actor"] == actor["id"]
    assert accept.activity["object"]["id"] == followed.follow["id"]
    assert accept.activity["object"]["actor"] == fediverse.actor_id
    assert fediverse.refused == []
    assert await follower_count(node) == 1
    for document in (actor, accept.activity):
        expand_as_fediverse(document)


async def test_new_courses_reach_the_fediverse_as_readable_public_notes(followed: Followed) -> None:
    node, fediverse = followed.node, followed.fediverse
    first = await node.publish(course("Pottery & <Glazes>", "Six evenings of wedging, throwing & glazing."))
    await eventually(lambda: _has(fediverse, "Create"), timeout=10, what="a note for the new course")

    # none for a place, an update or a withdrawal; the next new course is again announced
    await node.publish(place("Xujiahui Library"))
    async with node.http.put(first["id"], json={**first, "name": {"en": "Pottery for everyone"}},
                             headers=node.admin) as response:
        assert response.status == 200
    doomed = await node.publish(course("Cancelled workshop"))
    # (a course withdrawn before its fan-out is never announced: wait, so the Delete itself is what is tested)
    await eventually(lambda: _has(fediverse, "Create", 2), timeout=10, what="a note for the second course")
    async with node.http.delete(doomed["id"], headers=node.admin) as response:
        assert response.status == 200
    second = await node.publish(course("Calligraphy"))
    await eventually(await pushed_everything(node), timeout=10, what="the node to push everything")

    creates = [d.activity for d in fediverse.of_type("Create")]
    assert [c["object"]["url"] for c in creates] == [first["id"], doomed["id"], second["id"]]
    assert [d.activity["type"] for d in fediverse.received] == ["Accept", "Create", "Create", "Create"]
    assert fediverse.refused == []

    create = creates[0]
    note = create["object"]
    assert create["actor"] == note["attributedTo"] == followed.actor["id"]
    assert PUBLIC_FORMS & set(create["to"]) and PUBLIC_FORMS & set(note["to"])
    assert note["type"] == "Note"
    for identifier in (create["id"], note["id"]):  # Mastodon refuses objects not on the actor's host
        assert urlsplit(identifier).hostname == urlsplit(followed.actor["id"]).hostname
    html = read_html(note["content"])
    assert html.tags <= {"p", "a", "br"}
    assert "Pottery & <Glazes>" in "".join(html.text)
    assert "Six evenings of wedging, throwing & glazing." in "".join(html.text)
    assert html.links == [first["id"]]
    for delivery in fediverse.received:
        expand_as_fediverse(delivery.activity)


async def test_undo_follow_stops_the_notes(followed: Followed) -> None:
    node, fediverse, actor = followed.node, followed.fediverse, followed.actor
    undo = fediverse.activity("Undo", {k: v for k, v in followed.follow.items() if k != "@context"})
    status, problem, _ = await fediverse.post(actor["inbox"], undo)
    assert status == 202, problem
    assert await follower_count(node) == 0
    await node.publish(course("Nobody is told about this one"))
    await eventually(await pushed_everything(node), timeout=10, what="the node to push everything")
    assert fediverse.of_type("Create") == []


async def test_the_actor_is_served_at_its_own_id_and_expands_with_standard_contexts(
    node: RunningNode, fediverse: Fediverse
) -> None:
    actor = await fediverse.fetch_actor(f"{node.base_url}/actor")  # raises unless id == the URL fetched
    expanded = expand_as_fediverse(actor)
    key = expanded[0]["https://w3id.org/security#publicKey"][0]
    assert key["@id"] == f"{node.base_url}/actor#main-key"
    pem = key["https://w3id.org/security#publicKeyPem"][0]["@value"]
    assert isinstance(serialization.load_pem_public_key(pem.encode()), rsa.RSAPublicKey)
    assert expanded[0]["http://www.w3.org/ns/ldp#inbox"][0]["@id"] == f"{node.base_url}/inbox"
    # localhost is another origin than 127.0.0.1: the node does not claim to be there
    other = f"localhost:{node.config.port}"
    status, _ = await fediverse.webfinger(f"acct:node@{other}", host_of(node))
    assert status == 404
    with pytest.raises(Refused, match="is not"):
        await fediverse.fetch_actor(f"http://{other}/actor")


async def test_nodeinfo_2_1_describes_the_node(node: RunningNode) -> None:
    await node.publish(course("Pottery"))
    await node.publish(place("Library"))
    async with node.http.get(f"{node.base_url}/.well-known/nodeinfo") as response:
        assert response.status == 200
        links = await response.json(content_type=None)
    href = next(link["href"] for link in links["links"] if link["rel"] == NODEINFO_21)
    assert href == f"{node.base_url}/nodeinfo/2.1"
    async with node.http.get(href) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert "nodeinfo.diaspora.software/ns/schema/2.1" in response.headers["Content-Type"]
        info = await response.json()
    # what the NodeInfo 2.1 schema requires
    assert info["version"] == "2.1"
    assert info["software"]["name"] == "edufed" and isinstance(info["software"]["version"], str)
    assert info["protocols"] == ["activitypub"]
    assert set(info["services"]) == {"inbound", "outbound"} and isinstance(info["openRegistrations"], bool)
    assert isinstance(info["usage"]["users"], dict) and isinstance(info["metadata"], dict)
    edufed = info["metadata"]["edufed"]
    async with node.http.get(f"{node.base_url}/.well-known/did.json") as response:
        did = (await response.json(content_type=None))["id"]
    assert edufed["did"] == did == f"did:web:{host_of(node).replace(':', '%3A')}"
    assert edufed["actor"] == f"{node.base_url}/actor"
    assert edufed["languages"] == list(node.config.languages) and edufed["languages"]
    assert edufed["records"] == {"own": 2, "mirrored": 0}
    assert info["usage"]["localPosts"] == 2


async def test_webfinger_answers_for_the_node_actor_only(node: RunningNode) -> None:
    actor = f"{node.base_url}/actor"
    for resource in (f"acct:node@{host_of(node)}", actor):
        async with node.http.get(f"{node.base_url}/.well-known/webfinger", params={"resource": resource}) as response:
            assert response.status == 200 and response.content_type == "application/jrd+json"
            jrd = await response.json(content_type=None)
        assert jrd["subject"] == f"acct:node@{host_of(node)}"
        assert {"rel": "self", "type": ACTIVITY_JSON, "href": actor} in jrd["links"]
    for params, status in (({"resource": f"acct:someone@{host_of(node)}"}, 404),
                           ({"resource": "acct:node@elsewhere.example"}, 404), ({}, 400)):
        async with node.http.get(f"{node.base_url}/.well-known/webfinger", params=params) as response:
            assert response.status == status and response.content_type == "application/problem+json"
            problem = await response.json(content_type=None)
        assert problem["status"] == status and problem["field"] == "resource"


async def test_signatures_the_node_cannot_verify_get_401_and_the_other_scheme_then_works(
    node: RunningNode, fediverse: Fediverse
) -> None:
    inbox = f"{node.base_url}/inbox"
    follow = fediverse.activity("Follow", f"{node.base_url}/actor")
    body = json.dumps(follow).encode()
    stale = format_datetime(datetime.now(UTC) - timedelta(hours=13), usegmt=True)
    ed_key = Ed25519Key.generate()
    rfc9421 = {"Content-Type": ACTIVITY_JSON}
    rfc9421.update(sign_rfc9421("POST", inbox, rfc9421, body, ed_key, f"{fediverse.actor_id}#ed25519-key"))
    attempts = {
        "another key than the actor's": cavage_headers(RsaKey.generate(), fediverse.key_id, inbox, body),
        "a Digest of another body": cavage_headers(fediverse.key, fediverse.key_id, inbox, body, digest_of=b"{}"),
        "a Date 13 hours old": cavage_headers(fediverse.key, fediverse.key_id, inbox, body, date=stale),
        "RFC 9421 with a key no DID lists": rfc9421,
        "no signature": {"Content-Type": ACTIVITY_JSON},
    }
    for what, headers in attempts.items():
        status, problem, content_type = await fediverse.post(inbox, follow, headers=headers)
        assert (status, content_type) == (401, "application/problem+json"), what
        assert problem["field"] == "Signature", what
    assert await follower_count(node) == 0 and fediverse.received == []
    # a server that double-knocks retries the same activity with draft-cavage, and is accepted
    status, problem, _ = await fediverse.post(inbox, follow)
    assert status == 202, problem
    await eventually(lambda: _has(fediverse, "Accept"), timeout=10, what="the Accept after the retry")
    assert await follower_count(node) == 1
