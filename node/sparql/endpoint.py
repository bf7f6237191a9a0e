"""SPARQL over the federated catalog: an Oxigraph index kept in step with the Record table, and guarded queries.

Why Oxigraph (``pyoxigraph``) and not rdflib: it evaluates SPARQL 1.1 in Rust, 12 to 40 times faster than
rdflib's Python evaluator on the same data (``bench/bench_sparql.py``), and lets several queries read one
snapshot while the index is being updated. The database stays the store of truth; the index is in memory,
built from it at start and brought up to date before every query (see :class:`CatalogIndex`).

Why rdflib is still here: Oxigraph exposes no parse tree and no query timeout, so rdflib's SPARQL parser
checks each query first (update refused, SERVICE refused, triple patterns counted, unbounded paths refused;
results cached per query text), and the time limit is a deadline checked between rows in a worker thread.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

import pyoxigraph as ox
from pyparsing import ParseException
from rdflib.paths import MulPath, Path
from rdflib.plugins.sparql.algebra import translateQuery
from rdflib.plugins.sparql.parser import parseQuery, parseUpdate
from rdflib.plugins.sparql.parserutils import CompValue

from node.errors import EduFedError
from node.ld.canon import RDF_LANGSTRING, XSD_STRING, to_rdf
from node.ld.rdf import PREFIXES
from node.store.models import Activity, Record
from node.store.records import Store

log = logging.getLogger("edufed.sparql")

RESULTS_JSON = "application/sparql-results+json"
RESULTS_XML = "application/sparql-results+xml"
CSV = "text/csv"
TSV = "text/tab-separated-values"
TURTLE = "text/turtle"
N_TRIPLES = "application/n-triples"
# Ties go to the last entry: the default (JSON results, Turtle) stays last.
SELECT_TYPES = [TSV, CSV, RESULTS_XML, "application/json", RESULTS_JSON]
ASK_TYPES = [RESULTS_XML, "application/json", RESULTS_JSON]
GRAPH_TYPES = [N_TRIPLES, TURTLE]
SYNC_PAGE = 2000
FULL_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Limits:
    """What one query may cost: refused up front (length, patterns, paths) or cut off (rows, time)."""

    max_query_chars: int = 10_000
    max_triple_patterns: int = 24
    max_rows: int = 10_000
    timeout_seconds: float = 5.0
    workers: int = 2


class SparqlError(Exception):
    """A query the endpoint will not answer: the SPARQL protocol's own error, a text/plain message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def refused(message: str) -> SparqlError:
    return SparqlError(400, message)


# ---------------------------------------------------------------- query analysis


@dataclass(frozen=True)
class Analysis:
    """What the endpoint needs to know of a query before running it."""

    form: str  # SELECT | ASK | CONSTRUCT | DESCRIBE
    triple_patterns: int


_FORMS = {"SelectQuery": "SELECT", "AskQuery": "ASK", "ConstructQuery": "CONSTRUCT", "DescribeQuery": "DESCRIBE"}


def _walk(node: Any, found: Callable[[CompValue], None], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, CompValue):
        found(node)
        for value in node.values():
            _walk(value, found, seen)
    elif isinstance(node, list | tuple):
        for value in node:
            _walk(value, found, seen)


def _unbounded(path: Any) -> bool:
    if isinstance(path, MulPath):
        return path.mod in ("*", "+") or _unbounded(path.path)
    if isinstance(path, Path):
        parts = [*getattr(path, "args", ()), getattr(path, "arg", None), getattr(path, "path", None)]
        return any(_unbounded(p) for p in parts if p is not None)
    return False


