"""The conformance checks: small async functions, each tagged with the requirement ids it checks.

Every check reads the node through one :class:`Probe` (the guarded outbound client, responses cached so the
whole run fetches each URL once) and writes what it saw into an :class:`Evidence`: the URLs fetched and every
comparison, seen against expected. A check fails when one comparison fails; it is not applicable when the node
has nothing to check (no withdrawn record, no status list). Checks never use an admin token: the only writes
they send are ones a conforming node refuses (an unsigned inbox POST, a publish without a token).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn
from urllib.parse import urlencode, urlsplit

from rdflib import Dataset, Graph
from rdflib import Literal as RdfLiteral
from rdflib.compare import isomorphic

from node.credentials.bitstring import MIN_ENTRIES
from node.credentials.bitstring import decode as decode_bitstring
from node.errors import EduFedError
from node.ld.contexts import DATA_INTEGRITY_CONTEXT, EDUFED_CONTEXT, context_bytes, manifest
from node.ld.rdf import to_graph
from node.net.client import FetchError, FetchResponse, SafeClient
from node.trust.did import did_web_from_base_url
from node.trust.multikey import decode_public_multibase
from node.trust.proofs import verify

Status = Literal["pass", "fail", "n/a"]
Keyword = Literal["MUST", "SHOULD"]
ConformanceClass = Literal["publishing", "federating", "credentials"]

RECORD_CONTEXT = [EDUFED_CONTEXT, DATA_INTEGRITY_CONTEXT]
RECORD_TYPES = frozenset({"Course", "CourseInstance", "EducationEvent", "LearningResource", "Place",
                          "ConceptScheme", "Concept", "CreditSystem", "CreditConversionRule"})
LOCAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
UTC_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
PROBLEM_BASE = "https://w3id.org/edufed/problems#"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
VC2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
NODEINFO_REL = "http://nodeinfo.diaspora.software/ns/schema/2.1"
JSON_LD = "application/ld+json"
ACTIVITY_JSON = "application/activity+json"
ROUNDING_MODES = frozenset({"RoundHalfUp", "RoundHalfEven", "RoundDown", "RoundUp"})
BASES = frozenset({"Workload", "ContactHours", "Agreement"})
OUTBOX_PAGE = 2  # small pages, so that paging itself is exercised on a small feed
MAX_PAGES = 20  # bound on pages read from any list (outbox, record list)


class _Stop(Exception):
    """The check cannot go on; its failure is already in the evidence."""


class _NotApplicable(Exception):
    """The node has nothing this check could examine."""


@dataclass
class Evidence:
    """What a check saw: ``ok``/``FAIL`` lines for comparisons, ``-`` lines for requests."""

    lines: list[str] = field(default_factory=list)
    failed: bool = False

    def note(self, text: str) -> None:
        self.lines.append(f"-    {text}")

    def expect(self, ok: bool, text: str) -> bool:
        self.lines.append(("ok   " if ok else "FAIL ") + text)
        self.failed = self.failed or not ok
        return ok

    def equal(self, what: str, seen: Any, expected: Any) -> bool:
        if seen == expected:
            return self.expect(True, f"{what} = {seen!r}")
        return self.expect(False, f"{what} = {seen!r}, expected {expected!r}")

    def require(self, ok: bool, text: str) -> None:
        if not self.expect(ok, text):
            raise _Stop

    def object(self, value: Any, what: str) -> dict[str, Any]:
        """``value`` if it is a JSON object; otherwise the check fails here."""
        if not isinstance(value, dict):
            self.fail(f"{what} is a JSON object, got {type(value).__name__}")
        return value

    def array(self, value: Any, what: str) -> list[Any]:
        """``value`` if it is a JSON array; otherwise the check fails here."""
        if not isinstance(value, list):
            self.fail(f"{what} is an array, got {type(value).__name__}")
        return value

    def fail(self, text: str) -> NoReturn:
        self.expect(False, text)
        raise _Stop

    def not_applicable(self, reason: str) -> NoReturn:
        raise _NotApplicable(reason)


def media_type(response: FetchResponse) -> str:
    return response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


class Probe:
    """The node under test, seen through the guarded client; GET answers are cached for the whole run."""

    def __init__(self, base_url: str, client: SafeClient, *, max_records: int = 10) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError(f"{base_url!r} is not an origin (scheme://host[:port], no path): [ID-2]")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.host = parts.netloc
        self.did = did_web_from_base_url(self.base)
        self.actor = f"{self.base}/actor"
        self.client = client
        self.max_records = max_records
        self._cache: dict[tuple[str, str], FetchResponse] = {}
        self._listing: list[dict[str, Any]] | None = None

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base + path

    async def get(self, ev: Evidence, path: str, accept: str = "application/json") -> FetchResponse:
        url = self.url(path)
        response = self._cache.get((url, accept))
        if response is None:
            try:
                response = await self.client.request("GET", url, headers={"Accept": accept})
            except FetchError as exc:
                ev.fail(f"GET {url}: {exc.reason}")
            self._cache[(url, accept)] = response
        ev.note(f"GET {url} (Accept: {accept}) -> {response.status} {media_type(response) or 'no Content-Type'}")
        return response

    async def post(self, ev: Evidence, path: str, body: bytes, content_type: str) -> FetchResponse:
        url = self.url(path)
        try:
            response = await self.client.request("POST", url, body=body, headers={"Content-Type": content_type})
        except FetchError as exc:
            ev.fail(f"POST {url}: {exc.reason}")
        ev.note(f"POST {url} ({content_type}, {len(body)} bytes) -> {response.status} {media_type(response)}")
        return response

    @staticmethod
    def parse(ev: Evidence, response: FetchResponse) -> Any:
        try:
            return json.loads(response.body)
        except (ValueError, UnicodeDecodeError) as exc:
            ev.fail(f"{response.url}: body is not JSON ({exc})")

    async def get_json(self, ev: Evidence, path: str, accept: str = "application/json", status: int = 200) -> Any:
        response = await self.get(ev, path, accept)
        ev.require(response.status == status, f"{response.url} answers {response.status}, expected {status}")
        return self.parse(ev, response)

    async def did_document(self, ev: Evidence) -> dict[str, Any]:
        document = await self.get_json(ev, "/.well-known/did.json", "application/did+json, application/json;q=0.5")
        ev.require(isinstance(document, dict), "DID document is a JSON object")
        return dict(document)

    async def listing(self, ev: Evidence) -> list[dict[str, Any]]:
        """Every record of the node's own origin, from ``/api/records?origin=`` (section 7.5), pages followed."""
        if self._listing is None:
            items: list[dict[str, Any]] = []
            url: str | None = "/api/records?" + urlencode({"origin": self.host, "limit": 100})
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                page = await self.get_json(ev, url)
                ev.require(isinstance(page, dict) and isinstance(page.get("items"), list),
                           "record list is an object with an items array")
                for item in page["items"]:
                    ev.require(isinstance(item, dict) and isinstance(item.get("id"), str)
                               and isinstance(item.get("deleted"), bool), f"list item has id and deleted: {item!r}")
                    items.append(item)
                following = page.get("next")
                url = following if isinstance(following, str) and following.startswith(self.base + "/") else None
            self._listing = items
        ev.note(f"{self.base}/api/records?origin={self.host}: {len(self._listing)} records of this origin")
        return self._listing

    async def record(self, ev: Evidence, iri: str, status: int = 200) -> dict[str, Any]:
        """A record by IRI (``/api/records?iri=``, section 4.1), as a JSON object."""
        document = await self.get_json(ev, "/api/records?" + urlencode({"iri": iri}), JSON_LD, status)
        ev.require(isinstance(document, dict), f"{iri} is a JSON object")
        return dict(document)

    async def sample(self, ev: Evidence) -> list[dict[str, Any]]:
        """Up to ``max_records`` live records of the node, and one Tombstone if it has any."""
        items = await self.listing(ev)
        live = [item for item in items if not item["deleted"]][: self.max_records]
        withdrawn = [item for item in items if item["deleted"]][:1]
        if not live and not withdrawn:
            ev.not_applicable("the node lists no records of its own")
        documents = [await self.record(ev, item["id"]) for item in live]
        documents += [await self.record(ev, item["id"], status=410) for item in withdrawn]
        return documents

    def local_path(self, iri: str) -> str | None:
        """``/records/{id}`` when ``iri`` is a record IRI of this node."""
        prefix = f"{self.base}/records/"
        local = iri.removeprefix(prefix)
        return f"/records/{local}" if iri.startswith(prefix) and LOCAL_ID.fullmatch(local) else None

    async def verify_proof(self, ev: Evidence, document: dict[str, Any]) -> bool:
        """Section 3.3 against this node's DID document (same-origin rule: the record must be of this node)."""
        did_document = await self.did_document(ev)
        iri = str(document.get("id"))
        parts = urlsplit(iri)
        origin_did = did_web_from_base_url(f"{parts.scheme}://{parts.netloc}") if parts.netloc else None
        if not ev.equal(f"{iri}: origin DID", origin_did, self.did):
            return False

        def resolve(name: str) -> dict[str, Any]:
            if name != self.did:
                raise KeyError(f"{name} is not the DID of {self.base}")
            return did_document

        result = await asyncio.to_thread(verify, document, resolve, expected_controller=self.did)
        if result.verified:
            method = next((c.reason for c in result.checks if c.name == "verification-method"), "")
            return ev.expect(True, f"{iri}: proof verifies ({method})")
        return ev.expect(False, f"{iri}: proof refused, {result.error}")

    def check_problem(self, ev: Evidence, response: FetchResponse, status: int, what: str) -> dict[str, Any] | None:
        """An RFC 9457 problem document of ``status`` (section 0.3)."""
        ev.equal(f"{what}: status", response.status, status)
        if not ev.equal(f"{what}: Content-Type", media_type(response), "application/problem+json"):
            return None
        try:
            problem = json.loads(response.body)
        except ValueError:
            ev.fail(f"{what}: problem body is not JSON")
        if not ev.expect(isinstance(problem, dict), f"{what}: problem is a JSON object"):
            return None
        ev.expect(isinstance(problem.get("type"), str) and problem["type"].startswith(PROBLEM_BASE),
                  f"{what}: type {problem.get('type')!r} is {PROBLEM_BASE}<code>")
        ev.expect(isinstance(problem.get("title"), str) and bool(problem["title"]), f"{what}: has a title")
        ev.equal(f"{what}: problem status", problem.get("status"), status)
        return dict(problem)


