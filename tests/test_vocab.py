"""EduFed's vocabulary files: they parse, agree with each other, and the examples prove the shapes bite."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rdflib import OWL, RDF, RDFS, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, SKOS

from node.catalog.validation import validate_document
from node.ld.contexts import vocab_dir

VOCAB = vocab_dir()
V1 = VOCAB / "v1"
EF = Namespace("https://w3id.org/edufed/ns#")
SCHEMA = Namespace("https://schema.org/")
TURTLE_FILES = sorted(V1.rglob("*.ttl"))
VALID = sorted((V1 / "examples" / "valid").glob("*.jsonld"))
INVALID_DIR = V1 / "examples" / "invalid"
INVALID_EXPECTED: dict[str, str] = json.loads((INVALID_DIR / "expected.json").read_text("utf-8"))
RECORD_TYPES = {
    "Course", "CourseInstance", "EducationEvent", "LearningResource", "Place", "ConceptScheme", "Concept",
    "CreditSystem", "CreditConversionRule", "Tombstone",
}


def graph(name: str) -> Graph:
    return Graph().parse(V1 / name, format="turtle")


def context() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((V1 / "context.jsonld").read_text("utf-8"))
    return document["@context"]


def term_iri(definition: Any) -> str:
    return definition if isinstance(definition, str) else str(definition["@id"])


@pytest.mark.parametrize("path", TURTLE_FILES, ids=[p.name for p in TURTLE_FILES])
def test_turtle_parses(path: Path) -> None:
    assert len(Graph().parse(path, format="turtle")) > 10


def test_expected_files_exist() -> None:
    names = {p.relative_to(V1).as_posix() for p in TURTLE_FILES}
    assert {"edufed.ttl", "shapes.ttl", "credit-systems.ttl", "schemes/isced-f-2013.ttl"} <= names


def test_context_is_protected_json_ld_1_1() -> None:
    ctx = context()
    assert ctx["@version"] == 1.1
    assert ctx["@protected"] is True
    assert ctx["id"] == "@id" and ctx["type"] == "@type"
    for term, definition in ctx.items():
        if term.startswith("@") or definition in ("@id", "@type"):
            continue
        assert term_iri(definition).startswith(("https://", "http://")), term


def test_every_edufed_term_is_defined_in_the_ontology() -> None:
    ontology = graph("edufed.ttl")
    missing = []
    for term, definition in context().items():
        if term.startswith("@") or not isinstance(definition, str | dict):
            continue
        iri = term_iri(definition)
        if iri.startswith(str(EF)) and (URIRef(iri), RDFS.label, None) not in ontology:
            missing.append(term)
    assert missing == []


def test_ontology_is_versioned() -> None:
    ontology = graph("edufed.ttl")
    root = URIRef("https://w3id.org/edufed/ns")
    assert (root, RDF.type, OWL.Ontology) in ontology
    assert ontology.value(root, OWL.versionIRI) == URIRef("https://w3id.org/edufed/ns/1.0.0")
    assert str(ontology.value(root, OWL.versionInfo)) == "1.0.0"
    for subject in set(ontology.subjects(RDF.type, None)):
        if str(subject).startswith(str(EF)):
            assert ontology.value(subject, RDFS.comment) is not None, subject


def test_context_covers_every_sample_column() -> None:
    """The importer maps CSV columns to context terms; a column without a term would escape the proof."""
    import csv

    ctx = context()
    for path in sorted((VOCAB.parent / "samples").glob("*.csv")):
        with path.open(encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle))
        for column in header:
            term = column.partition("@")[0]
            assert term in ctx, (path.name, column)


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_example_passes(path: Path) -> None:
    document = json.loads(path.read_text("utf-8"))
    assert document["@context"] == ["https://w3id.org/edufed/v1"]
    assert document["version"] >= 1 and "dateModified" in document
    assert validate_document(document) == []


def test_one_valid_example_per_record_type() -> None:
    types = {json.loads(p.read_text("utf-8"))["type"] for p in VALID}
    assert types == RECORD_TYPES


@pytest.mark.parametrize(("name", "path"), sorted(INVALID_EXPECTED.items()), ids=sorted(INVALID_EXPECTED))
def test_invalid_example_fails_at_expected_path(name: str, path: str) -> None:
    document = json.loads((V1 / "examples" / "invalid" / name).read_text("utf-8"))
    violations = validate_document(document)
    assert path in {v.path for v in violations}, violations
    assert all(v.message for v in violations)


def test_every_invalid_example_is_listed() -> None:
    assert {p.name for p in (V1 / "examples" / "invalid").glob("*.jsonld")} == set(INVALID_EXPECTED)


def test_every_shape_constraint_has_a_message() -> None:
    shapes = graph("shapes.ttl")
    sh = Namespace("http://www.w3.org/ns/shacl#")
    property_shapes = set(shapes.subjects(sh.path, None))
    assert property_shapes
    for shape in property_shapes:
        assert shapes.value(shape, sh.message) is not None, shape


def test_isced_scheme_integrity() -> None:
    g = graph("schemes/isced-f-2013.ttl")
    scheme = URIRef("https://w3id.org/edufed/schemes/isced-f")
    concepts = set(g.subjects(RDF.type, SKOS.Concept))
    assert len(concepts) == 11 + 29
    notations = [str(g.value(c, SKOS.notation)) for c in concepts]
    assert len(notations) == len(set(notations))
    for concept in concepts:
        notation = str(g.value(concept, SKOS.notation))
        assert (concept, SKOS.inScheme, scheme) in g
        assert str(concept) == f"{scheme}/{notation}"
        labels = list(g.objects(concept, SKOS.prefLabel))
        assert any(isinstance(x, Literal) and x.language == "en" for x in labels)
        assert len({x.language for x in labels if isinstance(x, Literal)}) == len(labels)
        broader = g.value(concept, SKOS.broader)
        if len(notation) == 2:
            assert (scheme, SKOS.hasTopConcept, concept) in g and broader is None
        else:
            assert broader == URIRef(f"{scheme}/{notation[:2]}")
            assert (broader, SKOS.narrower, concept) in g
    assert {f"{n:02d}" for n in range(11)} <= set(notations)
    assert g.value(scheme, DCTERMS.source) is not None


def test_isced_codes_used_by_the_importer_resolve() -> None:
    g = graph("schemes/isced-f-2013.ttl")
    for code in ("00", "02", "06", "10"):
        assert (URIRef(f"https://w3id.org/edufed/schemes/isced-f/{code}"), RDF.type, SKOS.Concept) in g


def test_credit_systems_and_rules() -> None:
    g = graph("credit-systems.ttl")
    systems = set(g.subjects(RDF.type, EF.CreditSystem))
    notations = {str(g.value(s, SKOS.notation)) for s in systems}
    assert {"ECTS", "HOURS", "SH-CREDIT"} <= notations and len(notations) >= 4
    for system in systems:
        assert str(system) == f"https://w3id.org/edufed/credit-systems/{g.value(system, SKOS.notation)}"
        assert g.value(system, DCTERMS.bibliographicCitation) is not None
    rules = set(g.subjects(RDF.type, EF.CreditConversionRule))
    assert len(rules) >= 4
    for rule in rules:
        source, target = g.value(rule, EF.fromSystem), g.value(rule, EF.toSystem)
        assert source in systems and target in systems and source != target
        factor = g.value(rule, EF.factor)
        assert isinstance(factor, Literal) and isinstance(factor.toPython(), Decimal)
        assert factor.toPython() > 0
        assert g.value(rule, EF.basis) in {EF.Workload, EF.ContactHours, EF.Agreement}
        assert g.value(rule, EF.roundingMode) in {EF.RoundHalfUp, EF.RoundHalfEven, EF.RoundDown, EF.RoundUp}
        assert isinstance(g.value(rule, EF.decimalPlaces), Literal)
        assert g.value(rule, DCTERMS.bibliographicCitation) is not None
        assert g.value(rule, SCHEMA.description) is not None
    def notation(system: object) -> str:
        return str(system).rsplit("/", 1)[1]

    pairs = {(notation(g.value(r, EF.fromSystem)), notation(g.value(r, EF.toSystem))): r for r in rules}
    assert g.value(pairs[("SH-CREDIT", "HOURS")], EF.factor).toPython() == Decimal(16)
    assert g.value(pairs[("ECTS", "HOURS")], EF.factor).toPython() == Decimal(25)
    assert g.value(pairs[("HOURS", "ECTS")], EF.factor).toPython() == Decimal("0.04")
    assert ("SH-CREDIT", "ECTS") not in pairs  # no source gives that ratio: "no rule", never a guess


def test_index_lists_every_vocab_file() -> None:
    index = json.loads((V1 / "index.json").read_text("utf-8"))
    listed = {entry["iri"]: entry for entry in index["resources"]}
    assert listed["https://w3id.org/edufed/v1"]["file"] == "v1/context.jsonld"
    assert listed["https://w3id.org/edufed/ns"]["file"] == "v1/edufed.ttl"
    assert listed["https://w3id.org/edufed/shapes/v1"]["file"] == "v1/shapes.ttl"
    for entry in index["resources"]:
        assert (VOCAB / entry["file"]).is_file(), entry
        assert entry["mediaType"] in ("application/ld+json", "text/turtle")
    served = {entry["file"] for entry in index["resources"]}
    assert {p.relative_to(VOCAB).as_posix() for p in TURTLE_FILES} <= served