@lru_cache(maxsize=512)
def analyse(query: str, max_triple_patterns: int) -> Analysis:
    """Parse ``query`` and refuse what this endpoint does not run; cached per query text."""
    try:
        parsed = parseQuery(query)
    except ParseException as error:
        try:
            parseUpdate(query)
        except ParseException:
            raise refused(f"Malformed query: {error.msg} at line {error.lineno}, column {error.col}") from None
        raise refused("SPARQL Update is not allowed: this endpoint is read-only") from None
    except Exception as error:  # rdflib raises plain exceptions for some bad input (unknown prefix, ...)
        raise refused(f"Malformed query: {error}") from None
    try:
        algebra = translateQuery(parsed).algebra
    except Exception as error:
        raise refused(f"Malformed query: {error}") from None
    patterns = 0
    problems: list[str] = []

    def found(node: CompValue) -> None:
        nonlocal patterns
        if node.name == "ServiceGraphPattern":
            problems.append("SERVICE is not allowed: this endpoint never queries other endpoints")
        if node.name == "BGP":
            patterns += len(node.triples)
            if any(_unbounded(p) for _, p, _ in node.triples):
                problems.append("Unbounded property paths (* and +) are not allowed")
        for key in ("path",):
            if key in node and _unbounded(node[key]):
                problems.append("Unbounded property paths (* and +) are not allowed")

    _walk(algebra, found, set())
    if problems:
        raise refused(problems[0])
    if patterns > max_triple_patterns:
        raise refused(f"Query too complex: {patterns} triple patterns, the limit is {max_triple_patterns}")
    return Analysis(form=_FORMS.get(algebra.name, "SELECT"), triple_patterns=patterns)


# ---------------------------------------------------------------- records as quads


def origin_graph(iri: str) -> str:
    """The named graph of a record: ``{scheme}://{host[:port]}/`` of its origin node."""
    parts = urlsplit(iri)
    return f"{parts.scheme}://{parts.netloc}/"


def _term(term: dict[str, Any], blank: str) -> ox.NamedNode | ox.BlankNode | ox.Literal:
    kind = term["type"]
    if kind == "IRI":
        return ox.NamedNode(term["value"])
    if kind == "blank node":
        return ox.BlankNode(blank + term["value"][2:])
    datatype = term["datatype"]
    if datatype == RDF_LANGSTRING:
        return ox.Literal(term["value"], language=term["language"])
    if datatype == XSD_STRING:
        return ox.Literal(term["value"])
    return ox.Literal(term["value"], datatype=ox.NamedNode(datatype))


def record_quads(record_id: int, version: int, iri: str, document_json: str) -> list[ox.Quad]:
    """The record's default graph without its proof, in its origin's graph; blank nodes made unique per record."""
    document = json.loads(document_json)
    document.pop("proof", None)
    graph = ox.NamedNode(origin_graph(iri))
    blank = f"r{record_id}v{version}"
    return [
        ox.Quad(_term(t["subject"], blank), _term(t["predicate"], blank), _term(t["object"], blank), graph)  # type: ignore[arg-type]
        for t in to_rdf(document).get("@default", [])
    ]


@dataclass
class _Held:
    """A live record in the index: enough to take its quads out again without its old document."""

    iri: str
    graph: ox.NamedNode
    blanks: tuple[ox.BlankNode, ...]
    foreign: tuple[ox.Quad, ...]  # quads about other IRIs (embedded nodes): possibly shared, so counted


@dataclass
class _Row:
    id: int
    iri: str
    version: int
    deleted: bool
    document: str


@dataclass
class SyncStats:
    added: int = 0
    removed: int = 0
    full_scans: int = 0
    seconds: float = 0.0