CheckFunction = Callable[[Probe, Evidence], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    ids: tuple[str, ...]
    keyword: Keyword
    title: str
    conformance_class: ConformanceClass
    run: CheckFunction

    @property
    def name(self) -> str:
        return self.run.__name__.removeprefix("check_").replace("_", "-")


@dataclass
class CheckResult:
    check: Check
    status: Status
    evidence: list[str]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"check": self.check.name, "requirements": list(self.check.ids), "keyword": self.check.keyword,
                "title": self.check.title, "class": self.check.conformance_class, "status": self.status,
                "evidence": self.evidence, "seconds": round(self.seconds, 3)}


CHECKS: list[Check] = []


def check(*ids: str, keyword: Keyword, title: str,
          cls: ConformanceClass = "publishing") -> Callable[[CheckFunction], CheckFunction]:
    """Register a check of requirements ``ids``."""

    def register(function: CheckFunction) -> CheckFunction:
        CHECKS.append(Check(tuple(ids), keyword, title, cls, function))
        return function

    return register


async def run_one(probe: Probe, item: Check) -> CheckResult:
    ev = Evidence()
    started = time.monotonic()
    status: Status = "pass"
    try:
        await item.run(probe, ev)
    except _Stop:
        pass
    except _NotApplicable as reason:
        status = "n/a"
        ev.lines.append(f"n/a  {reason}")
    except FetchError as exc:
        ev.expect(False, str(exc))
    except Exception as exc:  # a checker bug or an answer it could not handle: never a silent pass
        ev.expect(False, f"checker error: {type(exc).__name__}: {exc}")
    if ev.failed:
        status = "fail"
    return CheckResult(item, status, ev.lines, time.monotonic() - started)


