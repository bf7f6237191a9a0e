"""A learner's transcript: credentials from any nodes, verified, their credits converted and added up.

Every line says whether the credential verified, what it states (value and credit system), what it became in
the requested unit and by which published rules (with their sources), or why it was not counted. Arithmetic is
decimal and exact up to each rule's stated rounding; with no rule between two systems a line says so and adds
nothing — a transcript never guesses.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from node.credentials.credits import Conversion, ConversionStep, CreditRules
from node.credentials.datamodel import as_list, parse_date_time
from node.credentials.verification import CredentialVerifier, Verdict
from node.errors import Unprocessable


class TranscriptRefused(Unprocessable):
    code = "transcript-refused"


def credits_of(credential: dict[str, Any]) -> tuple[Decimal, str] | None:
    """(value, credit system) stated by an Open Badges credential: ``creditsEarned`` of the subject, else the
    achievement's ``creditsAvailable``; the unit is the ``creditSystem`` next to it (EduFed credentials context)."""
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict):
        return None
    achievement: dict[str, Any] = subject["achievement"] if isinstance(subject.get("achievement"), dict) else {}
    value = subject.get("creditsEarned", achievement.get("creditsAvailable"))
    unit = subject.get("creditSystem") or achievement.get("creditSystem")
    if isinstance(value, bool) or not isinstance(value, int | float | str) or not isinstance(unit, str):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return (amount, unit) if amount.is_finite() and amount >= 0 else None


def _step_json(step: ConversionStep, output: Decimal, capped: bool) -> dict[str, Any]:
    rule = step.rule
    return {
        "rule": rule.iri, "from": rule.source, "to": rule.target, "input": str(step.input), "output": str(output),
        "factor": str(rule.factor), "roundingMode": rule.rounding, "decimalPlaces": rule.decimal_places,
        "basis": rule.basis, "declaredBy": rule.declared_by, "bibliographicCitation": rule.citation,
        "source": rule.source_url, **({"cap": str(rule.cap), "capReached": True} if capped else {}),
    }


def _with_caps(conversion: Conversion, granted: dict[str, Decimal]) -> tuple[Decimal, list[dict[str, Any]]]:
    """Replay the conversion's steps so that a rule's ``cap`` bounds what it grants over the whole transcript."""
    value = conversion.steps[0].input if conversion.steps else conversion.value
    steps = []
    for step in conversion.steps:
        output = step.rule.apply(value)
        capped = False
        if step.rule.cap is not None:
            remaining = max(Decimal(0), step.rule.cap - granted.get(step.rule.iri, Decimal(0)))
            capped = output > remaining
            output = min(output, remaining)
            granted[step.rule.iri] = granted.get(step.rule.iri, Decimal(0)) + output
        steps.append(_step_json(replace(step, input=value), output, capped))
        value = output
    return value, steps


def _awarded(document: dict[str, Any]) -> datetime | None:
    """When the credits were awarded: the credential's ``validFrom`` (VC 1.1: ``issuanceDate``); rules are
    judged at that moment."""
    return parse_date_time(document.get("validFrom", document.get("issuanceDate")), zone_required=False)


def _line(
    credential: Any, verdict: Verdict, rules: CreditRules, target: str, granted: dict[str, Decimal]
) -> tuple[dict[str, Any], Decimal]:
    document = credential if isinstance(credential, dict) else {}
    issuer = document.get("issuer")
    subject: dict[str, Any] = document.get("credentialSubject") or {}
    subject = subject if isinstance(subject, dict) else {}
    achievement: dict[str, Any] = subject["achievement"] if isinstance(subject.get("achievement"), dict) else {}
    line: dict[str, Any] = {
        "credential": document.get("id"),
        "issuer": issuer.get("id") if isinstance(issuer, dict) else issuer,
        "achievement": achievement.get("name"),
        "verified": verdict.verified,
        "counted": False,
    }
    if not verdict.verified:
        first = verdict.failures()[0]
        line["reason"] = f"not verified: {first.name}: {first.reason}"
        return line, Decimal(0)
    stated = credits_of(document)
    if stated is None:
        line["reason"] = "the credential states no credits with a credit system"
        return line, Decimal(0)
    value, unit = stated
    line["credits"] = {"value": str(value), "unit": unit}
    if rules.system(unit) is None:
        line["reason"] = f"unknown credit system {unit}"
        return line, Decimal(0)
    conversion = rules.convert(value, unit, target, at=_awarded(document))
    if conversion is None:
        line["reason"] = f"no published rule converts {unit} to {target}"
        return line, Decimal(0)
    converted, steps = _with_caps(conversion, granted)
    line.update(counted=True, converted={"value": str(converted), "unit": conversion.unit}, rules=steps)
    return line, converted


async def build_transcript(
    verifier: CredentialVerifier,
    rules: CreditRules,
    presentation: Any,
    *,
    challenge: str | None,
    domain: str | None,
    target_unit: Any,
) -> tuple[bool, dict[str, Any]]:
    """(presentation verified, transcript). An unverified presentation counts nothing."""
    target = rules.system(target_unit) if isinstance(target_unit, str) else None
    if target is None:
        known = ", ".join(s.notation for s in rules.systems())
        raise TranscriptRefused("Unknown target credit system", detail=f"use one of {known}", field="targetUnit")
    # credits count for the learner who presents them: the holder must be each credential's subject
    verdict = await verifier.verify_presentation(presentation, challenge=challenge, domain=domain,
                                                 holder_must_be_subject=True)
    body: dict[str, Any] = {
        "holder": presentation.get("holder") if isinstance(presentation, dict) else None,
        "targetUnit": target.iri,
        "presentation": {"verified": all(c.ok for c in verdict.checks),
                         "checks": [c.as_json() for c in verdict.checks]},
    }
    if not all(c.ok for c in verdict.checks):
        body["lines"], body["total"] = [], {"value": "0", "unit": target.iri}
        return False, body
    credentials = as_list(presentation.get("verifiableCredential"))
    lines: list[dict[str, Any]] = []
    total = Decimal(0)
    granted: dict[str, Decimal] = {}
    for credential, result in zip(credentials, verdict.credentials, strict=True):
        line, value = _line(credential, result, rules, target.iri, granted)
        lines.append(line)
        total += value
    counted = sum(line["counted"] for line in lines)
    body["lines"] = lines
    body["total"] = {"value": str(total), "unit": target.iri, "counted": counted, "of": len(lines),
                     "partial": counted < len(lines)}
    return True, body