class CatalogIndex:
    """An in-memory Oxigraph dataset of every live record (own and mirrored), one named graph per origin.

    Kept in step without rebuilding: a fingerprint of the Record table (row count, highest id, sum of versions,
    Tombstones) is read before each query (one aggregate query). New rows are found by id; updates, deletions
    and purges (which change the fingerprint without adding rows) trigger a scan of (id, version, deleted) and
    only the changed records are converted again. This holds for several workers on one database, whichever
    worker wrote the change. A restart rebuilds the index from the database (measured in bench/README.md).
    """

    def __init__(self) -> None:
        self.oxigraph = ox.Store()
        self._versions: dict[int, tuple[int, bool]] = {}  # every row: id -> (version, deleted)
        self._held: dict[int, _Held] = {}
        self._by_iri: dict[str, int] = {}
        self._shared: Counter[ox.Quad] = Counter()
        self._max_id = 0
        self._quick: tuple[int, int, int] | None = None
        self._seq = 0
        self._version_sum = 0
        self._deleted_count = 0
        self._full_checked = time.monotonic()
        self.full_task: asyncio.Task[SyncStats] | None = None
        self._lock = asyncio.Lock()
        self.stats = SyncStats()

    def __len__(self) -> int:
        return len(self._held)

    async def sync(self, store: Store) -> SyncStats:
        """Bring the index up to the database (one sync at a time; cancellation-safe).

        Always seen at once: new rows (by id), changes of own records (by the outbox sequence), removals (by
        count). Replaced mirrored records are found by the full fingerprint, read in the background at most
        every ``FULL_CHECK_SECONDS`` because it reads every row.
        """
        async with self._lock:
            started = time.perf_counter()
            stats = SyncStats()
            quick = await self._read_quick(store)
            if quick != self._quick:
                await self._apply(store, await self._new_rows(store), stats)
                await self._apply(store, await self._own_changes(store, quick[2]), stats)
                if len(self._versions) != quick[0]:  # rows were removed (purged Tombstones, resync)
                    await self._rescan(store, stats)
                self._quick = quick
            stats.seconds = time.perf_counter() - started
            self.stats = stats
        if time.monotonic() - self._full_checked > FULL_CHECK_SECONDS and (
                self.full_task is None or self.full_task.done()):
            self._full_checked = time.monotonic()
            self.full_task = asyncio.ensure_future(self.full_check(store))
        return stats

    async def full_check(self, store: Store) -> SyncStats:
        """Compare the whole fingerprint (finds replaced mirrored records); rescan only when it differs."""
        stats = SyncStats()
        started = time.perf_counter()
        fingerprint = await self._read_fingerprint(store)  # without the lock: queries go on meanwhile
        if fingerprint != self._own_fingerprint():
            async with self._lock:
                await self._apply(store, await self._new_rows(store), stats)
                if await self._read_fingerprint(store) != self._own_fingerprint():
                    await self._rescan(store, stats)
        self._full_checked = time.monotonic()
        stats.seconds = time.perf_counter() - started
        return stats

    @staticmethod
    async def _read_quick(store: Store) -> tuple[int, int, int]:
        """(rows, highest id, highest outbox sequence): index-only reads."""
        with store.bound():
            db = Record._meta.db
            rows = await db.execute_query_dict("SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS m FROM record")
            feed = await db.execute_query_dict("SELECT COALESCE(MAX(seq), 0) AS s FROM activity")
        return int(rows[0]["n"]), int(rows[0]["m"]), int(feed[0]["s"])

    @staticmethod
    async def _read_fingerprint(store: Store) -> tuple[int, int, int, int]:
        with store.bound():
            rows = await Record._meta.db.execute_query_dict(
                "SELECT COUNT(*) AS n, COALESCE(MAX(id), 0) AS m, COALESCE(SUM(version), 0) AS v, "
                "COALESCE(SUM(CASE WHEN deleted THEN 1 ELSE 0 END), 0) AS d FROM record"
            )
        row = rows[0]
        return int(row["n"]), int(row["m"]), int(row["v"]), int(row["d"])

    def _own_fingerprint(self) -> tuple[int, int, int, int]:
        return len(self._versions), self._max_id, self._version_sum, self._deleted_count

    def _set_state(self, record_id: int, state: tuple[int, bool] | None) -> None:
        """Record (or forget, with None) a row's (version, deleted), keeping the fingerprint sums in step."""
        old = self._versions.pop(record_id, None)
        if old is not None:
            self._version_sum -= old[0]
            self._deleted_count -= old[1]
        if state is not None:
            self._versions[record_id] = state
            self._version_sum += state[0]
            self._deleted_count += state[1]

    async def _own_changes(self, store: Store, head: int) -> list[_Row]:
        """Rows of own records changed since the last outbox sequence seen (whose version the index lacks)."""
        if self._quick is None or head <= self._seq:  # the first sync reads every row anyway
            self._seq = head
            return []
        with store.bound():
            iris = await Activity.filter(seq__gt=self._seq).values_list("object_iri", flat=True)
            unique = list(dict.fromkeys(str(i) for i in iris))
            stale: list[int] = []
            for start in range(0, len(unique), SYNC_PAGE):
                page = await Record.filter(iri__in=unique[start:start + SYNC_PAGE]).values_list(
                    "id", "version", "deleted")
                stale.extend(int(i) for i, v, d in page if self._versions.get(int(i)) != (int(v), bool(d)))
        self._seq = head
        return await self._load(store, stale)

    @staticmethod
    async def _load(store: Store, ids: list[int]) -> list[_Row]:
        rows: list[_Row] = []
        with store.bound():
            for start in range(0, len(ids), SYNC_PAGE):
                page = await Record.filter(id__in=ids[start:start + SYNC_PAGE]).values_list(
                    "id", "iri", "version", "deleted", "document")
                rows.extend(_Row(int(i), str(iri), int(v), bool(d), str(doc)) for i, iri, v, d, doc in page)
        return rows

    async def _new_rows(self, store: Store) -> list[_Row]:
        rows: list[_Row] = []
        with store.bound():
            while True:
                after = rows[-1].id if rows else self._max_id
                page = await Record.filter(id__gt=after).order_by("id").limit(SYNC_PAGE).values_list(
                    "id", "iri", "version", "deleted", "document")
                rows.extend(_Row(int(i), str(iri), int(v), bool(d), str(doc)) for i, iri, v, d, doc in page)
                if len(page) < SYNC_PAGE:
                    return rows

    async def _rescan(self, store: Store, stats: SyncStats) -> None:
        with store.bound():
            _, scanned = await Record._meta.db.execute_query("SELECT id, version, deleted FROM record")
        current = {int(r[0]): (int(r[1]), bool(r[2])) for r in scanned}
        reload: set[int] = set()
        for gone in [i for i in self._versions if i not in current]:
            reload |= self._remove(gone, stats)
            self._set_state(gone, None)
        changed = [i for i, state in current.items() if self._versions.get(i) != state or i in reload]
        await self._apply(store, await self._load(store, changed), stats)

    async def _apply(self, store: Store, rows: list[_Row], stats: SyncStats) -> None:
        for start in range(0, len(rows), SYNC_PAGE):
            batch = rows[start:start + SYNC_PAGE]
            converted = await asyncio.to_thread(self._convert, batch)
            # No await from here on: a cancelled sync leaves the index consistent with its bookkeeping.
            reload: set[int] = set()
            for row, quads in zip(batch, converted, strict=True):
                reload |= self._remove(row.id, stats)
                self._set_state(row.id, (row.version, row.deleted))
                self._max_id = max(self._max_id, row.id)
                if quads is not None:
                    self._add(row, quads, stats)
            reload -= {row.id for row in batch}
            if reload:
                with store.bound():
                    page = await Record.filter(id__in=list(reload)).values_list(
                        "id", "iri", "version", "deleted", "document")
                again = [_Row(int(i), str(iri), int(v), bool(d), str(doc)) for i, iri, v, d, doc in page]
                for row, quads in zip(again, self._convert(again), strict=True):
                    self._remove(row.id, stats)
                    if quads is not None:
                        self._add(row, quads, stats)

    @staticmethod
    def _convert(rows: Sequence[_Row]) -> list[list[ox.Quad] | None]:
        out: list[list[ox.Quad] | None] = []
        for row in rows:
            if row.deleted:
                out.append(None)
                continue
            try:
                out.append(record_quads(row.id, row.version, row.iri, row.document))
            except (EduFedError, ValueError) as error:  # a stored record that is no valid RDF: leave it out
                log.warning("record %s left out of the SPARQL index: %s", row.iri, error)
                out.append(None)
        return out

    def _add(self, row: _Row, quads: list[ox.Quad], stats: SyncStats) -> None:
        subject = ox.NamedNode(row.iri)
        foreign = tuple(q for q in quads if isinstance(q.subject, ox.NamedNode) and q.subject != subject)
        blanks = tuple({q.subject for q in quads if isinstance(q.subject, ox.BlankNode)})
        for quad in foreign:
            self._shared[quad] += 1
        self.oxigraph.extend(quads)
        self._held[row.id] = _Held(row.iri, ox.NamedNode(origin_graph(row.iri)), blanks, foreign)
        self._by_iri[row.iri] = row.id
        stats.added += 1

    def _remove(self, record_id: int, stats: SyncStats) -> set[int]:
        """Take a record's quads out; answers the records whose shared quads must be put back."""
        held = self._held.pop(record_id, None)
        if held is None:
            return set()
        self._by_iri.pop(held.iri, None)
        stats.removed += 1
        doomed = [q for q in self.oxigraph.quads_for_pattern(ox.NamedNode(held.iri), None, None, held.graph)
                  if not self._shared[q]]
        for blank in held.blanks:
            doomed.extend(self.oxigraph.quads_for_pattern(blank, None, None, held.graph))
        reload: set[int] = set()
        for quad in held.foreign:
            self._shared[quad] -= 1
            if self._shared[quad] <= 0:
                del self._shared[quad]
                doomed.append(quad)
                owner = self._by_iri.get(str(getattr(quad.subject, "value", "")))
                if owner is not None:  # the described record may state the same triple itself
                    reload.add(owner)
        for quad in doomed:
            self.oxigraph.remove(quad)
        return reload