async def run_checks(probe: Probe, checks: list[Check] | None = None) -> list[CheckResult]:
    """Run the checks one after the other (they share the probe's cache), in registration order."""
    return [await run_one(probe, item) for item in (CHECKS if checks is None else checks)]


# -- 1. identity ------------------------------------------------------------------------------------------------


@check("ID-3", keyword="MUST", title="DID document served at /.well-known/did.json as application/did+json")
async def check_did_document(probe: Probe, ev: Evidence) -> None:
    response = await probe.get(ev, "/.well-known/did.json", "application/did+json, application/json;q=0.5")
    ev.equal("status", response.status, 200)
    ev.expect(media_type(response) in ("application/did+json", "application/did+ld+json"),
              f"Content-Type {media_type(response)!r} is application/did+json")
    ev.expect(isinstance(probe.parse(ev, response), dict), "body is a JSON object")


@check("ID-1", "ID-2", keyword="MUST", title="DID is did:web of the node's origin")
async def check_did_matches_origin(probe: Probe, ev: Evidence) -> None:
    document = await probe.did_document(ev)
    ev.equal("id", document.get("id"), probe.did)


def _methods(ev: Evidence, document: dict[str, Any]) -> list[dict[str, Any]]:
    methods = ev.array(document.get("verificationMethod"), "verificationMethod")
    ev.require(len(methods) > 0, "verificationMethod is not empty")
    return [ev.object(m, "verification method") for m in methods]


@check("ID-4", keyword="MUST", title="every key is an Ed25519 Multikey (z6Mk…) with id {did}#{key}")
async def check_keys_are_multikeys(probe: Probe, ev: Evidence) -> None:
    for method in _methods(ev, await probe.did_document(ev)):
        key = method.get("publicKeyMultibase")
        ev.equal(f"{method.get('id')}: type", method.get("type"), "Multikey")
        try:
            decode_public_multibase(str(key))
            ev.expect(str(key).startswith("z6Mk"), f"publicKeyMultibase {key} is a base58btc ed25519-pub key")
        except EduFedError as exc:
            ev.expect(False, f"publicKeyMultibase {key!r}: {exc.title}")
        ev.equal("  id", method.get("id"), f"{probe.did}#{key}")
        ev.equal("  controller", method.get("controller"), probe.did)


@check("ID-5", keyword="MUST", title="every key is listed under assertionMethod and authentication")
async def check_keys_listed(probe: Probe, ev: Evidence) -> None:
    document = await probe.did_document(ev)
    for relation in ("assertionMethod", "authentication"):
        listed = document.get(relation)
        refs = {probe.did + ref if isinstance(ref, str) and ref.startswith("#") else ref
                for ref in (listed if isinstance(listed, list) else [])}
        for method in _methods(ev, document):
            ev.expect(method.get("id") in refs, f"{method.get('id')} listed under {relation}")


# -- 2. records and proofs --------------------------------------------------------------------------------------


@check("REC-8", "API-4", keyword="MUST", title="/contexts serves the bundled contexts with their pinned bytes")
async def check_contexts(probe: Probe, ev: Evidence) -> None:
    listing = await probe.get_json(ev, "/contexts")
    ev.require(isinstance(listing, dict), "/contexts is a JSON object (context IRI -> URL)")
    for iri in RECORD_CONTEXT:
        ev.expect(iri in listing, f"lists the record context {iri}")
    pinned = manifest()
    for iri, url in sorted(listing.items()):
        if iri not in pinned:
            ev.note(f"{iri}: not bundled by this checker, not compared")
            continue
        if not ev.expect(isinstance(url, str) and url.startswith(("http://", "https://")), f"{iri}: URL {url!r}"):
            continue
        response = await probe.get(ev, url, f"{JSON_LD}, application/json;q=0.9")
        if not ev.equal(f"{iri}: status", response.status, 200):
            continue
        expected = hashlib.sha256(context_bytes(iri)).hexdigest()
        ev.equal(f"{iri}: sha256", hashlib.sha256(response.body).hexdigest(), expected)


@check("REC-1", keyword="MUST", title="records use exactly the EduFed and Data Integrity contexts")
async def check_record_context(probe: Probe, ev: Evidence) -> None:
    for document in await probe.sample(ev):
        ev.equal(f"{document.get('id')}: @context", document.get("@context"), RECORD_CONTEXT)


@check("REC-2", keyword="MUST", title="record ids are {base}/records/{local-id}")
async def check_record_ids(probe: Probe, ev: Evidence) -> None:
    for document in await probe.sample(ev):
        iri = str(document.get("id"))
        ev.expect(probe.local_path(iri) is not None, f"{iri} is {probe.base}/records/<local-id>")


