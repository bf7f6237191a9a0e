"""Credit systems, conversion rules and exact, auditable conversion between credit units.

Why it is built this way (DESIGN §5, protocol_spec section 10):

- Systems and rules are linked data: the bundled ones come from ``vocab/v1/credit-systems.ttl``, a node adds its
  own ``CreditSystem`` / ``CreditConversionRule`` catalog records; both are read as RDF, so the JSON-LD of a
  record means exactly what its signature covers.
- Arithmetic is :class:`~decimal.Decimal` only. Factors are read from their lexical form (``"0.04"``, never
  ``float``); the product is computed at unlimited precision, then rounded as the rule says. A float given as a
  value is refused: it has already lost the exact figure.
- When no rule, or no chain of rules on one basis, connects two units the answer is ``None``: EduFed never
  guesses a conversion.
"""

from __future__ import annotations

import decimal
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, SKOS
from rdflib.term import Node

from node.errors import Unprocessable
from node.ld.contexts import vocab_dir
from node.ld.rdf import to_graph

EF = Namespace("https://w3id.org/edufed/ns#")
SCHEMA = Namespace("https://schema.org/")
ROUNDING_MODES: dict[str, str] = {
    "RoundHalfUp": decimal.ROUND_HALF_UP,  # halfway goes away from zero, as ef:RoundHalfUp says
    "RoundHalfEven": decimal.ROUND_HALF_EVEN,
    "RoundDown": decimal.ROUND_DOWN,  # towards zero
    "RoundUp": decimal.ROUND_UP,  # away from zero
}
BASES = frozenset(str(EF[name]) for name in ("Workload", "ContactHours", "Agreement"))
RECORD_TYPES = frozenset({"CreditSystem", "CreditConversionRule"})
MAX_VALUE = Decimal("1e12")  # far above any learner's credits; keeps quantize() from building huge numbers
MAX_VALUE_PLACES = 12
MAX_DECIMAL_PLACES = 12
# Unlimited precision: a product of two decimals is exact, and Inexact would say otherwise.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                         traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Overflow, decimal.DivisionByZero])
_ROUNDED = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                           traps=[decimal.InvalidOperation, decimal.Overflow])


class ConversionError(Unprocessable):
    """A conversion asked with bad input (unknown unit, negative or non-finite value) or a malformed rule."""

    code = "credit-conversion"


@dataclass(frozen=True)
class CreditSystem:
    """A unit credits are counted in; ``notation`` is its short code (``ECTS``)."""

    iri: str
    notation: str
    label: str


@dataclass(frozen=True)
class ConversionRule:
    """``value(target) = value(source) × factor``, rounded to ``decimal_places`` as ``rounding`` says.

    ``cap``, ``valid_from``/``valid_until`` and ``categories`` are the rule's optional limits
    (``ef:cap``, ``schema:validFrom``/``validThrough``, ``ef:appliesToCategory``).
    """

    iri: str
    source: str
    target: str
    factor: Decimal
    rounding: str
    decimal_places: int
    basis: str
    citation: str
    source_url: str | None
    declared_by: str | None
    cap: Decimal | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    categories: tuple[str, ...] = ()

    def apply(self, value: Decimal) -> Decimal:
        """Exact product, quantized once with the rule's rounding, then held at ``cap`` (rounded down to it)."""
        exponent = Decimal(1).scaleb(-self.decimal_places)
        product = _EXACT.multiply(value, self.factor)
        result = product.quantize(exponent, rounding=ROUNDING_MODES[self.rounding], context=_ROUNDED)
        if self.cap is not None and result > self.cap:
            result = self.cap.quantize(exponent, rounding=decimal.ROUND_DOWN, context=_ROUNDED)
        return result

    def applies(self, at: datetime | None = None, category: str | None = None) -> bool:
        """Whether the rule may be used at ``at`` (not checked when None) for credits of ``category``.

        A rule limited to categories never applies to credits whose category is not known.
        """
        if at is not None:
            if self.valid_from is not None and at < self.valid_from:
                return False
            if self.valid_until is not None and at > self.valid_until:
                return False
        return not self.categories or category in self.categories