# ---------------------------------------------------------------- results


def _binding(term: Any) -> dict[str, Any]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out: dict[str, Any] = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    return {"type": "literal", "value": str(term)}  # RDF-star triple terms: their N-Triples form


def _xml_term(term: Any) -> str:
    if isinstance(term, ox.NamedNode):
        return f"<uri>{escape(term.value)}</uri>"
    if isinstance(term, ox.BlankNode):
        return f"<bnode>{escape(term.value)}</bnode>"
    if isinstance(term, ox.Literal):
        if term.language:
            return f"<literal xml:lang={quoteattr(term.language)}>{escape(term.value)}</literal>"
        if term.datatype.value != XSD_STRING:
            return f"<literal datatype={quoteattr(term.datatype.value)}>{escape(term.value)}</literal>"
        return f"<literal>{escape(term.value)}</literal>"
    return f"<literal>{escape(str(term))}</literal>"


def _csv_value(term: Any) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return "_:" + term.value
    return str(term.value) if isinstance(term, ox.NamedNode | ox.Literal) else str(term)


def serialize_select(names: list[str], rows: list[list[Any]], media_type: str) -> str:
    if media_type == RESULTS_XML:
        head = "".join(f"<variable name={quoteattr(n)}/>" for n in names)
        body = "".join(
            "<result>" + "".join(f"<binding name={quoteattr(n)}>{_xml_term(t)}</binding>"
                                 for n, t in zip(names, row, strict=True) if t is not None) + "</result>"
            for row in rows)
        return ('<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                f"<head>{head}</head><results>{body}</results></sparql>\n")
    if media_type == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerows([_csv_value(t) for t in row] for row in rows)
        return buffer.getvalue()
    if media_type == TSV:
        lines = ["\t".join("?" + n for n in names)]
        lines.extend("\t".join("" if t is None else str(t) for t in row) for row in rows)
        return "\n".join(lines) + "\n"
    bindings = [{n: _binding(t) for n, t in zip(names, row, strict=True) if t is not None} for row in rows]
    return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}, ensure_ascii=False)