@check("REC-3", "REC-7", keyword="MUST", title="record types are record types; a withdrawn record is a Tombstone")
async def check_record_types(probe: Probe, ev: Evidence) -> None:
    listed = {item["id"]: item for item in await probe.listing(ev)}
    for document in await probe.sample(ev):
        iri, kind = document.get("id"), document.get("type")
        item = listed.get(iri, {})
        if item.get("deleted"):
            ev.equal(f"{iri}: type (withdrawn)", kind, "Tombstone")
            ev.expect(document.get("formerType") in RECORD_TYPES, f"  formerType {document.get('formerType')!r}")
            ev.expect(isinstance(document.get("deleted"), str) and bool(UTC_DATE_TIME.fullmatch(document["deleted"])),
                      f"  deleted {document.get('deleted')!r} is a UTC dateTime")
        else:
            ev.expect(kind in RECORD_TYPES, f"{iri}: type {kind!r} is a record type")
        ev.equal("  type in the record list", item.get("type"), kind)


@check("REC-4", keyword="MUST", title="records carry an integer version and a UTC dateModified")
async def check_record_versions(probe: Probe, ev: Evidence) -> None:
    listed = {item["id"]: item for item in await probe.listing(ev)}
    for document in await probe.sample(ev):
        iri, version, modified = document.get("id"), document.get("version"), document.get("dateModified")
        ev.expect(isinstance(version, int) and not isinstance(version, bool) and version >= 1,
                  f"{iri}: version {version!r} is an integer >= 1")
        ev.expect(isinstance(modified, str) and bool(UTC_DATE_TIME.fullmatch(modified)),
                  f"  dateModified {modified!r} is a UTC dateTime (Z)")
        ev.equal("  version in the record list", listed.get(str(iri), {}).get("version"), version)
        if document.get("type") == "Tombstone":
            ev.expect(isinstance(version, int) and version >= 2, "  a Tombstone's version follows the record's")


@check("PRF-1", "PRF-4", keyword="MUST", title="record proofs are eddsa-rdfc-2022 and verify with the node DID")
async def check_record_proofs(probe: Probe, ev: Evidence) -> None:
    for document in await probe.sample(ev):
        proof = document.get("proof")
        if not isinstance(proof, dict):
            ev.expect(False, f"{document.get('id')}: has one proof, got {type(proof).__name__}")
            continue
        ev.equal("  proof type / cryptosuite / purpose",
                 (proof.get("type"), proof.get("cryptosuite"), proof.get("proofPurpose")),
                 ("DataIntegrityProof", "eddsa-rdfc-2022", "assertionMethod"))
        await probe.verify_proof(ev, document)


@check("API-3", keyword="MUST", title="/api/records?iri= and /records/{id} serve the record exactly as signed")
async def check_record_by_iri(probe: Probe, ev: Evidence) -> None:
    for document in await probe.sample(ev):  # a withdrawn record's /records/{id} is API-2's
        iri = str(document["id"])
        path = probe.local_path(iri)
        if document.get("type") == "Tombstone" or not ev.expect(path is not None, f"{iri} is a record IRI"):
            continue
        response = await probe.get(ev, str(path), JSON_LD)
        ev.equal("  status", response.status, 200)
        ev.equal("  Content-Type", media_type(response), JSON_LD)
        ev.expect(probe.parse(ev, response) == document, "  /records/{id} body equals /api/records?iri= body")


@check("API-1", keyword="MUST", title="/records/{id} negotiates JSON-LD with ETag and Vary; 406 otherwise")
async def check_record_negotiation(probe: Probe, ev: Evidence) -> None:
    live = [d for d in await probe.sample(ev) if d.get("type") != "Tombstone"][:3]
    if not live:
        ev.not_applicable("no live record to fetch")
    for document in live:
        path = str(probe.local_path(str(document["id"])))
        for accept in ("*/*", "application/json", JSON_LD):
            response = await probe.get(ev, path, accept)
            ev.equal(f"  {accept}: Content-Type", media_type(response), JSON_LD)
        response = await probe.get(ev, path, JSON_LD)
        ev.equal("  ETag", response.headers.get("ETag"), f'"v{document.get("version")}"')
        ev.expect("accept" in response.headers.get("Vary", "").lower(),
                  f"  Vary {response.headers.get('Vary')!r} names Accept")
        refused = await probe.get(ev, path, "image/png")
        ev.equal("  Accept: image/png status", refused.status, 406)


def _normalized(graph: Graph) -> Graph:
    """The graph with literals normalized as rdflib's parsers normalize them (``…Z`` reads as ``…+00:00``)."""
    result = Graph()
    for s, p, o in graph:
        if isinstance(o, RdfLiteral):
            o = RdfLiteral(str(o), lang=o.language, datatype=o.datatype)
        result.add((s, p, o))
    return result


