"""validate_document / validate_many: JSON-term paths, batch mapping, and the gaps SHACL alone cannot see."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from node.catalog.validation import ShapeViolation, validate_document, validate_many
from node.ld.contexts import vocab_dir

EXAMPLES = vocab_dir() / "v1" / "examples" / "valid"


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((EXAMPLES / f"{name}.jsonld").read_text("utf-8"))
    return document


def batch(count: int) -> list[dict[str, Any]]:
    kinds = ["course", "place", "education-event", "learning-resource", "course-instance"]
    documents = []
    for n in range(count):
        document = example(kinds[n % len(kinds)])
        document["id"] = f"{document['id']}-{n}"
        documents.append(document)
    return documents


def test_valid_record_has_no_violations() -> None:
    assert validate_document(example("place")) == []


def test_path_is_the_json_term_not_the_iri() -> None:
    document = example("course")
    del document["name"]
    violations = validate_document(document)
    assert [v.path for v in violations] == ["name"]
    violation = violations[0]
    assert isinstance(violation, ShapeViolation)
    assert violation.focus == document["id"]
    assert "name" in violation.message and violation.constraint == "MinCountConstraintComponent"


def test_nested_path_is_dotted_and_focus_is_the_record() -> None:
    document = example("place")
    document["geo"]["latitude"] = -91
    violations = validate_document(document)
    assert [(v.path, v.focus) for v in violations] == [("geo.latitude", document["id"])]


def test_geo_needs_both_coordinates() -> None:
    document = example("place")
    document["geo"] = {"type": "GeoCoordinates"}
    assert {v.path for v in validate_document(document)} == {"geo.latitude", "geo.longitude"}


def test_geo_without_type_is_still_checked() -> None:
    document = example("place")
    document["geo"] = {"latitude": 12.5, "longitude": 200}
    assert [v.path for v in validate_document(document)] == ["geo.longitude"]


def test_signed_record_validates_on_its_default_graph() -> None:
    document = example("course")
    document["@context"] = ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"]
    document["proof"] = {
        "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofPurpose": "assertionMethod",
        "verificationMethod": "did:web:example.org#z6Mk", "created": "2027-01-15T09:30:00Z",
        "proofValue": "z111",
    }
    assert validate_document(document) == []


def test_text_in_an_iri_term_is_refused_not_dropped() -> None:
    """pyld silently drops a relative IRI from the RDF; the validator must say so (pitfall: unsigned data)."""
    document = example("course")
    document["provider"] = "Felsinea Free-Time University"
    violations = validate_document(document)
    assert [(v.path, v.constraint) for v in violations] == [("provider", "IRI")]


def test_unknown_type_is_reported() -> None:
    document = example("course")
    document["type"] = "Spaceship"
    assert "type" in {v.path for v in validate_document(document)}


def test_ill_typed_date_is_a_violation_not_a_crash() -> None:
    document = example("education-event")
    document["startDate"] = "soon"
    assert "startDate" in {v.path for v in validate_document(document)}


def test_violations_are_not_repeated() -> None:
    document = example("education-event")
    document["startDate"] = "2027-04-10T10:00:00"  # no time zone: several components, one message
    violations = validate_document(document)
    assert len({(v.path, v.message) for v in violations}) == len(violations)


def test_many_with_one_bad_reports_only_that_index() -> None:
    documents = batch(50)
    documents[37] = copy.deepcopy(documents[37])
    documents[37]["version"] = 0
    result = validate_many(documents)
    assert list(result) == [37]
    assert [v.path for v in result[37]] == ["version"]
    assert result[37][0].focus == documents[37]["id"]


def test_many_keeps_blank_nodes_of_documents_apart() -> None:
    """Every place has a geo blank node labelled _:b0 by pyld: they must not merge into one node."""
    places = []
    for n in range(3):
        place = example("place")
        place["id"] = f"{place['id']}-{n}"
        places.append(place)
    places[1]["geo"] = {"type": "GeoCoordinates", "latitude": 31.2}
    result = validate_many(places)
    assert list(result) == [1]
    assert [v.path for v in result[1]] == ["geo.longitude"]


def test_many_reports_early_and_shape_violations_together() -> None:
    documents = batch(5)
    documents[0]["url"] = "not an iri"
    documents[3]["name"] = "no language"
    result = validate_many(documents)
    assert sorted(result) == [0, 3]
    assert [v.path for v in result[0]] == ["url"]
    assert [v.path for v in result[3]] == ["name"]


def test_empty_batch() -> None:
    assert validate_many([]) == {}


def test_thousand_records_in_one_run_is_fast() -> None:
    documents = batch(1000)
    started = time.perf_counter()
    assert validate_many(documents) == {}
    assert time.perf_counter() - started < 30  # measured about 3 s; generous for slow CI machines
