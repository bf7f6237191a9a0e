"""Credit conversion (protocol_spec section 10): the bundled rules as published, exact decimals, rounding at each
step, chains only on one basis, and "no rule" instead of a guess."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph

from node.credentials.credits import (
    Conversion,
    ConversionError,
    ConversionRule,
    ConversionStep,
    CreditRules,
    CreditSystem,
)
from node.ld.contexts import vocab_dir

CS = "https://w3id.org/edufed/credit-systems/"
RULE = CS + "rules/"
EF = "https://w3id.org/edufed/ns#"
ECTS_GUIDE = "https://doi.org/10.2766/87192"
QAA = "https://www.qaa.ac.uk/docs/qaa/quality-code/higher-education-credit-framework-for-england.pdf"
SPEC_EXAMPLE = Path(__file__).resolve().parents[1] / "protocol_spec" / "examples" / "credit-conversion-rule.json"
VALID_EXAMPLES = vocab_dir() / "v1" / "examples" / "valid"

# (rule, from, to, factor as written in the Turtle, rounding, basis, dct:source)
BUNDLED_RULES = [
    ("ECTS-HOURS", "ECTS", "HOURS", "25.0", "RoundHalfUp", "Workload", ECTS_GUIDE),
    ("ECTS-UK-CATS", "ECTS", "UK-CATS", "2.0", "RoundDown", "Agreement", QAA),
    ("HOURS-ECTS", "HOURS", "ECTS", "0.04", "RoundDown", "Workload", ECTS_GUIDE),
    ("HOURS-SH-CREDIT", "HOURS", "SH-CREDIT", "0.0625", "RoundDown", "ContactHours", None),
    ("HOURS-UK-CATS", "HOURS", "UK-CATS", "0.1", "RoundDown", "Workload", QAA),
    ("SH-CREDIT-HOURS", "SH-CREDIT", "HOURS", "16.0", "RoundHalfUp", "ContactHours", None),
    ("UK-CATS-ECTS", "UK-CATS", "ECTS", "0.5", "RoundDown", "Agreement", QAA),
    ("UK-CATS-HOURS", "UK-CATS", "HOURS", "10.0", "RoundHalfUp", "Workload", QAA),
]


def spec_rule() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SPEC_EXAMPLE.read_text("utf-8"))
    return document


def vocab_example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((VALID_EXAMPLES / name).read_text("utf-8"))
    return document


def turtle_rules(body: str) -> CreditRules:
    """A rule set from a few lines of Turtle, with systems A, B, C, D."""
    prefixes = f"@prefix ef: <{EF}> . @prefix skos: <http://www.w3.org/2004/02/skos/core#> . " \
               "@prefix dct: <http://purl.org/dc/terms/> . @prefix : <https://rules.example/> .\n"
    systems = "".join(f':{s} a ef:CreditSystem ; skos:notation "{s}" .\n' for s in "ABCD")
    return CreditRules.from_graph(Graph().parse(data=prefixes + systems + body, format="turtle"))


def turtle_rule(name: str, source: str, target: str, factor: str, basis: str = "Workload",
                rounding: str = "RoundHalfUp", places: int = 1) -> str:
    return (f":{name} a ef:CreditConversionRule ; ef:fromSystem :{source} ; ef:toSystem :{target} ; "
            f"ef:factor {factor} ; ef:basis ef:{basis} ; ef:roundingMode ef:{rounding} ; "
            f'ef:decimalPlaces {places} ; dct:bibliographicCitation "test rule {name}" .\n')


def one_to_one(rounding: str, places: int = 1, factor: str = "1") -> ConversionRule:
    return ConversionRule(iri="https://rules.example/r", source=CS + "HOURS", target=CS + "ECTS",
                          factor=Decimal(factor), rounding=rounding, decimal_places=places, basis=EF + "Workload",
                          citation="test", source_url=None, declared_by=None)


# -- the bundled vocabulary ----------------------------------------------------------------------------------------


def test_every_bundled_rule_is_read_as_published() -> None:
    """[CRED-CONV-2] [CRED-CONV-3]: factors keep their exact lexical form, and nothing else is invented."""
    rules = CreditRules.bundled().rules()
    assert [r.iri for r in rules] == [RULE + name for name, *_ in BUNDLED_RULES]
    for rule, (name, source, target, factor, rounding, basis, source_url) in zip(rules, BUNDLED_RULES, strict=True):
        assert (rule.source, rule.target) == (CS + source, CS + target), name
        assert isinstance(rule.factor, Decimal) and str(rule.factor) == factor, name
        assert (rule.rounding, rule.decimal_places, rule.basis) == (rounding, 1, EF + basis), name
        assert rule.source_url == source_url, name
        assert rule.declared_by == "https://w3id.org/edufed/credit-systems", name
        assert rule.citation, name
        assert rule.cap is None and rule.valid_from is None and rule.valid_until is None and rule.categories == ()


def test_bundled_systems_and_their_notations() -> None:
    """[CRED-CONV-1]"""
    rules = CreditRules.bundled()
    assert [s.notation for s in rules.systems()] == ["ECTS", "HOURS", "SH-CREDIT", "UK-CATS", "US-SCH"]
    assert rules.system("ECTS") == CreditSystem(CS + "ECTS", "ECTS", "ECTS credit")
    assert rules.system(CS + "UK-CATS") == rules.system("UK-CATS")
    assert rules.system("ects") is None and rules.system(CS + "NOPE") is None
    assert CreditRules.bundled() is rules  # parsed once


def test_notation_and_iri_both_work() -> None:
    """[CRED-CONV-1]"""
    rules = CreditRules.bundled()
    by_notation = rules.convert(Decimal(5), "ECTS", "HOURS")
    assert by_notation == rules.convert(Decimal(5), CS + "ECTS", CS + "HOURS")
    assert by_notation == rules.convert(Decimal(5), "ECTS", CS + "HOURS")
    assert by_notation is not None and by_notation.unit == CS + "HOURS"


# -- one step: exact product, stated rounding ----------------------------------------------------------------------


def test_ects_to_hours_and_back_is_exact() -> None:
    """[CRED-CONV-4]"""
    rules = CreditRules.bundled()
    to_hours = rules.convert(Decimal(5), "ECTS", "HOURS")
    assert to_hours is not None and to_hours.value == Decimal("125.0") and str(to_hours.value) == "125.0"
    back = rules.convert(to_hours.value, "HOURS", "ECTS")
    assert back is not None and str(back.value) == "5.0"
    hours = rules.convert(Decimal(130), "HOURS", "ECTS")
    assert hours is not None and str(hours.value) == "5.2"
    assert hours.steps == (ConversionStep(rules.rules()[2], Decimal(130), Decimal("5.2")),)
    assert hours.steps[0].rule.iri == RULE + "HOURS-ECTS"


def test_rounding_modes_differ_where_the_vocabulary_says() -> None:
    """[CRED-CONV-4]: half up / half even / down / up, on the halfway value and on either side of it."""
    table = {  # input: (RoundHalfUp, RoundHalfEven, RoundDown, RoundUp) at one place
        "2.25": ("2.3", "2.2", "2.2", "2.3"),
        "2.35": ("2.4", "2.4", "2.3", "2.4"),
        "2.21": ("2.2", "2.2", "2.2", "2.3"),
        "2.29": ("2.3", "2.3", "2.2", "2.3"),
        "2.20": ("2.2", "2.2", "2.2", "2.2"),
    }
    for value, expected in table.items():
        got = tuple(str(one_to_one(mode).apply(Decimal(value)))
                    for mode in ("RoundHalfUp", "RoundHalfEven", "RoundDown", "RoundUp"))
        assert got == expected, value
    assert str(one_to_one("RoundHalfEven", places=0).apply(Decimal("2.5"))) == "2"
    assert str(one_to_one("RoundHalfEven", places=0).apply(Decimal("3.5"))) == "4"
    # the bundled HOURS -> ECTS rounds down: 129 h is 5.16 ECTS, credited as 5.1 (half up would give 5.2)
    down = CreditRules.bundled().convert(Decimal(129), "HOURS", "ECTS")
    assert down is not None and str(down.value) == "5.1"
    assert str(replace(down.steps[0].rule, rounding="RoundHalfUp").apply(Decimal(129))) == "5.2"
    # ECTS -> HOURS rounds half up: 0.002 ECTS = 0.05 h -> 0.1 h
    up = CreditRules.bundled().convert(Decimal("0.002"), "ECTS", "HOURS")
    assert up is not None and str(up.value) == "0.1"


def test_decimals_never_go_through_float() -> None:
    """[CRED-CONV-3]: 0.1 × 3 is 0.3, and a product longer than 28 digits is not rounded before the rule says."""
    rules = turtle_rules(turtle_rule("tenth", "A", "B", "0.1", places=6)
                         + turtle_rule("long", "B", "C", "1.0000000000000000000000000000004", rounding="RoundHalfEven",
                                       places=0))
    tenth = rules.convert(Decimal(3), "A", "B")
    assert tenth is not None and tenth.value == Decimal("0.3") and str(tenth.value) == "0.300000"
    assert 0.1 * 3 != 0.3  # what float arithmetic would have done
    # 2.5 × 1.0000000000000000000000000000004 = 2.50000000000000000000000000000100 exactly: above half, so 3.
    # Rounded to the default 28 digits first, it would be exactly 2.5 and round half even to 2.
    long = rules.convert(Decimal("2.5"), "B", "C")
    assert long is not None and long.value == Decimal(3)
    assert rules.rules()[0].factor == Decimal("1.0000000000000000000000000000004")
    with pytest.raises(ConversionError) as error:
        rules.convert(0.1, "A", "B")  # type: ignore[arg-type]
    assert error.value.field == "value"


def test_a_conversion_to_the_same_unit_has_no_steps() -> None:
    assert CreditRules.bundled().convert(Decimal("2.345"), "ECTS", CS + "ECTS") == Conversion(
        Decimal("2.345"), CS + "ECTS", ())


# -- chains --------------------------------------------------------------------------------------------------------


def test_a_chain_on_one_basis_is_made_and_reports_every_step() -> None:
    """[CRED-CONV-5]: 3 US-SCH -> 6.0 ECTS (a node's rule) -> 12.0 UK-CATS (bundled), both on Agreement."""
    rules = CreditRules.bundled().with_records([spec_rule()])
    result = rules.convert(Decimal(3), "US-SCH", "UK-CATS")
    assert result is not None and str(result.value) == "12.0" and result.unit == CS + "UK-CATS"
    assert [(s.rule.iri, str(s.input), str(s.output)) for s in result.steps] == [
        ("https://learn.example.org/records/rule-us-sch-ects", "3", "6.0"),
        (RULE + "ECTS-UK-CATS", "6.0", "12.0"),
    ]
    first = result.steps[0].rule
    assert (first.citation, first.source_url, first.declared_by) == (
        "Example College, transfer-credit policy (2026), section 3: 1 semester credit hour = 2 ECTS.",
        "https://learn.example.org/policies/transfer-credit", "https://learn.example.org/")


def test_rounding_happens_at_each_step() -> None:
    """[CRED-CONV-5]: A -> B rounds down to whole credits before B -> C multiplies."""
    rules = turtle_rules(turtle_rule("ab", "A", "B", "0.5", rounding="RoundDown", places=0)
                         + turtle_rule("bc", "B", "C", "10", places=0))
    result = rules.convert(Decimal(3), "A", "C")
    assert result is not None
    assert [str(s.output) for s in result.steps] == ["1", "10"]  # not 3 × 0.5 × 10 = 15
    assert result.value == Decimal(10)


def test_a_direct_rule_wins_over_a_chain() -> None:
    """[CRED-CONV-5]: UK-CATS -> ECTS uses the direct rule (Agreement), not UK-CATS -> HOURS -> ECTS (Workload)."""
    result = CreditRules.bundled().convert(Decimal(3), "UK-CATS", "ECTS")
    assert result is not None and str(result.value) == "1.5"
    assert [s.rule.iri for s in result.steps] == [RULE + "UK-CATS-ECTS"]


def test_shortest_chain_and_deterministic_choice_among_equals() -> None:
    """[CRED-CONV-5]: the shortest chain; among equals, the rule IRIs that sort first."""
    rules = turtle_rules(
        turtle_rule("r1", "A", "C", "2") + turtle_rule("r2", "C", "D", "2")
        + turtle_rule("r3", "A", "B", "3") + turtle_rule("r0", "B", "D", "3")
        + turtle_rule("s1", "A", "B", "5", basis="Agreement") + turtle_rule("s2", "B", "C", "5", basis="Agreement")
        + turtle_rule("s3", "C", "D", "5", basis="Agreement")
    )
    result = rules.convert(Decimal(1), "A", "D")
    assert result is not None
    assert [s.rule.iri.rsplit("/", 1)[1] for s in result.steps] == ["r1", "r2"]
    assert str(result.value) == "4.0"
    # the same rules given in another order choose the same chain
    shuffled = CreditRules(rules.systems(), reversed(rules.rules()))
    assert shuffled.convert(Decimal(1), "A", "D") == result


def test_a_chain_that_would_mix_bases_is_refused() -> None:
    """[CRED-CONV-6]: SH-CREDIT -> HOURS counts contact hours, HOURS -> ECTS workload: no conversion."""
    rules = CreditRules.bundled()
    assert rules.convert(Decimal(2), "SH-CREDIT", "HOURS") is not None
    assert rules.convert(Decimal(32), "HOURS", "ECTS") is not None
    assert rules.convert(Decimal(2), "SH-CREDIT", "ECTS") is None
    assert rules.convert(Decimal(2), "SH-CREDIT", "UK-CATS") is None
    assert rules.convert(Decimal(2), "ECTS", "SH-CREDIT") is None
    # and with the US-SCH rule (Agreement), US-SCH -> HOURS would need ECTS -> HOURS (Workload): refused too
    assert rules.with_records([spec_rule()]).convert(Decimal(1), "US-SCH", "HOURS") is None


def test_no_rule_means_no_answer() -> None:
    """[CRED-CONV-6]: US-SCH has no bundled rule, and no inverse is made up from an existing rule."""
    rules = CreditRules.bundled()
    assert rules.convert(Decimal(3), "US-SCH", "ECTS") is None
    assert rules.convert(Decimal(3), "ECTS", "US-SCH") is None
    with_spec = rules.with_records([spec_rule()])
    assert with_spec.convert(Decimal(6), "ECTS", "US-SCH") is None  # the node declared US-SCH -> ECTS only
    one_way = turtle_rules(turtle_rule("ab", "A", "B", "2"))
    assert one_way.convert(Decimal(1), "B", "A") is None


# -- rules from a node's catalog -----------------------------------------------------------------------------------


def test_a_catalog_rule_record_adds_a_conversion_the_vocabulary_lacks() -> None:
    """[CRED-CONV-2]: the spec's example record, read as JSON-LD, makes US-SCH -> ECTS possible."""
    bundled = CreditRules.bundled()
    rules = bundled.with_records([spec_rule()])
    result = rules.convert(Decimal(3), "US-SCH", "ECTS")
    assert result is not None and str(result.value) == "6.0"
    rule = result.steps[0].rule
    assert (rule.factor, rule.rounding, rule.basis, rule.cap) == (Decimal("2.0"), "RoundDown", EF + "Agreement",
                                                                  Decimal(60))
    assert rule.valid_from == datetime(2026, 9, 1, tzinfo=UTC)
    assert bundled.convert(Decimal(3), "US-SCH", "ECTS") is None  # with_records made a new rule set


def test_a_catalog_system_and_rule_chain_into_the_vocabulary() -> None:
    """[CRED-CONV-5] [CRED-CONV-7]: the vocabulary's example study point (2027-2029) -> HOURS -> ECTS."""
    rules = CreditRules.bundled().with_records([
        vocab_example("credit-system.jsonld"), vocab_example("credit-conversion-rule.jsonld"),
        vocab_example("course.jsonld"),  # not a credit record: left out
    ])
    point = rules.system("CC-POINT")
    assert point is not None and point.iri == "https://example.org/records/credits-community-college"
    assert point.label == "Community college study point"
    result = rules.convert(Decimal(3), "CC-POINT", "ECTS")
    assert result is not None and str(result.value) == "2.4"
    assert [str(s.output) for s in result.steps] == ["60.0", "2.4"]
    assert rules.convert(Decimal(3), "CC-POINT", "ECTS", at=datetime(2028, 6, 1, tzinfo=UTC)) == result
    assert rules.convert(Decimal(3), "CC-POINT", "ECTS", at=datetime(2026, 6, 1, tzinfo=UTC)) is None
    assert rules.convert(Decimal(3), "CC-POINT", "ECTS", at=datetime(2030, 1, 1, tzinfo=UTC)) is None


def test_a_rule_for_some_categories_is_used_only_for_them() -> None:
    """[CRED-CONV-7]"""
    vocational = "https://w3id.org/edufed/schemes/isced-f/07"
    record = {**spec_rule(), "appliesToCategory": [vocational]}
    rules = CreditRules.bundled().with_records([record])
    assert rules.convert(Decimal(1), "US-SCH", "ECTS") is None
    assert rules.convert(Decimal(1), "US-SCH", "ECTS", category="https://w3id.org/edufed/schemes/isced-f/02") is None
    converted = rules.convert(Decimal(1), "US-SCH", "ECTS", category=vocational)
    assert converted is not None and str(converted.value) == "2.0"


def test_the_cap_holds() -> None:
    """[CRED-CONV-4]: 40 US-SCH would be 80 ECTS; the rule grants at most 60."""
    rules = CreditRules.bundled().with_records([spec_rule()])
    result = rules.convert(Decimal(40), "US-SCH", "ECTS")
    assert result is not None and str(result.value) == "60.0"


def test_a_catalog_record_cannot_take_over_a_bundled_notation() -> None:
    system = {**vocab_example("credit-system.jsonld"), "notation": "ECTS"}
    rules = CreditRules.bundled().with_records([system])
    found = rules.system("ECTS")
    assert found is not None and found.iri == CS + "ECTS"


def test_a_malformed_rule_record_is_refused_by_field() -> None:
    without_factor = {k: v for k, v in spec_rule().items() if k != "factor"}
    with pytest.raises(ConversionError) as error:
        CreditRules.bundled().with_records([without_factor])
    assert error.value.field == "factor"
    without_citation = {k: v for k, v in spec_rule().items() if k != "bibliographicCitation"}
    with pytest.raises(ConversionError) as error:
        CreditRules.bundled().with_records([without_citation])
    assert error.value.field == "bibliographicCitation"
    with pytest.raises(ConversionError) as error:
        CreditRules.bundled().with_records([{**spec_rule(), "factor": 0}])
    assert error.value.field == "factor"


def test_a_factor_written_as_a_json_number_is_read_from_its_lexical_form() -> None:
    """[CRED-CONV-3]: a JSON number becomes an xsd:double ("1.0E-1"), still read without float arithmetic."""
    rules = CreditRules.bundled().with_records([{**spec_rule(), "factor": 0.1, "decimalPlaces": 3}])
    result = rules.convert(Decimal(3), "US-SCH", "ECTS")
    assert result is not None and str(result.value) == "0.300"


# -- bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "target"), [("NOPE", "ECTS"), ("ECTS", "https://w3id.org/edufed/credit-systems/X"),
                                                ("ects", "HOURS")])
def test_an_unknown_unit_is_refused(source: str, target: str) -> None:
    """[CRED-CONV-8]"""
    with pytest.raises(ConversionError) as error:
        CreditRules.bundled().convert(Decimal(1), source, target)
    assert error.value.field == "unit" and error.value.status == 422
    assert error.value.problem()["field"] == "unit"


@pytest.mark.parametrize("value", [Decimal(-1), Decimal("-0.1"), Decimal("NaN"), Decimal("Infinity"),
                                   Decimal("1e15"), Decimal("0.0000000000001"), 1.5, "5", True])
def test_a_bad_value_is_refused(value: Any) -> None:
    """[CRED-CONV-8]"""
    with pytest.raises(ConversionError) as error:
        CreditRules.bundled().convert(value, "ECTS", "HOURS")
    assert error.value.field == "value" and error.value.status == 422