@check("REC-9", keyword="MUST", title="Turtle, N-Triples and N-Quads of a record parse to its RDF")
async def check_record_rdf(probe: Probe, ev: Evidence) -> None:
    live = [d for d in await probe.sample(ev) if d.get("type") != "Tombstone"][:3]
    if not live:
        ev.not_applicable("no live record to fetch")
    for document in live:
        iri = str(document["id"])
        path = str(probe.local_path(iri))
        try:
            expected = _normalized(await asyncio.to_thread(to_graph, document))
        except EduFedError as exc:
            ev.expect(False, f"{iri}: the JSON-LD does not expand with the bundled contexts ({exc.title})")
            continue
        for accept, fmt in (("text/turtle", "turtle"), ("application/n-triples", "nt")):
            response = await probe.get(ev, path, accept)
            if not ev.equal(f"  {accept}: Content-Type", media_type(response), accept):
                continue
            try:
                graph = Graph().parse(data=response.body.decode("utf-8"), format=fmt)
            except Exception as exc:
                ev.expect(False, f"  {accept}: does not parse ({type(exc).__name__}: {exc})")
                continue
            ev.expect(isomorphic(graph, expected),
                      f"  {accept}: {len(graph)} triples, the record's default graph has {len(expected)}")
        response = await probe.get(ev, path, "application/n-quads")
        if ev.equal("  application/n-quads: Content-Type", media_type(response), "application/n-quads"):
            try:
                with warnings.catch_warnings():  # rdflib's N-Quads parser uses its own deprecated API
                    warnings.simplefilter("ignore", DeprecationWarning)
                    dataset = Dataset().parse(data=response.body.decode("utf-8"), format="nquads")
                named = [g for g in dataset.graphs() if g.identifier != dataset.default_graph.identifier and len(g)]
                ev.expect(len(named) >= 1, f"  application/n-quads: {len(named)} named graph(s), the proof graph")
            except Exception as exc:
                ev.expect(False, f"  application/n-quads: does not parse ({type(exc).__name__}: {exc})")


@check("API-2", keyword="MUST", title="a withdrawn record answers 410 Gone with its signed Tombstone")
async def check_withdrawn_record(probe: Probe, ev: Evidence) -> None:
    withdrawn = [item for item in await probe.listing(ev) if item["deleted"]]
    if not withdrawn:
        ev.not_applicable("the node lists no withdrawn record")
    iri = withdrawn[0]["id"]
    path = probe.local_path(iri)
    ev.require(path is not None, f"{iri} is a record IRI of the node")
    response = await probe.get(ev, str(path), JSON_LD)
    ev.equal("status", response.status, 410)
    body = probe.parse(ev, response)
    ev.require(isinstance(body, dict), "body is a JSON object")
    ev.equal("type", body.get("type"), "Tombstone")
    ev.equal("id", body.get("id"), iri)
    await probe.verify_proof(ev, body)


@check("ERR-1", keyword="MUST", title="errors are RFC 9457 problem documents (application/problem+json)")
async def check_problem_documents(probe: Probe, ev: Evidence) -> None:
    missing = f"{probe.base}/records/conformance-missing-{uuid.uuid4().hex[:12]}"
    probe.check_problem(ev, await probe.get(ev, str(probe.local_path(missing)), JSON_LD), 404, "unknown record")
    by_iri = "/api/records?" + urlencode({"iri": missing})
    probe.check_problem(ev, await probe.get(ev, by_iri, JSON_LD), 404, "unknown IRI")
    probe.check_problem(ev, await probe.get(ev, "/outbox?limit=many", ACTIVITY_JSON), 400, "bad outbox limit")


@check("ERR-1", keyword="SHOULD", title="a problem names the offending input in field")
async def check_problem_field(probe: Probe, ev: Evidence) -> None:
    for path, expected in (("/outbox?after=-1", "after"), ("/.well-known/webfinger", "resource")):
        response = await probe.get(ev, path, "application/json")
        problem = probe.check_problem(ev, response, 400, path)
        ev.equal(f"{path}: field", (problem or {}).get("field"), expected)


@check("API-5", "ERR-2", keyword="MUST", title="a publish without the admin token gets 401 and changes nothing")
async def check_write_needs_token(probe: Probe, ev: Evidence) -> None:
    iri = f"{probe.base}/records/conformance-{uuid.uuid4().hex[:12]}"
    body = {"@context": EDUFED_CONTEXT, "id": iri, "type": "Course", "name": {"en": "Conformance probe"}}
    response = await probe.post(ev, "/api/records", json.dumps(body).encode(), "application/ld+json")
    problem = probe.check_problem(ev, response, 401, "publish without token")
    ev.equal("field", (problem or {}).get("field"), "Authorization")
    lookup = await probe.client.request("GET", probe.url("/api/records?" + urlencode({"iri": iri})),
                                        headers={"Accept": JSON_LD})
    ev.equal(f"GET /api/records?iri={iri} afterwards: status (nothing stored)", lookup.status, 404)


# -- 5. discovery -----------------------------------------------------------------------------------------------


@check("DISC-1", keyword="MUST", title="/.well-known/nodeinfo links to NodeInfo 2.1", cls="federating")
async def check_nodeinfo_links(probe: Probe, ev: Evidence) -> None:
    links = await probe.get_json(ev, "/.well-known/nodeinfo")
    entries = ev.array(ev.object(links, "nodeinfo links").get("links"), "links")
    hrefs = [e.get("href") for e in entries if isinstance(e, dict) and e.get("rel") == NODEINFO_REL]
    ev.equal("href of rel schema/2.1", hrefs, [f"{probe.base}/nodeinfo/2.1"])


@check("DISC-2", keyword="MUST", title="NodeInfo 2.1 states metadata.edufed (protocol 1.0, DID, actor, counts)",
       cls="federating")
