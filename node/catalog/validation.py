"""SHACL validation of catalog records against ``vocab/v1/shapes.ttl``, reported in JSON terms.

Publishers write JSON-LD, so a violation names the compact term (``name``, ``geo.latitude``), not an IRI.
Documents become RDF through ``node.ld.canon`` (bundled contexts only, processed once; an undefined term is
a violation, never dropped); the shapes are parsed once. A batch is checked as ONE data graph in one pyshacl
run (per-run overhead dominates for small records), and each result is mapped back to its document through
the nodes that document produced.

Two checks run in Python because SHACL cannot see them: the record must have a type we publish, and an
IRI-valued term must hold an absolute IRI (pyld turns ``"provider": "Some Library"`` into a relative IRI and
drops it from the RDF without a word, so the shapes would never see it and the proof would not cover it).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pyshacl
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from node.errors import EduFedError
from node.ld.canon import expand_terms, expanded_to_rdf
from node.ld.contexts import EDUFED_CONTEXT, context_document, vocab_dir

SCHEMA = "https://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
EF = "https://w3id.org/edufed/ns#"
RECORD_CLASSES = frozenset(
    URIRef(iri)
    for iri in (
        SCHEMA + "Course", SCHEMA + "CourseInstance", SCHEMA + "EducationEvent", SCHEMA + "LearningResource",
        SCHEMA + "Place", SKOS + "ConceptScheme", SKOS + "Concept", EF + "CreditSystem",
        EF + "CreditConversionRule", "https://www.w3.org/ns/activitystreams#Tombstone",
    )
)
ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*$")
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"
TIME_ZONE = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")


class _QuietIllTyped(logging.Filter):
    """rdflib logs a traceback per ill-typed literal; here they are expected input, reported as violations."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to convert Literal lexical form")


logging.getLogger("rdflib.term").addFilter(_QuietIllTyped())


@dataclass(frozen=True)
class ShapeViolation:
    """One failed constraint: ``path`` is the JSON term (dotted when nested), ``focus`` the record IRI."""

    path: str
    message: str
    focus: str
    constraint: str


@cache
def shapes_graph() -> Graph:
    """The v1 shapes, parsed once per process."""
    return Graph().parse(vocab_dir() / "v1" / "shapes.ttl", format="turtle")


@cache
def term_names() -> dict[str, str]:
    """Property IRI -> compact term of EduFed's context, for readable paths."""
    names: dict[str, str] = {}
    for term, definition in context_document(EDUFED_CONTEXT)["@context"].items():
        iri = definition.get("@id") if isinstance(definition, dict) else definition
        if isinstance(iri, str) and not term.startswith("@") and not iri.startswith("@"):
            names.setdefault(iri, term)
    return names


def _term(iri: str) -> str:
    return term_names().get(iri, iri)


