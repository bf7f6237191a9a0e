"""JSON-LD expansion and RDFC-1.0 canonicalization: the one place a document becomes the bytes a proof signs.

Why it wraps pyld instead of calling ``jsonld.normalize`` (DESIGN §9):

- pyld's ``normalize`` defaults to URGNA2012; we always run URDNA2015 (= RDFC-1.0).
- pyld drops terms no context defines, silently, so a proof would not cover them. Here expansion is in
  *safe mode*: a dropped term, or an ``@id``/``@type`` left relative (pyld drops those triples too), is an
  error.
- pyld writes ASCII control characters raw into N-Quads; RDFC-1.0 (and jsonld.js) escape them, so a literal
  holding one would hash differently here and elsewhere. :class:`RDFC10` serializes quads the RDFC-1.0 way,
  also inside the blank-node hashes.
- ``rdfDirection: i18n-datatype``; the frozen loader tags contexts static so pyld keeps processed contexts.
- Poison graphs: RDFC-1.0's worst case is exponential, and pyld merges a property's values in quadratic time.
  Both are counted in units of work against one budget, refused past it (422), and the work looks at the
  request's deadline and cancel flag (``node/ld/work.py``) as it goes.
- Speed: one processor, expansion done once (``to_rdf`` would expand a second time after our safety walk), and
  the dataset goes straight into the canonicalization algorithm. ``bench/bench_proofs.py`` measures it.

pyld is pinned (``pyld>=3.3,<4``); two of its private helpers (``_create_node_map``, ``_graph_to_rdf``) build
the dataset, and tests compare the output byte for byte with plain ``jsonld.normalize``.
"""

from __future__ import annotations

import re
import threading
from functools import cache
from typing import Any, NoReturn

from cachetools import LRUCache
from frozendict import frozendict
from pyld import jsonld
from pyld.canon import URDNA2015, permutations
from pyld.identifier_issuer import IdentifierIssuer

from node.errors import BadRequest, EduFedError, Unprocessable
from node.ld import work
from node.ld.contexts import bundled_iris, context_document
from node.ld.loader import frozen_document_loader

RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
# RDFC-1.0 (§4.4.3 and its security considerations) asks implementations to bound the work on blank nodes
# whose neighbourhoods look alike (poison graphs). One unit is one hash computed or one blank node placed on a
# path of a permutation, so the bound counts the real work, not only Hash N-Degree Quads calls. A unit costs
# 2-5 µs whatever the graph's shape. A credential or a record needs a few dozen units; a ring of 80 look-alike
# blank nodes 45,000; a clique of 7 reaches the budget (protocol_spec/14-security-privacy.md [SEC-17]).
MAX_CANONICALIZATION_WORK = 100_000
# How often (in units) the work looks at the request's deadline and cancel flag: about every millisecond.
CHECK_EVERY = 1024
CONTEXT_MEMO_SIZE = 2048

Dataset = dict[str, list[dict[str, Any]]]

_OPTIONS: dict[str, Any] = {
    "documentLoader": frozen_document_loader,
    "base": None,  # not "": pyld would resolve relative IRIs against http://example.org/base/
    "processingMode": "json-ld-1.1",
    "rdfDirection": "i18n-datatype",
    "produceGeneralizedRdf": False,
    "extractAllScripts": True,
}