async def check_nodeinfo(probe: Probe, ev: Evidence) -> None:
    response = await probe.get(ev, "/nodeinfo/2.1", "application/json")
    ev.require(response.status == 200, f"status {response.status}, expected 200")
    ev.equal("Content-Type", media_type(response), "application/json")
    info = probe.parse(ev, response)
    ev.require(isinstance(info, dict), "NodeInfo is a JSON object")
    ev.equal("version", info.get("version"), "2.1")
    edufed = ev.object(ev.object(info.get("metadata"), "metadata").get("edufed"), "metadata.edufed")
    ev.equal("protocolVersion", edufed.get("protocolVersion"), "1.0")
    ev.equal("did", edufed.get("did"), probe.did)
    ev.equal("actor", edufed.get("actor"), probe.actor)
    for name in ("country", "city"):
        ev.expect(edufed.get(name) is None or isinstance(edufed.get(name), str), f"{name} {edufed.get(name)!r}")
    languages = edufed.get("languages")
    ev.expect(isinstance(languages, list) and all(isinstance(t, str) for t in languages), f"languages {languages!r}")
    counts = edufed.get("records")
    records: dict[str, Any] = counts if isinstance(counts, dict) else {}
    ev.expect(all(isinstance(records.get(k), int) for k in ("own", "mirrored")), f"records {records!r}")
    ev.expect(isinstance(edufed.get("peers"), int), f"peers {edufed.get('peers')!r}")
    live = sum(1 for item in await probe.listing(ev) if not item["deleted"])
    ev.equal("records.own against the live records listed", records.get("own"), live)
    ev.equal("usage.localPosts", (info.get("usage") or {}).get("localPosts"), records.get("own"))
    ev.equal("usage.users.total", ((info.get("usage") or {}).get("users") or {}).get("total"), 0)
    ev.equal("openRegistrations", info.get("openRegistrations"), False)
    ev.equal("protocols", info.get("protocols"), ["activitypub"])


@check("DISC-3", keyword="MUST", title="WebFinger answers acct:node@host, the actor and the base URL",
       cls="federating")
async def check_webfinger(probe: Probe, ev: Evidence) -> None:
    subject = f"acct:node@{probe.host}"
    for resource in (subject, probe.actor, probe.base):
        response = await probe.get(ev, "/.well-known/webfinger?" + urlencode({"resource": resource}),
                                   "application/jrd+json")
        if not ev.equal(f"{resource}: status", response.status, 200):
            continue
        ev.equal("  Content-Type", media_type(response), "application/jrd+json")
        jrd = ev.object(probe.parse(ev, response), "JRD")
        ev.equal("  subject", jrd.get("subject"), subject)
        links = ev.array(jrd.get("links"), "links")
        selves = [(link.get("type"), link.get("href")) for link in links
                  if isinstance(link, dict) and link.get("rel") == "self"]
        ev.equal("  self link", selves, [(ACTIVITY_JSON, probe.actor)])
    unknown = await probe.get(ev, "/.well-known/webfinger?" + urlencode({"resource": f"acct:nobody@{probe.host}"}))
    ev.equal("unknown resource: status", unknown.status, 404)


@check("DISC-4", keyword="MUST", title="the node actor is a Service with the fixed members", cls="federating")
async def check_actor(probe: Probe, ev: Evidence) -> None:
    response = await probe.get(ev, "/actor", ACTIVITY_JSON)
    ev.require(response.status == 200, f"status {response.status}, expected 200")
    ev.equal("Content-Type", media_type(response), ACTIVITY_JSON)
    actor = probe.parse(ev, response)
    ev.require(isinstance(actor, dict), "actor is a JSON object")
    context = actor.get("@context") if isinstance(actor.get("@context"), list) else []
    ev.expect(context[:2] == [AS_CONTEXT, "https://w3id.org/security/v1"],
              f"@context {context[:2]!r} starts with ActivityStreams and security/v1")
    ev.equal("type", actor.get("type"), "Service")
    ev.equal("preferredUsername", actor.get("preferredUsername"), "node")
    for name in ("followers", "following"):
        ev.equal(name, actor.get(name), f"{probe.base}/{name}")
    ev.equal("endpoints.sharedInbox", (actor.get("endpoints") or {}).get("sharedInbox"), f"{probe.base}/inbox")
    key = actor.get("publicKey") if isinstance(actor.get("publicKey"), dict) else {}
    ev.equal("publicKey.id", key.get("id"), f"{probe.actor}#main-key")
    ev.equal("publicKey.owner", key.get("owner"), probe.actor)
    ev.expect(str(key.get("publicKeyPem", "")).startswith("-----BEGIN PUBLIC KEY-----"), "publicKeyPem is a PEM key")


@check("DISC-5", "DISC-6", keyword="MUST", title="actor id, inbox and outbox are on the node's origin",
       cls="federating")
async def check_actor_origin(probe: Probe, ev: Evidence) -> None:
    actor = await probe.get_json(ev, "/actor", ACTIVITY_JSON)
    ev.require(isinstance(actor, dict), "actor is a JSON object")
    ev.equal("id", actor.get("id"), probe.actor)
    ev.equal("inbox", actor.get("inbox"), f"{probe.base}/inbox")
    ev.equal("outbox", actor.get("outbox"), f"{probe.base}/outbox")


@check("DISC-8", keyword="MUST", title="/federation/peers lists peers with url, name, actor, sorted by url",
       cls="federating")
async def check_peers(probe: Probe, ev: Evidence) -> None:
    body = await probe.get_json(ev, "/federation/peers")
    peers = ev.array(ev.object(body, "peers document").get("peers"), "peers")
    ev.expect(all(isinstance(p, dict) and {"url", "name", "actor"} <= p.keys() for p in peers),
              f"{len(peers)} peer(s), each with url, name and actor")
    urls = [p.get("url") for p in peers if isinstance(p, dict)]
    ev.expect(urls == sorted(urls, key=str), "sorted by url")


# -- 6. the change feed -----------------------------------------------------------------------------------------