@dataclass(frozen=True)
class ConversionStep:
    """One rule applied: what went in and what came out (after rounding)."""

    rule: ConversionRule
    input: Decimal
    output: Decimal


@dataclass(frozen=True)
class Conversion:
    """A converted value in ``unit`` (a system IRI) and every step that made it, for the transcript."""

    value: Decimal
    unit: str
    steps: tuple[ConversionStep, ...]


# -- reading RDF ---------------------------------------------------------------------------------------------------


def _objects(graph: Graph, subject: Node, predicate: URIRef) -> list[Node]:
    return sorted(graph.objects(subject, predicate), key=str)


def _one(graph: Graph, subject: Node, predicate: URIRef, field: str, required: bool = True) -> Node | None:
    values = _objects(graph, subject, predicate)
    if len(values) > 1:
        raise ConversionError("Malformed credit record", detail=f"{subject}: more than one {field}", field=field)
    if not values:
        if required:
            raise ConversionError("Malformed credit record", detail=f"{subject}: {field} is missing", field=field)
        return None
    return values[0]


def _iri(node: Node | None, subject: Node, field: str) -> str | None:
    if node is None:
        return None
    if not isinstance(node, URIRef):
        raise ConversionError("Malformed credit record", detail=f"{subject}: {field} must be an IRI", field=field)
    return str(node)


def _decimal(node: Node | None, subject: Node, field: str, positive: bool) -> Decimal | None:
    """A number from its lexical form (xsd:decimal, xsd:integer or xsd:double), never through float."""
    if node is None:
        return None
    try:
        if not isinstance(node, Literal):
            raise decimal.InvalidOperation
        number = Decimal(str(node).strip())
    except decimal.InvalidOperation:
        raise ConversionError("Malformed credit record", detail=f"{subject}: {field} is not a number",
                              field=field) from None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        raise ConversionError("Malformed credit record", detail=f"{subject}: {field} must be a finite number "
                              + ("greater than 0" if positive else "of 0 or more"), field=field)
    return number


def _datetime(node: Node | None, subject: Node, field: str) -> datetime | None:
    if node is None:
        return None
    try:
        return datetime.fromisoformat(str(node))
    except ValueError:
        raise ConversionError("Malformed credit record", detail=f"{subject}: {field} is not a date-time",
                              field=field) from None


def _label(graph: Graph, subject: Node, notation: str) -> str:
    names = [n for n in _objects(graph, subject, SCHEMA.name) if isinstance(n, Literal)]
    for preferred in ("en", None):
        for name in names:
            if name.language == preferred:
                return str(name)
    return str(names[0]) if names else notation


def _systems(graph: Graph) -> list[CreditSystem]:
    found = []
    for subject in sorted(set(graph.subjects(RDF.type, EF.CreditSystem)), key=str):
        iri = _iri(subject, subject, "id")
        assert iri is not None
        notation = _one(graph, subject, SKOS.notation, "notation")
        found.append(CreditSystem(iri, str(notation), _label(graph, subject, str(notation))))
    return found


