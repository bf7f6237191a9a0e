"""Canonicalization (RDFC-1.0) and RDF conversion: official vectors and the pitfalls of DESIGN §9.

Why: a proof signs the canonical N-Quads, so any byte that differs from another implementation's output (a
default algorithm, a silently dropped term, an unescaped control character) breaks interop without an error.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pyld import jsonld
from rdflib import Graph
from rdflib.compare import isomorphic

from node.errors import BadRequest, EduFedError, Unprocessable
from node.ld import canon
from node.ld.canon import canonicalize, expand
from node.ld.contexts import context_document
from node.ld.loader import UnknownContextError
from node.ld.rdf import serialize, to_dataset, to_graph
from tests import poison

VECTORS = Path(__file__).resolve().with_name("vectors")
W3C = VECTORS / "w3c-vc-di-eddsa" / "TestVectors"
OB3 = VECTORS / "1edtech-ob3"
RECORD_CONTEXT = ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _naive_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The bundled contexts without the static tag: pyld re-processes them every time."""
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(context_document(url))}


def _naive(document: dict[str, Any], **extra: Any) -> str:
    options = {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": _naive_loader}
    return str(jsonld.normalize(document, {**options, **extra}))


def _course() -> dict[str, Any]:
    return {
        "@context": RECORD_CONTEXT,
        "id": "https://a.example/records/course-1",
        "type": "Course",
        "name": {"en": "Bell ringing", "fi": "Kellonsoitto", "sv": "Klockringning"},
        "description": {"en": "Change ringing for beginners.", "fi": "Vaihtosoittoa aloittelijoille."},
        "provider": "https://a.example/",
        "hasCourseInstance": ["https://a.example/records/run-1", "https://a.example/records/run-2"],
        "geo": {"type": "GeoCoordinates", "latitude": 60.17, "longitude": 24.95},
        "address": {"type": "PostalAddress", "streetAddress": "Liisankatu 14", "addressCountry": "FI"},
        "dateModified": "2024-05-01T12:00:00Z",
        "version": 2,
    }


def test_w3c_vector_document_canonical_form() -> None:
    unsigned = _load(W3C / "unsigned.json")
    assert canonicalize(unsigned) == (W3C / "eddsa-rdfc-2022" / "canonDocDataInt.txt").read_text("utf-8")


def test_w3c_vector_proof_config_canonical_form() -> None:
    config = _load(W3C / "eddsa-rdfc-2022" / "proofConfigDataInt.json")
    assert canonicalize(config) == (W3C / "eddsa-rdfc-2022" / "proofCanonDataInt.txt").read_text("utf-8")


def test_ob3_vector_canonical_forms() -> None:
    signed = _load(OB3 / "ob3-signed.json")
    proof = signed.pop("proof")
    assert canonicalize(signed) == (OB3 / "ob3-document-canon.txt").read_text("utf-8")
    config = {"@context": signed["@context"], **{k: v for k, v in proof.items() if k != "proofValue"}}
    assert canonicalize(config) == (OB3 / "ob3-proof-canon.txt").read_text("utf-8")


@pytest.mark.parametrize("name", ["unsigned", "course", "did"])
def test_same_bytes_as_plain_pyld_urdna2015(name: str) -> None:
    """The fast path (memoized contexts, one expansion, own serializer) changes no byte."""
    document = {
        "unsigned": _load(W3C / "unsigned.json"),
        "course": _course(),
        "did": {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": "did:web:a.example",
            "verificationMethod": [{"id": "did:web:a.example#k", "type": "Multikey",
                                    "controller": "did:web:a.example", "publicKeyMultibase": "z6Mkf"}],
        },
    }[name]
    for _ in range(2):  # second run comes from the context memo
        assert canonicalize(document) == _naive(document, rdfDirection="i18n-datatype")


def test_urdna2015_not_pyld_default() -> None:
    """DESIGN §9: pyld's normalize defaults to URGNA2012, which labels blank nodes differently."""
    document = _course()
    document["audience"] = [{"type": "Audience", "audienceType": "adults"},
                            {"type": "Audience", "audienceType": "seniors"}]
    options = {"format": "application/n-quads", "documentLoader": _naive_loader}
    default = str(jsonld.normalize(document, options))
    assert canonicalize(document) == _naive(document)
    assert canonicalize(document) != default


def test_undefined_term_is_refused() -> None:
    """DESIGN §9: pyld would drop the term silently and the proof would not cover it."""
    document = _course()
    document["secretNote"] = "not in any context"
    with pytest.raises(Unprocessable) as caught:
        canonicalize(document)
    assert caught.value.title == "Undefined JSON-LD term"
    assert caught.value.field == "secretNote"
    assert "secretNote" not in _naive(document)  # what would have happened


def test_undefined_nested_term_is_refused() -> None:
    document = _course()
    document["geo"]["altitude"] = 12
    with pytest.raises(canon.UndefinedTermError) as caught:
        expand(document)
    assert caught.value.field == "altitude"


@pytest.mark.parametrize(("key", "value"), [("type", "Courze"), ("id", "records/relative")])
def test_relative_type_or_id_is_refused(key: str, value: str) -> None:
    """An undefined type or a relative id would also lose its triples without an error."""
    document = _course()
    document[key] = value
    with pytest.raises(canon.RelativeIriError):
        canonicalize(document)


def test_unknown_context_is_an_error_not_a_fetch() -> None:
    document = _course()
    document["@context"] = [*RECORD_CONTEXT, "https://example.org/unbundled/v1"]
    with pytest.raises(UnknownContextError) as caught:
        canonicalize(document)
    assert caught.value.field == "@context"


def test_invalid_json_ld_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        canonicalize({"@context": RECORD_CONTEXT, "id": "https://a.example/x", "@type": {"no": "object"}})
    with pytest.raises(EduFedError):
        canonicalize([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("char", "escaped"),
    [("\b", "\\b"), ("\t", "\\t"), ("\n", "\\n"), ("\f", "\\f"), ("\r", "\\r"), ('"', '\\"'), ("\\", "\\\\"),
     ("\x00", "\\u0000"), ("\x01", "\\u0001"), ("\x0b", "\\u000B"), ("\x1f", "\\u001F"), ("\x7f", "\\u007F")],
)
def test_control_characters_escaped_per_rdfc(char: str, escaped: str) -> None:
    """DESIGN §9: pyld writes U+0008, U+000C, ... raw; RDFC-1.0 escapes them (as jsonld.js does)."""
    document = _course()
    document["name"] = {"en": f"a{char}b"}
    line = next(q for q in canonicalize(document).splitlines() if "schema.org/name" in q)
    assert line.endswith(f'"a{escaped}b"@en .')
    assert all(ord(c) >= 0x20 and c != "\x7f" for c in line)


def test_control_characters_in_blank_node_hashes() -> None:
    """The escape also applies inside Hash First Degree Quads, which decides blank node labels."""
    document = _course()
    document["audience"] = [{"type": "Audience", "audienceType": "a\bz"},
                            {"type": "Audience", "audienceType": "a\x1fz"}]
    canonical = canonicalize(document)
    assert '"a\\bz"' in canonical and '"a\\u001Fz"' in canonical
    assert "_:c14n0" in canonical and "_:c14n1" in canonical


def test_i18n_direction_as_datatype() -> None:
    document = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:1", "type": ["VerifiableCredential"],
        "name": {"@value": "شهادة", "@language": "ar", "@direction": "rtl"},
    }
    assert '"شهادة"^^<https://www.w3.org/ns/i18n#ar_rtl>' in canonicalize(document)


def test_poison_graph_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canon, "MAX_CANONICALIZATION_WORK", 1)
    document = _course()
    document["audience"] = [{"type": "Audience"}, {"type": "Audience"}]
    with pytest.raises(canon.CanonicalizationBudgetError):
        canonicalize(document)