async def _outbox_pages(probe: Probe, ev: Evidence) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """The outbox collection and its pages (``limit`` 2), following ``next`` on the node's origin."""
    collection = await probe.get_json(ev, "/outbox", ACTIVITY_JSON)
    ev.require(isinstance(collection, dict), "outbox is a JSON object")
    pages: list[tuple[int, dict[str, Any]]] = []
    after: int | None = 0
    url: str | None = f"{probe.base}/outbox?after=0&limit={OUTBOX_PAGE}"
    while url is not None and after is not None and len(pages) < MAX_PAGES:
        page = await probe.get_json(ev, url, ACTIVITY_JSON)
        ev.require(isinstance(page, dict) and isinstance(page.get("orderedItems"), list),
                   f"{url}: a page with orderedItems")
        pages.append((after, page))
        following = page.get("next")
        match = re.fullmatch(re.escape(f"{probe.base}/outbox?after=") + r"(\d+)&limit=\d+", str(following))
        after, url = (int(match.group(1)), str(following)) if match else (None, None)
    return collection, pages


def _sequence(probe: Probe, item: Any) -> int | None:
    match = re.fullmatch(re.escape(f"{probe.base}/outbox/") + r"([1-9]\d*)", str(item.get("id"))) \
        if isinstance(item, dict) else None
    return int(match.group(1)) if match else None


@check("FEED-3", keyword="MUST", title="the outbox pages with after/limit and next", cls="federating")
async def check_outbox_paging(probe: Probe, ev: Evidence) -> None:
    collection, pages = await _outbox_pages(probe, ev)
    ev.equal("collection type", collection.get("type"), "OrderedCollection")
    ev.expect(isinstance(collection.get("totalItems"), int), f"totalItems {collection.get('totalItems')!r}")
    ev.equal("first", collection.get("first"), f"{probe.base}/outbox?after=0&limit=100")
    for after, page in pages:
        items = page["orderedItems"]
        ev.equal(f"page after={after}: id", page.get("id"), f"{probe.base}/outbox?after={after}&limit={OUTBOX_PAGE}")
        ev.equal("  type", page.get("type"), "OrderedCollectionPage")
        ev.equal("  partOf", page.get("partOf"), f"{probe.base}/outbox")
        ev.expect(len(items) <= OUTBOX_PAGE, f"  {len(items)} items, limit {OUTBOX_PAGE}")
        sequences = [_sequence(probe, item) for item in items]
        ev.expect(all(s is not None and s > after for s in sequences), f"  sequence numbers {sequences} > {after}")
        if len(items) == OUTBOX_PAGE and sequences[-1] is not None:
            ev.equal("  next (a full page)", page.get("next"),
                     f"{probe.base}/outbox?after={sequences[-1]}&limit={OUTBOX_PAGE}")
    ev.note(f"{len(pages)} page(s) read")
    refused = await probe.get(ev, "/outbox?limit=many", ACTIVITY_JSON)
    ev.equal("limit=many: status", refused.status, 400)


@check("FEED-1", "FEED-4", keyword="MUST", title="activity ids are {base}/outbox/{seq}, strictly increasing",
       cls="federating")
async def check_outbox_sequence(probe: Probe, ev: Evidence) -> None:
    collection, pages = await _outbox_pages(probe, ev)
    items = [item for _, page in pages for item in page["orderedItems"]]
    if not items:
        ev.not_applicable("the outbox is empty")
    sequences = [_sequence(probe, item) for item in items]
    ev.expect(None not in sequences, f"every id is {probe.base}/outbox/<seq>: "
                                     f"{[i.get('id') if isinstance(i, dict) else i for i in items][:8]}")
    numbers = [s for s in sequences if s is not None]
    ev.expect(all(a < b for a, b in itertools.pairwise(numbers)), f"strictly increasing: {numbers}")
    total = collection.get("totalItems")
    ev.expect(isinstance(total, int) and all(n <= total for n in numbers), f"none above totalItems {total}")
    if numbers:
        single = await probe.get_json(ev, f"/outbox/{numbers[0]}", ACTIVITY_JSON)
        ev.equal(f"/outbox/{numbers[0]}: id", single.get("id") if isinstance(single, dict) else None,
                 f"{probe.base}/outbox/{numbers[0]}")


@check("FEED-2", "PUSH-6", keyword="MUST", title="outbox activities carry only the node's own records",
       cls="federating")
async def check_outbox_items(probe: Probe, ev: Evidence) -> None:
    _, pages = await _outbox_pages(probe, ev)
    items = [item for _, page in pages for item in page["orderedItems"]]
    if not items:
        ev.not_applicable("the outbox is empty")
    for item in items:
        if not ev.expect(isinstance(item, dict), "activity is an object"):
            continue
        obj = item.get("object") if isinstance(item.get("object"), dict) else {}
        ev.expect(item.get("type") in ("Create", "Update", "Delete") and item.get("@context") == AS_CONTEXT
                  and item.get("actor") == probe.actor,
                  f"{item.get('id')}: {item.get('type')} by {item.get('actor')}, @context {item.get('@context')!r}")
        ev.expect(urlsplit(str(obj.get("id"))).netloc == probe.host, f"  object {obj.get('id')} is of this origin")


# -- 7. sync and the inbox --------------------------------------------------------------------------------------


@check("SYNC-6", keyword="MUST", title="the digest matches the live records of /api/records?origin=",
       cls="federating")
async def check_digest(probe: Probe, ev: Evidence) -> None:
    digest = await probe.get_json(ev, "/federation/digest")
    ev.require(isinstance(digest, dict), "digest is a JSON object")
    live = sorted((item["id"], item.get("version")) for item in await probe.listing(ev) if not item["deleted"])
    lines = "".join(f"{iri}\t{version}\n" for iri, version in live)
    ev.equal("count", digest.get("count"), len(live))
    ev.equal("sha256", digest.get("sha256"), hashlib.sha256(lines.encode("utf-8")).hexdigest())