def _rule(graph: Graph, subject: Node) -> ConversionRule:
    def one(predicate: URIRef, field: str, required: bool = True) -> Node | None:
        return _one(graph, subject, predicate, field, required)

    iri = _iri(subject, subject, "id")
    source = _iri(one(EF.fromSystem, "fromSystem"), subject, "fromSystem")
    target = _iri(one(EF.toSystem, "toSystem"), subject, "toSystem")
    factor = _decimal(one(EF.factor, "factor"), subject, "factor", positive=True)
    mode = _iri(one(EF.roundingMode, "roundingMode"), subject, "roundingMode")
    rounding = (mode or "").removeprefix(str(EF))
    if rounding not in ROUNDING_MODES:
        raise ConversionError("Malformed credit record", detail=f"{subject}: unknown roundingMode {mode}",
                              field="roundingMode")
    basis = _iri(one(EF.basis, "basis"), subject, "basis")
    if basis not in BASES:
        raise ConversionError("Malformed credit record", detail=f"{subject}: unknown basis {basis}", field="basis")
    places = _decimal(one(EF.decimalPlaces, "decimalPlaces"), subject, "decimalPlaces", positive=False)
    if places is None or places != places.to_integral_value() or places > MAX_DECIMAL_PLACES:
        raise ConversionError("Malformed credit record", detail=f"{subject}: decimalPlaces must be an integer "
                              f"from 0 to {MAX_DECIMAL_PLACES}", field="decimalPlaces")
    citations = [str(c) for c in _objects(graph, subject, DCTERMS.bibliographicCitation)]
    if not citations:
        raise ConversionError("Malformed credit record", detail=f"{subject}: bibliographicCitation is missing",
                              field="bibliographicCitation")
    sources = _objects(graph, subject, DCTERMS.source)
    declared = _objects(graph, subject, EF.declaredBy)
    assert iri is not None and source is not None and target is not None and factor is not None
    return ConversionRule(
        iri=iri, source=source, target=target, factor=factor, rounding=rounding, decimal_places=int(places),
        basis=basis, citation="; ".join(citations),
        source_url=_iri(sources[0], subject, "source") if sources else None,
        declared_by=_iri(declared[0], subject, "declaredBy") if declared else None,
        cap=_decimal(one(EF.cap, "cap", False), subject, "cap", positive=False),
        valid_from=_datetime(one(SCHEMA.validFrom, "validFrom", False), subject, "validFrom"),
        valid_until=_datetime(one(SCHEMA.validThrough, "validUntil", False), subject, "validUntil"),
        categories=tuple(str(c) for c in _objects(graph, subject, EF.appliesToCategory)),
    )


def _rules(graph: Graph) -> list[ConversionRule]:
    return [_rule(graph, s) for s in sorted(set(graph.subjects(RDF.type, EF.CreditConversionRule)), key=str)]


def _types(document: dict[str, Any]) -> set[str]:
    kind = document.get("type", document.get("@type"))
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


# -- the rule set --------------------------------------------------------------------------------------------------