def serialize_ask(value: bool, media_type: str) -> str:
    if media_type == RESULTS_XML:
        return ('<?xml version="1.0"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#"><head/>'
                f"<boolean>{'true' if value else 'false'}</boolean></sparql>\n")
    return json.dumps({"head": {}, "boolean": value})


# ---------------------------------------------------------------- the endpoint


@dataclass(frozen=True)
class Answer:
    body: str
    media_type: str
    truncated: bool = False
    rows: int = 0


@dataclass
class _Deadline:
    at: float
    abandoned: threading.Event = field(default_factory=threading.Event)



def media_types(form: str) -> list[str]:
    return {"SELECT": SELECT_TYPES, "ASK": ASK_TYPES}.get(form, GRAPH_TYPES)


class SparqlEndpoint:
    """Answers SPARQL queries over a :class:`CatalogIndex` kept in step with ``store``, within :class:`Limits`."""

    def __init__(self, store: Store, limits: Limits | None = None) -> None:
        self.store = store
        self.limits = limits or Limits()
        self.index = CatalogIndex()
        self._pool = ThreadPoolExecutor(max_workers=self.limits.workers, thread_name_prefix="sparql")
        self._background: asyncio.Task[SyncStats] | None = None

    def start(self) -> None:
        """Build the index in the background, so that a node with a large catalog starts serving at once."""
        self._background = asyncio.ensure_future(self.index.sync(self.store))

    async def stop(self) -> None:
        for task in (self._background, self.index.full_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def check(self, query: str) -> Analysis:
        """Refuse, before any work, a query that is too long, malformed, an update, or too complex."""
        if len(query) > self.limits.max_query_chars:
            raise refused(f"Query too long: {len(query)} characters, the limit is {self.limits.max_query_chars}")
        if not query.strip():
            raise refused("Missing query: give it as ?query=, a form field or an application/sparql-query body")
        return analyse(query, self.limits.max_triple_patterns)

    async def answer(self, query: str, media_type: str, *, default_graphs: Sequence[str] = (),
                     named_graphs: Sequence[str] = ()) -> Answer:
        """Run a checked query against an up-to-date index; SparqlError 503 when it runs out of time."""
        deadline = _Deadline(time.monotonic() + self.limits.timeout_seconds)
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(self.index.sync(self.store))),
                                   self.limits.timeout_seconds)
        except TimeoutError:
            raise SparqlError(503, "The SPARQL index is still being built from the catalog; try again shortly",
                              {"Retry-After": "5"}) from None
        options: dict[str, Any] = {"use_default_graph_as_union": not default_graphs and not named_graphs}
        try:
            if default_graphs:
                options["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
            if named_graphs:
                options["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        except ValueError as error:
            raise refused(f"Invalid graph IRI: {error}") from None
        future = asyncio.get_running_loop().run_in_executor(
            self._pool, self._evaluate, query, media_type, options, deadline)
        try:
            return await asyncio.wait_for(future, max(0.0, deadline.at - time.monotonic()))
        except TimeoutError:
            deadline.abandoned.set()
            raise SparqlError(503, f"Query timed out: it ran longer than {self.limits.timeout_seconds:g} s and was "
                                   "abandoned; narrow it or add a LIMIT") from None

    def _evaluate(self, query: str, media_type: str, options: dict[str, Any], deadline: _Deadline) -> Answer:
        if deadline.abandoned.is_set() or time.monotonic() > deadline.at:
            raise SparqlError(503, f"Query timed out after {self.limits.timeout_seconds:g} s")
        try:
            result = self.index.oxigraph.query(query, **options)
        except SyntaxError as error:
            raise refused(f"Malformed query: {error}") from None
        try:
            outcome = self._collect(result, media_type, deadline)
        finally:
            del result  # Oxigraph results must be dropped on the thread that made them
        if isinstance(outcome, SparqlError):
            raise outcome
        return outcome

    def _collect(self, result: Any, media_type: str, deadline: _Deadline) -> Answer | SparqlError:
        """Serialize at most ``max_rows`` results; errors are returned, not raised, so no traceback keeps
        ``result`` alive beyond this thread."""
        if isinstance(result, ox.QueryBoolean):
            return Answer(serialize_ask(bool(result), media_type), media_type, rows=1)
        if isinstance(result, ox.QuerySolutions):
            names = [v.value for v in result.variables]
            taken = self._take(([s[i] for i in range(len(names))] for s in result), deadline)
            if isinstance(taken, SparqlError):
                return taken
            rows, truncated = taken
            return Answer(serialize_select(names, rows, media_type), media_type, truncated, len(rows))
        taken = self._take(iter(result), deadline)
        if isinstance(taken, SparqlError):
            return taken
        triples, truncated = taken
        fmt = ox.RdfFormat.TURTLE if media_type == TURTLE else ox.RdfFormat.N_TRIPLES
        prefixes = {k: str(v) for k, v in PREFIXES.items()} if fmt == ox.RdfFormat.TURTLE else None
        body = ox.serialize(triples, format=fmt, prefixes=prefixes)
        return Answer(body.decode("utf-8") if body else "", media_type, truncated, len(triples))

    def _take(self, items: Iterator[Any], deadline: _Deadline) -> tuple[list[Any], bool] | SparqlError:
        """At most ``max_rows`` results, checking the deadline between rows (dropping the iterator stops Oxigraph)."""
        taken: list[Any] = []
        try:
            for item in items:
                if len(taken) >= self.limits.max_rows:
                    return taken, True
                taken.append(item)
                if len(taken) % 64 == 0 and (deadline.abandoned.is_set() or time.monotonic() > deadline.at):
                    return SparqlError(503, f"Query timed out after {self.limits.timeout_seconds:g} s")
        except Exception as error:  # an evaluation error Oxigraph reports while streaming
            message = str(error)
        else:
            return taken, False
        return SparqlError(500, f"Query failed: {message}")