@check("INBOX-1", "INBOX-2", keyword="MUST", title="the inbox refuses an unsigned POST with a 401 problem",
       cls="federating")
async def check_inbox_unsigned(probe: Probe, ev: Evidence) -> None:
    stranger = "https://conformance-checker.invalid"
    activity = {"@context": AS_CONTEXT, "id": f"{stranger}/activities/{uuid.uuid4()}", "type": "Follow",
                "actor": f"{stranger}/actor", "object": probe.actor}
    response = await probe.post(ev, "/inbox", json.dumps(activity).encode(), ACTIVITY_JSON)
    problem = probe.check_problem(ev, response, 401, "unsigned Follow")
    ev.equal("field", (problem or {}).get("field"), "Signature")
    codes = {f"{PROBLEM_BASE}{code}" for code in ("missing-signature", "invalid-signature")}
    ev.expect((problem or {}).get("type") in codes, f"type {(problem or {}).get('type')!r} is a signature problem")


# -- 9, 10. status lists and credit systems ---------------------------------------------------------------------


@check("STATUS-1", "STATUS-3", "STATUS-5", keyword="MUST", cls="credentials",
       title="status list credentials are signed VC 2.0 lists of at least 131,072 entries")
async def check_status_lists(probe: Probe, ev: Evidence) -> None:
    found = 0
    for purpose in ("revocation", "suspension"):
        url = f"{probe.base}/credentials/status/1-{purpose}"
        response = await probe.get(ev, url, JSON_LD)
        if response.status == 404:
            continue
        found += 1
        ev.require(response.status == 200, f"status {response.status}, expected 200 or 404")
        ev.equal("  Content-Type", media_type(response), JSON_LD)
        credential = probe.parse(ev, response)
        ev.require(isinstance(credential, dict), "  a JSON object")
        ev.equal("  @context", credential.get("@context"), [VC2_CONTEXT])
        ev.equal("  id", credential.get("id"), url)
        ev.equal("  type", credential.get("type"), ["VerifiableCredential", "BitstringStatusListCredential"])
        ev.equal("  issuer", credential.get("issuer"), probe.did)
        subject = credential.get("credentialSubject") if isinstance(credential.get("credentialSubject"), dict) else {}
        ev.equal("  credentialSubject", (subject.get("id"), subject.get("type"), subject.get("statusPurpose")),
                 (f"{url}#list", "BitstringStatusList", purpose))
        try:
            bits = decode_bitstring(subject.get("encodedList"))  # type: ignore[arg-type]
            ev.expect(bits.size >= MIN_ENTRIES, f"  encodedList holds {bits.size} entries")
        except EduFedError as exc:
            ev.expect(False, f"  encodedList: {exc.title} {exc.detail or ''}")
        await probe.verify_proof(ev, credential)
    if not found:
        ev.not_applicable("no status list at /credentials/status/1-revocation (the node has issued nothing)")


@check("CRED-CONV-1", "CRED-CONV-2", keyword="MUST", cls="credentials",
       title="/credits/systems lists systems and rules with their sources")
async def check_credit_systems(probe: Probe, ev: Evidence) -> None:
    response = await probe.get(ev, "/credits/systems")
    if response.status == 404:
        ev.not_applicable("the node has no credit bank (/credits/systems answers 404)")
    ev.require(response.status == 200, f"status {response.status}, expected 200")
    body = probe.parse(ev, response)
    ev.require(isinstance(body, dict) and isinstance(body.get("systems"), list) and isinstance(body.get("rules"), list),
               "an object with systems and rules arrays")
    systems = {s.get("id") for s in body["systems"] if isinstance(s, dict)}
    for system in body["systems"]:
        ok = (isinstance(system, dict) and str(system.get("id")).startswith(("http://", "https://"))
              and bool(re.fullmatch(r"[A-Z0-9-]+", str(system.get("notation")))) and bool(system.get("name")))
        ev.expect(ok, f"system {system.get('id') if isinstance(system, dict) else system}: IRI, notation, name")
    for rule in body["rules"]:
        if not ev.expect(isinstance(rule, dict), "rule is an object"):
            continue
        problems = []
        if rule.get("from") not in systems or rule.get("to") not in systems or rule.get("from") == rule.get("to"):
            problems.append(f"from/to {rule.get('from')} -> {rule.get('to')}")
        try:
            if not Decimal(str(rule.get("factor"))) > 0:
                problems.append(f"factor {rule.get('factor')!r}")
        except InvalidOperation:
            problems.append(f"factor {rule.get('factor')!r}")
        if rule.get("roundingMode") not in ROUNDING_MODES:
            problems.append(f"roundingMode {rule.get('roundingMode')!r}")
        places = rule.get("decimalPlaces")
        if not isinstance(places, int) or not 0 <= places <= 6:
            problems.append(f"decimalPlaces {places!r}")
        if str(rule.get("basis")).rsplit("#", 1)[-1] not in BASES:
            problems.append(f"basis {rule.get('basis')!r}")
        if not isinstance(rule.get("bibliographicCitation"), str) or not rule["bibliographicCitation"].strip():
            problems.append("no bibliographicCitation")
        source = rule.get("source")
        if source is not None and not str(source).startswith(("http://", "https://")):
            problems.append(f"source {source!r}")
        ev.expect(not problems, f"rule {rule.get('id')}: " + ("; ".join(problems) or
                                                            f"factor {rule.get('factor')}, source {source}"))