def _checked_value(value: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ConversionError("Credit value must be exact", detail=f"expected a decimal, got {type(value).__name__}"
                              " (a float has already lost the exact figure)", field="value")
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        raise ConversionError("Invalid credit value", detail="a credit value is a finite number of 0 or more",
                              field="value")
    exponent = number.as_tuple().exponent
    if number >= MAX_VALUE or (isinstance(exponent, int) and -exponent > MAX_VALUE_PLACES):
        raise ConversionError("Invalid credit value", detail=f"a credit value is below {MAX_VALUE} with at most "
                              f"{MAX_VALUE_PLACES} decimal places", field="value")
    return number


class CreditRules:
    """The credit systems and conversion rules a node knows: the bundled vocabulary plus its catalog's records."""

    def __init__(self, systems: Iterable[CreditSystem] = (), rules: Iterable[ConversionRule] = ()) -> None:
        self._systems: dict[str, CreditSystem] = {}
        self._notations: dict[str, CreditSystem] = {}
        for system in systems:
            self._systems[system.iri] = system
            # the first system to claim a notation keeps it: a catalog record cannot take over "ECTS"
            self._notations.setdefault(system.notation, system)
        self._rules: dict[str, ConversionRule] = {rule.iri: rule for rule in rules}

    @classmethod
    def bundled(cls) -> CreditRules:
        """The systems and rules of ``vocab/v1/credit-systems.ttl`` (parsed once)."""
        return _bundled()

    @classmethod
    def from_graph(cls, graph: Graph) -> CreditRules:
        """Every ``ef:CreditSystem`` and ``ef:CreditConversionRule`` of an RDF graph."""
        return cls(_systems(graph), _rules(graph))

    def with_records(self, documents: list[dict[str, Any]]) -> CreditRules:
        """A new rule set that adds the ``CreditSystem`` / ``CreditConversionRule`` JSON-LD records given.

        Other record types are skipped. Each record is read as RDF on its own (its proof left out); a record
        with the IRI of a known rule replaces it.
        """
        systems = list(self._systems.values())
        rules = dict(self._rules)
        for document in documents:
            if not _types(document) & RECORD_TYPES:
                continue
            graph = to_graph(document)
            systems.extend(_systems(graph))
            rules.update((rule.iri, rule) for rule in _rules(graph))
        return CreditRules(systems, rules.values())

    def systems(self) -> list[CreditSystem]:
        """Every known system, by IRI."""
        return sorted(self._systems.values(), key=lambda s: s.iri)

    def system(self, iri_or_notation: str) -> CreditSystem | None:
        """The system with this IRI or notation (``"ECTS"``), or None."""
        return self._systems.get(iri_or_notation) or self._notations.get(iri_or_notation)

    def rules(self) -> list[ConversionRule]:
        """Every known rule, by IRI."""
        return sorted(self._rules.values(), key=lambda r: r.iri)

    def _unit(self, unit: str) -> CreditSystem:
        system = self.system(unit)
        if system is None:
            raise ConversionError("Unknown credit unit", detail=f"{unit!r} is no known credit system", field="unit")
        return system

    def convert(self, value: Decimal, source: str, target: str, *, at: datetime | None = None,
                category: str | None = None) -> Conversion | None:
        """``value`` in ``source`` as ``target`` credits, or None when no rule connects the two.

        A direct rule is used when there is one; otherwise the shortest chain of rules that all have the same
        basis (chaining contact hours with workload would be a guess, so it is not done). Among chains of equal
        length the one whose rule IRIs sort first wins. Rounding is applied at each step, as each rule states,
        and every step is reported. Units are system IRIs or notations; ``at`` and ``category`` leave out rules
        not valid then or not for that category (``at=None``: validity dates are not checked).
        """
        number = _checked_value(value)
        start, goal = self._unit(source), self._unit(target)
        if start.iri == goal.iri:
            return Conversion(number, goal.iri, ())
        usable = [rule for rule in self.rules() if rule.applies(at, category)]
        chains = (_shortest(start.iri, goal.iri, [r for r in usable if r.basis == basis]) for basis in BASES)
        found = [chain for chain in chains if chain]
        if not found:
            return None
        chain = min(found, key=lambda c: (len(c), [r.iri for r in c]))
        steps = []
        for rule in chain:
            output = rule.apply(number)
            steps.append(ConversionStep(rule, number, output))
            number = output
        return Conversion(number, goal.iri, tuple(steps))


def _shortest(start: str, goal: str, rules: list[ConversionRule]) -> list[ConversionRule] | None:
    """Breadth-first search with edges in IRI order: the first path found is the shortest and sorts first."""
    outgoing: dict[str, list[ConversionRule]] = {}
    for rule in sorted(rules, key=lambda r: r.iri):
        outgoing.setdefault(rule.source, []).append(rule)
    came_by: dict[str, ConversionRule | None] = {start: None}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if here == goal:
            path: list[ConversionRule] = []
            while (arrived_by := came_by[here]) is not None:
                path.append(arrived_by)
                here = arrived_by.source
            return path[::-1]
        for rule in outgoing.get(here, []):
            if rule.target not in came_by:
                came_by[rule.target] = rule
                queue.append(rule.target)
    return None


@cache
def _bundled() -> CreditRules:
    graph = Graph().parse(vocab_dir() / "v1" / "credit-systems.ttl", format="turtle")
    return CreditRules.from_graph(graph)