@pytest.mark.parametrize(("shape", "size"), [("ring", 3), ("ring", 12), ("clique", 4), ("clique", 5)])
def test_budgeted_hash_n_degree_quads_gives_pyld_s_bytes(shape: str, size: int) -> None:
    """[PRF-5] The budgeted Hash N-Degree Quads (own loop, cheap issuer copies) labels blank nodes as pyld does."""
    document = poison.record(shape, size)
    assert canonicalize(document) == _naive(document, rdfDirection="i18n-datatype")


def test_budget_counts_permutations_not_calls() -> None:
    """[SEC-17] A ring of 80 (6,400 Hash N-Degree Quads calls) passes; a small clique is refused at the budget."""
    assert canonicalize(poison.record("ring", 80)).count("_:c14n79 ") > 0
    with pytest.raises(canon.CanonicalizationBudgetError, match=r"steps of RDFC-1\.0 work"):
        canonicalize(poison.record("clique", 8))


def test_many_values_of_one_property_are_refused_before_pyld_builds_the_node_map() -> None:
    """[SEC-17] pyld compares every new value with all before it: 2,000 values would take seconds."""
    document = _course()
    document["keywords"] = {"en": [f"word {i}" for i in range(2000)]}
    with pytest.raises(canon.CanonicalizationBudgetError, match="comparisons"):
        canonicalize(document)
    document["keywords"] = {"en": [f"word {i}" for i in range(200)]}
    canonicalize(document)