# Canonical N-Quads escapes (same table as rdf-canonize 5 / jsonld.js): ECHAR for \b \t \n \f \r " \\,
# UCHAR for every other C0 control character and DEL. IRIs escape controls, space and <>"{}|^`\ as UCHAR.
_LITERAL_ESCAPES: dict[int, str] = {c: f"\\u{c:04X}" for c in [*range(0x20), 0x7F]}
_LITERAL_ESCAPES.update(
    {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
)
_IRI_ESCAPES: dict[int, str] = {c: f"\\u{c:04X}" for c in [*range(0x21), *map(ord, '<>"{}|^`\\')]}
# Searching first keeps the common case (nothing to escape) in C: str.translate with a dict is slow.
_LITERAL_SPECIAL = re.compile(r'[\x00-\x1f\x7f"\\]')
_IRI_SPECIAL = re.compile(r'[\x00-\x20<>"{}|^`\\]')


def _escape_literal(value: str) -> str:
    return value.translate(_LITERAL_ESCAPES) if _LITERAL_SPECIAL.search(value) else value


def _escape_iri(value: str) -> str:
    return value.translate(_IRI_ESCAPES) if _IRI_SPECIAL.search(value) else value


class UndefinedTermError(Unprocessable):
    """A property the contexts do not define: pyld would drop it and the proof would not cover it."""

    code = "undefined-term"


class RelativeIriError(Unprocessable):
    """An ``@id`` or ``@type`` that stays relative: pyld would drop its triples silently."""

    code = "relative-iri"


class InvalidJsonLdError(BadRequest):
    """The document is not valid JSON-LD (pyld refused it)."""

    code = "invalid-json-ld"


class CanonicalizationBudgetError(work.WorkRefused):
    """The blank-node structure needs more canonicalization work than the node does for one document."""

    status = 422
    code = "canonicalization-budget"


def _on_property_dropped(term: Any) -> NoReturn:
    raise UndefinedTermError(
        "Undefined JSON-LD term",
        detail=f"{term!r} is not defined by the document's contexts; it would be dropped and left unsigned",
        field=str(term),
    )


@cache
def _bundled_context_parts() -> frozenset[int]:
    """ids of every dict and list in the bundled context documents (cached, never mutated, never freed)."""
    ids: set[int] = set()
    stack: list[Any] = [context_document(iri) for iri in bundled_iris()]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ids.add(id(item))
            stack.extend(item.values())
        elif isinstance(item, list):
            ids.add(id(item))
            stack.extend(item)
    return frozenset(ids)


def _context_key(local_ctx: Any) -> Any:
    """A cache key for a local context, or None when it may be a caller's mutable object."""
    if isinstance(local_ctx, str):
        return local_ctx
    if isinstance(local_ctx, list) and all(isinstance(item, str) for item in local_ctx):
        return tuple(local_ctx)
    if isinstance(local_ctx, dict | list) and id(local_ctx) in _bundled_context_parts():
        return id(local_ctx)
    return None


class _Processor(jsonld.JsonLdProcessor):
    """pyld's processor with a memo of processed contexts keyed by (active context, local context).

    pyld caches a processed context per active context ``_uuid``, but a type-scoped (non-propagating) context
    is applied to a fresh clone with a fresh ``_uuid`` on every document, so it is processed again each time:
    most of the expansion time for credentials. Processed contexts are frozen and bundled contexts never
    change, so the same inputs always give the same active context, and it is safe to reuse it.
    """

    def __init__(self) -> None:
        super().__init__(on_property_dropped=_on_property_dropped)
        self._memo: LRUCache[tuple[Any, ...], tuple[Any, ...]] = LRUCache(maxsize=CONTEXT_MEMO_SIZE)
        self._lock = threading.Lock()

    def _expand(self, active_ctx: Any, active_property: Any, element: Any, options: dict[str, Any],
                inside_list: bool = False, inside_index: bool = False, type_scoped_ctx: Any = None) -> Any:
        # pyld expands element by element: the one place to stop an expansion whose request has ended
        work.check()
        return super()._expand(active_ctx, active_property, element, options, inside_list=inside_list,
                               inside_index=inside_index, type_scoped_ctx=type_scoped_ctx)

    def _process_context(self, active_ctx: Any, local_ctx: Any, options: dict[str, Any],
                         override_protected: bool = False, propagate: bool = True,
                         validate_scoped: bool = True, cycles: set[str] | None = None) -> Any:
        ctx_key = _context_key(local_ctx)
        key = None
        if (ctx_key is not None and isinstance(active_ctx, frozendict) and "_uuid" in active_ctx
                and not cycles and options.get("documentLoader") is frozen_document_loader
                and not options.get("base")):
            key = (active_ctx["_uuid"], ctx_key, override_protected, propagate, validate_scoped)
            with self._lock:
                hit = self._memo.get(key)
            if hit is not None:
                return hit[0]
        result = super()._process_context(
            active_ctx, local_ctx, options, override_protected=override_protected, propagate=propagate,
            validate_scoped=validate_scoped, cycles=cycles,
        )
        if key is not None and isinstance(result, frozendict):
            with self._lock:
                # keep the active context alive so its _uuid is never reused by another object
                self._memo[key] = (result, active_ctx)
        return result


_PROCESSOR = _Processor()


def _edufed_cause(error: BaseException) -> EduFedError | None:
    """The EduFed error (an unknown context, a dropped term) that pyld wrapped in its own, if any."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, EduFedError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is_absolute(iri: Any) -> bool:
    return isinstance(iri, str) and (iri.startswith("_:") or jsonld._is_absolute_iri(iri))


def _check_absolute(expanded: Any) -> None:
    """Refuse relative ``@id`` / ``@type`` values left in expanded output (jsonld.js safe mode does too)."""
    stack = [expanded]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        if "@value" in item:
            datatype = item.get("@type")
            if datatype is not None and datatype != "@json" and not _is_absolute(datatype):
                raise RelativeIriError("Relative IRI", detail=f"datatype {datatype!r} is not absolute",
                                       field="@type")
            continue
        node_id = item.get("@id")
        if node_id is not None and not _is_absolute(node_id):
            raise RelativeIriError("Relative IRI", detail=f"@id {node_id!r} is not absolute", field="@id")
        for type_ in item.get("@type", ()):
            if not _is_absolute(type_):
                raise RelativeIriError(
                    "Relative IRI", detail=f"type {type_!r} is not defined or not absolute", field="@type"
                )
        for key, value in item.items():
            if key not in ("@id", "@type"):
                stack.append(value)


def expand_terms(document: dict[str, Any]) -> list[Any]:
    """Expanded JSON-LD with only bundled contexts, refusing undefined terms but not yet relative IRIs.

    The validator starts here so that it can report a relative IRI under the term that holds it.
    """
    if not isinstance(document, dict):
        raise InvalidJsonLdError("Invalid JSON-LD", detail="a document must be a JSON object")
    try:
        expanded: list[Any] = _PROCESSOR.expand(document, dict(_OPTIONS))
    except EduFedError:
        raise
    except Exception as exc:
        cause = _edufed_cause(exc)
        if cause is not None:
            raise cause from exc
        raise InvalidJsonLdError("Invalid JSON-LD", detail=str(exc)) from exc
    return expanded


def expand(document: dict[str, Any]) -> list[Any]:
    """Expanded JSON-LD, in safe mode (undefined terms and relative IRIs refused), with only bundled contexts."""
    expanded = expand_terms(document)
    _check_absolute(expanded)
    return expanded


def _refuse_budget(detail: str) -> NoReturn:
    raise CanonicalizationBudgetError("Canonicalization budget exceeded", detail=detail)


# Keys whose values pyld does not compare when it builds the node map: a graph's, a list's or included nodes are
# placed by id or appended.
_NOT_MERGED = frozenset({"@id", "@context", "@index", "@language", "@direction"})
_NOT_COMPARED = frozenset({"@graph", "@list", "@included"})


def _check_node_map_work(expanded: list[Any]) -> None:
    """Refuse a document whose node map pyld would build in quadratic time.

    pyld adds each value of a property after comparing it with every value already there, so ``k`` values of
    one property of one node (a node's objects merged by ``@id``) cost ``k²/2`` comparisons: 5,000 values take
    20 s. Counted here beforehand, in the same units and against the same budget as RDFC-1.0's work.
    """
    counts: dict[tuple[Any, str], int] = {}
    stack: list[Any] = [expanded]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict) or "@value" in item:
            continue
        node = item.get("@id") if isinstance(item.get("@id"), str) else id(item)
        for key, value in item.items():
            if key in _NOT_MERGED:
                continue
            if isinstance(value, list) and key not in _NOT_COMPARED:
                counts[(node, key)] = counts.get((node, key), 0) + len(value)
            stack.append(value)
    cost = sum(count * (count - 1) // 2 for count in counts.values())
    if cost > MAX_CANONICALIZATION_WORK:
        _refuse_budget(f"its nodes hold so many values of one property that building the graph takes "
                       f"{cost:,} comparisons; the limit is {MAX_CANONICALIZATION_WORK:,}")


def expanded_to_rdf(expanded: list[Any]) -> Dataset:
    """The RDF dataset (pyld's dict form) of an expanded document."""
    _check_node_map_work(expanded)
    options = dict(_OPTIONS)
    issuer = IdentifierIssuer("_:b")
    node_map: dict[str, dict[str, Any]] = {"@default": {}}
    try:
        _PROCESSOR._create_node_map(expanded, node_map, "@default", issuer)
        return {
            name: _PROCESSOR._graph_to_rdf(graph, issuer, options)
            for name, graph in sorted(node_map.items())
            if name == "@default" or jsonld._is_absolute_iri(name)
        }
    except Exception as exc:
        raise InvalidJsonLdError("Invalid JSON-LD", detail=str(exc)) from exc


def to_rdf(document: dict[str, Any]) -> Dataset:
    """The RDF dataset of a document (pyld's dict form), after one safe-mode expansion."""
    return expanded_to_rdf(expand(document))


def _term(term: dict[str, Any]) -> str:
    if term["type"] == "IRI":
        return "<" + _escape_iri(term["value"]) + ">"
    return str(term["value"])


def nquad(quad: dict[str, Any]) -> str:
    """One quad in canonical N-Quads (RDFC-1.0 escaping)."""
    obj = quad["object"]
    if obj["type"] == "literal":
        text = '"' + _escape_literal(obj["value"]) + '"'
        datatype = obj["datatype"]
        if datatype == RDF_LANGSTRING:
            if obj.get("language"):
                text += "@" + obj["language"]
        elif datatype != XSD_STRING:
            text += "^^<" + _escape_iri(datatype) + ">"
    else:
        text = _term(obj)
    line = _term(quad["subject"]) + " " + _term(quad["predicate"]) + " " + text
    name = quad.get("name")
    if name is not None:
        line += " " + _term(name)
    return line + " .\n"


def _copy_issuer(issuer: IdentifierIssuer) -> IdentifierIssuer:
    """A copy of an issuer (pyld deep-copies it, which is most of the time spent on rings of blank nodes)."""
    copied = IdentifierIssuer(issuer.prefix)
    copied.counter = issuer.counter
    copied.existing = dict(issuer.existing)
    copied.order = list(issuer.order)
    return copied


class RDFC10(URDNA2015):
    """pyld's URDNA2015 with RDFC-1.0 literal escaping and a budget on the work of Hash N-Degree Quads."""

    def __init__(self, budget: int | None = None) -> None:
        super().__init__()
        self.budget = MAX_CANONICALIZATION_WORK if budget is None else budget
        self.work = 0
        self._next_check = CHECK_EVERY
        self._allowance = work.current()

    def _spend(self, units: int) -> None:
        self.work += units
        if self.work > self.budget:
            _refuse_budget(f"its blank nodes need more than {self.budget:,} steps of RDFC-1.0 work (hashes and "
                           "permutation steps); refusing a graph that could exhaust the node")
        if self.work >= self._next_check:
            self._next_check = self.work + CHECK_EVERY
            if self._allowance is not None:
                self._allowance.check()

    def hash_first_degree_quads(self, id_: str) -> str:
        info = self.blank_node_info[id_]
        if "hash" not in info:
            lines = []
            for quad in info["quads"]:
                copy = {
                    key: (
                        {"type": "blank node", "value": "_:a" if component["value"] == id_ else "_:z"}
                        if key != "predicate" and component["type"] == "blank node"
                        else component
                    )
                    for key, component in quad.items()
                }
                lines.append(nquad(copy))
            lines.sort()
            info["hash"] = self.hash_nquads(lines)
            self._spend(len(lines))
        return str(info["hash"])

    def hash_related_blank_node(self, related: str, quad: dict[str, Any], issuer: IdentifierIssuer,
                                position: str) -> str:
        self._spend(1)
        return str(super().hash_related_blank_node(related, quad, issuer, position))

    def _exceeds(self, path: str, chosen_path: str) -> bool:
        return bool(chosen_path) and len(path) >= len(chosen_path) and path > chosen_path

    def hash_n_degree_quads(self, id_: str, issuer: IdentifierIssuer) -> dict[str, Any]:
        """RDFC-1.0 §4.8.3 as pyld does it, spending one unit per hash and per blank node placed on a path."""
        self._spend(1)
        hash_to_related = self.create_hash_to_related(id_, issuer)
        md = self.create_hash()
        for related_hash, blank_nodes in sorted(hash_to_related.items()):
            md.update(related_hash.encode("utf8"))
            chosen_path = ""
            chosen_issuer = None
            for permutation in permutations(blank_nodes):
                issuer_copy = _copy_issuer(issuer)
                path = ""
                recursion_list = []
                skip = False
                for related in permutation:
                    self._spend(1)
                    if self.canonical_issuer.has_id(related):
                        path += self.canonical_issuer.get_id(related)
                    else:
                        if not issuer_copy.has_id(related):
                            recursion_list.append(related)
                        path += issuer_copy.get_id(related)
                    if self._exceeds(path, chosen_path):
                        skip = True
                        break
                if skip:
                    continue
                for related in recursion_list:
                    result = self.hash_n_degree_quads(related, issuer_copy)
                    path += issuer_copy.get_id(related)
                    path += "<" + result["hash"] + ">"
                    issuer_copy = result["issuer"]
                    if self._exceeds(path, chosen_path):
                        skip = True
                        break
                if skip:
                    continue
                if not chosen_path or path < chosen_path:
                    chosen_path = path
                    chosen_issuer = issuer_copy
            md.update(chosen_path.encode("utf8"))
            issuer = chosen_issuer
        return {"hash": md.hexdigest(), "issuer": issuer}

    def canonicalize(self, dataset: Dataset) -> str:
        """Canonical N-Quads of ``dataset`` (RDFC-1.0 steps 1-8; consumes the dataset)."""
        for graph_name, triples in dataset.items():
            for quad in triples:
                if graph_name != "@default":
                    quad["name"] = {"type": "blank node" if graph_name.startswith("_:") else "IRI",
                                    "value": graph_name}
                self.quads.append(quad)
                for key, component in quad.items():
                    if key != "predicate" and component["type"] == "blank node":
                        info = self.blank_node_info.setdefault(component["value"], {"quads": []})
                        info["quads"].append(quad)
        non_normalized = set(self.blank_node_info)
        simple = True
        while simple:
            simple = False
            self.hash_to_blank_nodes: dict[str, list[str]] = {}
            for id_ in non_normalized:
                self.hash_to_blank_nodes.setdefault(self.hash_first_degree_quads(id_), []).append(id_)
            for hash_, id_list in sorted(self.hash_to_blank_nodes.items()):
                if len(id_list) > 1:
                    continue
                self.canonical_issuer.get_id(id_list[0])
                non_normalized.remove(id_list[0])
                del self.hash_to_blank_nodes[hash_]
                simple = True
        for _hash, id_list in sorted(self.hash_to_blank_nodes.items()):
            paths = []
            for id_ in id_list:
                if self.canonical_issuer.has_id(id_):
                    continue
                issuer = IdentifierIssuer("_:b")
                issuer.get_id(id_)
                paths.append(self.hash_n_degree_quads(id_, issuer))
            for result in sorted(paths, key=lambda r: r["hash"]):
                for existing in result["issuer"].order:
                    self.canonical_issuer.get_id(existing)
        lines = []
        for quad in self.quads:
            for key, component in quad.items():
                # a component dict can be shared by several quads: relabel it once
                if (key != "predicate" and component["type"] == "blank node"
                        and not component["value"].startswith(self.canonical_issuer.prefix)):
                    component["value"] = self.canonical_issuer.get_id(component["value"])
            lines.append(nquad(quad))
        lines.sort()
        return "".join(lines)


def canonicalize_dataset(dataset: Dataset) -> str:
    """Canonical N-Quads (RDFC-1.0) of a pyld dataset; the dataset is consumed.

    Raises :class:`CanonicalizationBudgetError` past the work budget, and the current request's
    :class:`~node.ld.work.WorkTimeout` / :class:`~node.ld.work.WorkCancelled` as soon as its allowance ends.
    """
    try:
        return RDFC10().canonicalize(dataset)
    except RecursionError:  # a chain of look-alike blank nodes deeper than Python's stack
        _refuse_budget("its blank nodes form a chain too long for Hash N-Degree Quads")


def canonicalize(document: dict[str, Any]) -> str:
    """Canonical N-Quads (RDFC-1.0 / URDNA2015) of a JSON-LD document, in safe mode."""
    return canonicalize_dataset(to_rdf(document))