def _relative_iris(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(dotted term path, value) of every ``@id`` in expanded JSON-LD that is not an absolute IRI."""
    if isinstance(node, list):
        for item in node:
            yield from _relative_iris(item, path)
        return
    if not isinstance(node, dict):
        return
    ident = node.get("@id")
    if isinstance(ident, str) and path and not ident.startswith("_:") and not ABSOLUTE_IRI.match(ident):
        yield ".".join(path), ident
    for key, value in node.items():
        if not key.startswith("@"):
            yield from _relative_iris(value, (*path, _term(key)))
        elif key in ("@list", "@set", "@graph"):
            yield from _relative_iris(value, path)


@cache
def _vocab_terms() -> frozenset[str]:
    """Terms whose values are names from the context (``"basis": "Workload"``), not IRIs."""
    return frozenset(
        term for term, definition in context_document(EDUFED_CONTEXT)["@context"].items()
        if isinstance(definition, dict) and definition.get("@type") == "@vocab"
    )


def _iri_message(path: str, value: str) -> str:
    if path.rsplit(".", 1)[-1] in _vocab_terms():
        return f"{path} must be one of the names EduFed's context defines, not {value!r}"
    return f"{path} must be an absolute IRI (https://…), not {value!r}"


def _object(term: dict[str, str], prefix: str) -> Node:
    value = term["value"]
    if term["type"] == "blank node":
        return BNode(prefix + value[2:])
    if term["type"] == "IRI":
        return URIRef(value)
    if term.get("language"):
        return Literal(value, lang=term["language"])
    datatype = term.get("datatype") or XSD_STRING
    if datatype == XSD_STRING:
        return Literal(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        literal = Literal(value, datatype=URIRef(datatype))
    if literal.ill_typed or (datatype == XSD_DATETIME and not TIME_ZONE.search(value)):
        # Kept as plain text: sh:datatype still reports it, and pyshacl's order comparisons (sh:lessThan…)
        # raise TypeError on ill-typed or naive date-times instead of reporting them.
        return Literal(value)
    return literal


@dataclass
class _Converted:
    """One document's default-graph triples, its root node, and any pre-SHACL violations."""

    triples: list[tuple[Node, Node, Node]]
    root: Node | None
    early: list[ShapeViolation]


def _convert(document: dict[str, Any], prefix: str) -> _Converted:
    """JSON-LD -> default-graph triples (a proof graph is not the record); blank nodes get ``prefix``."""
    focus = str(document.get("id", ""))
    try:
        expanded = expand_terms(document)
        dataset = expanded_to_rdf(expanded)
    except EduFedError as error:
        message = error.title + (f": {error.detail}" if error.detail else "")
        return _Converted([], None, [ShapeViolation(error.field or "@context", message, focus, "JSON-LD")])
    early = [
        ShapeViolation(path, _iri_message(path, value), focus, "IRI")
        for path, value in _relative_iris(expanded)
    ]
    triples: list[tuple[Node, Node, Node]] = [
        (_object(t["subject"], prefix), URIRef(t["predicate"]["value"]), _object(t["object"], prefix))
        for t in dataset.get("@default", [])
    ]
    root: Node | None = None
    if len(expanded) == 1 and isinstance(expanded[0], dict):
        ident = expanded[0].get("@id")
        root = URIRef(ident) if isinstance(ident, str) and not ident.startswith("_:") else None
    if root is None and triples:
        root = triples[0][0]
    types = {o for s, p, o in triples if s == root and p == RDF.type}
    if root is not None and not types & RECORD_CLASSES:
        early.append(ShapeViolation("type", "type must be a record type EduFed publishes", focus, "type"))
    return _Converted(triples, root, early)


def _parents(triples: list[tuple[Node, Node, Node]]) -> dict[Node, tuple[Node, Node]]:
    parents: dict[Node, tuple[Node, Node]] = {}
    for s, p, o in triples:
        if p != RDF.type and not isinstance(o, Literal):
            parents.setdefault(o, (s, p))
    return parents


def _dotted(focus: Node, leaf: str, root: Node | None, parents: dict[Node, tuple[Node, Node]]) -> str:
    """``geo.latitude`` for a violation on the geo node of a record."""
    parts = [leaf] if leaf else []
    node, seen = focus, {focus}
    while node != root and node in parents:
        node, predicate = parents[node]
        if node in seen:
            break
        seen.add(node)
        parts.append(_term(str(predicate)))
    return ".".join(reversed(parts))


def _run_shacl(data: Graph) -> Iterator[tuple[Node, str, str, str]]:
    """(focus node, property IRI or "", message, constraint component name) of each violation."""
    _conforms, results, _text = pyshacl.validate(
        data, shacl_graph=shapes_graph(), inference="none", advanced=False, meta_shacl=False,
        allow_warnings=True, allow_infos=True, inplace=True, abort_on_first=False,
    )
    assert isinstance(results, Graph)
    for result in results.subjects(RDF.type, SH.ValidationResult):
        if results.value(result, SH.resultSeverity) != SH.Violation:
            continue
        focus = results.value(result, SH.focusNode)
        path = results.value(result, SH.resultPath)
        message = results.value(result, SH.resultMessage)
        component = str(results.value(result, SH.sourceConstraintComponent) or "")
        if focus is None:
            continue
        yield (focus, str(path) if isinstance(path, URIRef) else "", str(message or "Constraint not met"),
               component.rsplit("#", 1)[-1])


def validate_many(documents: list[dict[str, Any]]) -> dict[int, list[ShapeViolation]]:
    """Index of each failing document -> its violations, from one SHACL run over all of them."""
    data = Graph()
    owners: dict[Node, list[int]] = {}
    converted: list[_Converted] = []
    parents: dict[Node, tuple[Node, Node]] = {}
    failures: dict[int, list[ShapeViolation]] = {}
    for index, document in enumerate(documents):
        item = _convert(document, f"d{index}x")
        converted.append(item)
        if item.early:
            failures[index] = list(item.early)
        for triple in item.triples:
            data.add(triple)
            owners.setdefault(triple[0], []).append(index)
            if isinstance(triple[2], BNode):
                owners.setdefault(triple[2], []).append(index)
        parents.update(_parents(item.triples))
    if len(data):
        for focus, prop, message, constraint in _run_shacl(data):
            for index in dict.fromkeys(owners.get(focus, [])):
                item = converted[index]
                path = _dotted(focus, _term(prop) if prop else "", item.root, parents)
                record = item.root if isinstance(item.root, URIRef) else documents[index].get("id", "")
                where = str(record) if isinstance(focus, BNode) else str(focus)
                violation = ShapeViolation(path, message, where, constraint)
                bucket = failures.setdefault(index, [])
                if not any(v.path == violation.path and v.message == violation.message for v in bucket):
                    bucket.append(violation)
    return failures


def validate_document(document: dict[str, Any]) -> list[ShapeViolation]:
    """Violations of one record (empty when it satisfies its shape)."""
    return validate_many([document]).get(0, [])