def test_a_chain_deeper_than_the_stack_is_refused() -> None:
    """A chain of look-alike blank nodes recurses once per node: past Python's stack it is a refusal, not a 500."""
    def blank(i: int) -> dict[str, str]:
        return {"type": "blank node", "value": f"_:n{i}"}

    predicate = {"type": "IRI", "value": "https://example.org/next"}
    dataset = {"@default": [{"subject": blank(i), "predicate": predicate, "object": blank(i + 1)}
                            for i in range(3000)]}
    with pytest.raises(canon.CanonicalizationBudgetError):
        canon.canonicalize_dataset(dataset)


def test_caller_context_objects_are_not_memoized() -> None:
    """An embedded context the caller later mutates must be processed again, not served from the memo."""
    context: dict[str, Any] = {"note": "https://example.org/a"}
    document = {"@context": [*RECORD_CONTEXT, context], "id": "https://a.example/r", "note": "x"}
    assert "<https://example.org/a>" in canonicalize(document)
    context["note"] = "https://example.org/b"
    assert "<https://example.org/b>" in canonicalize(document)


def test_turtle_parses_back_to_the_same_graph() -> None:
    document = _course()
    document["name"]["en"] = 'Bells "and" \\ \b bobs'
    turtle = serialize(document, "turtle")
    ntriples = serialize(document, "nt")
    parsed = Graph().parse(data=turtle, format="turtle")
    assert isomorphic(parsed, Graph().parse(data=ntriples, format="nt"))
    assert len(parsed) == len(to_graph(document)) == len(ntriples.splitlines())
    assert "@prefix schema: <https://schema.org/>" in turtle


def test_rdf_formats_keep_lexical_forms_and_proof_graph() -> None:
    document = _course()
    document["proof"] = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
                         "created": "2024-05-01T12:00:00Z", "proofValue": "z1"}
    nquads = serialize(document, "nquads")
    assert '"2024-05-01T12:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>' in nquads
    assert "eddsa-rdfc-2022" in nquads and "eddsa-rdfc-2022" in serialize(document, "trig")
    assert "eddsa-rdfc-2022" not in serialize(document, "nt")
    assert "eddsa-rdfc-2022" not in serialize(document, "turtle")
    dataset = to_dataset(document)
    assert len(list(dataset.graphs())) >= 2
    with pytest.raises(BadRequest):
        serialize(document, "rdfxml")


def test_rdf_conversion_is_safe_mode_too() -> None:
    document = _course()
    document["unknownThing"] = 1
    with pytest.raises(canon.UndefinedTermError):
        serialize(document, "turtle")
