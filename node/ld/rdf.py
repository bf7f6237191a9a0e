"""JSON-LD documents as rdflib datasets and as Turtle / N-Triples / N-Quads / TriG (content negotiation).

Why built from :mod:`node.ld.canon`'s dataset: the conversion reuses its one safe-mode expansion (bundled
contexts only, undefined terms refused), N-Triples and N-Quads come out with the exact lexical forms that are
signed, and rdflib terms are made with ``normalize=False`` so ``"2024-01-01T00:00:00Z"`` is not rewritten.
A Data Integrity ``proof`` lives in its own (blank-node) named graph: N-Quads and TriG keep it, while Turtle
and N-Triples (one graph, no graph names) carry the record's default graph without its proof.
"""

from __future__ import annotations

import warnings
from typing import Any

from rdflib import BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.term import Node

from node.errors import BadRequest
from node.ld.canon import RDF_LANGSTRING, XSD_STRING, nquad, to_rdf
from node.ld.canon import Dataset as PyldDataset

FORMATS = ("turtle", "nt", "nquads", "trig")
PREFIXES = {
    "schema": Namespace("https://schema.org/"),
    "skos": Namespace("http://www.w3.org/2004/02/skos/core#"),
    "edufed": Namespace("https://w3id.org/edufed/ns#"),
    "sec": Namespace("https://w3id.org/security#"),
    "cred": Namespace("https://www.w3.org/2018/credentials#"),
    "as": Namespace("https://www.w3.org/ns/activitystreams#"),
    "dcterms": Namespace("http://purl.org/dc/terms/"),
}


def _without_proof(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "proof"}


def _lines(dataset: PyldDataset, default_only: bool = False) -> str:
    lines: list[str] = []
    for name, triples in dataset.items():
        if name != "@default" and default_only:
            continue
        graph = None if name == "@default" else {"type": "blank node" if name.startswith("_:") else "IRI",
                                                 "value": name}
        lines.extend(nquad({**t, "name": graph} if graph else t) for t in triples)
    return "".join(sorted(lines))


def to_nquads(document: dict[str, Any]) -> str:
    """N-Quads of the document, sorted (blank nodes not canonicalized: use canonicalize() for signing)."""
    return _lines(to_rdf(document))


def to_ntriples(document: dict[str, Any]) -> str:
    """N-Triples of the document's default graph, without its proof."""
    return _lines(to_rdf(_without_proof(document)), default_only=True)


def _node(term: dict[str, Any]) -> Node:
    if term["type"] == "IRI":
        return URIRef(term["value"])
    if term["type"] == "blank node":
        return BNode(term["value"][2:])
    datatype = term["datatype"]
    if datatype == RDF_LANGSTRING:
        return Literal(term["value"], lang=term.get("language"), normalize=False)
    if datatype == XSD_STRING:
        return Literal(term["value"], normalize=False)
    return Literal(term["value"], datatype=URIRef(datatype), normalize=False)


def _bind(graph: Graph) -> None:
    for prefix, namespace in PREFIXES.items():
        graph.bind(prefix, namespace, override=True, replace=True)


def to_dataset(document: dict[str, Any]) -> Dataset:
    """The RDF dataset of a JSON-LD document (safe mode, bundled contexts only)."""
    dataset = Dataset()
    _bind(dataset)
    for name, triples in to_rdf(document).items():
        graph_id = DATASET_DEFAULT_GRAPH_ID if name == "@default" else (
            BNode(name[2:]) if name.startswith("_:") else URIRef(name))
        graph = dataset.graph(graph_id)
        for t in triples:
            graph.add((_node(t["subject"]), _node(t["predicate"]), _node(t["object"])))
    return dataset


def to_graph(document: dict[str, Any]) -> Graph:
    """The default graph of the document without its proof: what Turtle and N-Triples carry."""
    graph = Graph()
    _bind(graph)
    for t in to_rdf(_without_proof(document)).get("@default", []):
        graph.add((_node(t["subject"]), _node(t["predicate"]), _node(t["object"])))
    return graph


def serialize(document: dict[str, Any], fmt: str) -> str:
    """The document as ``turtle``, ``nt`` (N-Triples), ``nquads`` or ``trig``."""
    if fmt == "nquads":
        return to_nquads(document)
    if fmt == "nt":
        return to_ntriples(document)
    if fmt == "trig":
        with warnings.catch_warnings():  # rdflib's own TriG serializer uses its deprecated Dataset API
            warnings.simplefilter("ignore", DeprecationWarning)
            return str(to_dataset(document).serialize(format="trig"))
    if fmt == "turtle":
        return str(to_graph(document).serialize(format="turtle"))
    raise BadRequest("Unknown RDF format", detail=f"expected one of {', '.join(FORMATS)}", field="format")
