"""Conformance reports: per check (with its evidence), per requirement id, per conformance class; text or JSON.

A requirement fails when any check tagged with it fails, passes when one passes and none fails, and is not
applicable otherwise. A node conforms to a class when no MUST check of that class fails; the exit status is
non-zero exactly when a MUST check fails, so CI can gate on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from node.conformance.checks import CheckResult

CLASS_NAMES = {"publishing": "publishing node (sections 0-4)", "federating": "federating node (sections 5-7)",
               "credentials": "credentials and credit bank (sections 9-10, optional)"}
_MARKS = {"pass": "PASS", "fail": "FAIL", "n/a": "N/A "}
_RANK = {"fail": 2, "pass": 1, "n/a": 0}


def must_failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == "fail" and r.check.keyword == "MUST"]


def exit_code(results: list[CheckResult]) -> int:
    return 1 if must_failures(results) else 0


def requirements(results: list[CheckResult]) -> dict[str, dict[str, Any]]:
    """Requirement id -> its status, keyword and the checks that examined it (in order of first appearance)."""
    summary: dict[str, dict[str, Any]] = {}
    for result in results:
        for requirement in result.check.ids:
            entry = summary.setdefault(requirement, {"status": "n/a", "keyword": "SHOULD", "checks": []})
            if _RANK[result.status] > _RANK[entry["status"]]:
                entry["status"] = result.status
            if result.check.keyword == "MUST":
                entry["keyword"] = "MUST"
            entry["checks"].append(result.check.name)
    return summary


def classes(results: list[CheckResult]) -> dict[str, dict[str, Any]]:
    """Class -> whether the node conforms, with its counts of passed, failed and not applicable checks."""
    summary: dict[str, dict[str, Any]] = {}
    for name in CLASS_NAMES:
        mine = [r for r in results if r.check.conformance_class == name]
        if not mine:
            continue
        counts = {status: sum(1 for r in mine if r.status == status) for status in ("pass", "fail", "n/a")}
        applicable = any(r.status != "n/a" for r in mine)
        summary[name] = {"conforms": applicable and not must_failures(mine), "applicable": applicable, **counts}
    return summary


def to_json(results: list[CheckResult], base_url: str) -> str:
    document = {
        "node": base_url,
        "checkedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conforms": not must_failures(results),
        "classes": classes(results),
        "requirements": requirements(results),
        "checks": [r.as_json() for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


def to_text(results: list[CheckResult], base_url: str, *, all_evidence: bool = True) -> str:
    """One line per check, its evidence indented below (only for checks that did not pass unless
    ``all_evidence``), then the classes and the MUST failures."""
    lines = [f"EduFed conformance of {base_url}", ""]
    for result in results:
        ids = " ".join(f"[{i}]" for i in result.check.ids)
        lines.append(f"{_MARKS[result.status]}  {result.check.keyword:<6} {ids} {result.check.title}")
        if all_evidence or result.status != "pass":
            lines.extend(f"        {line}" for line in result.evidence)
    counts = {status: sum(1 for r in results if r.status == status) for status in ("pass", "fail", "n/a")}
    lines += ["", f"{counts['pass']} passed, {counts['fail']} failed, {counts['n/a']} not applicable"]
    for name, entry in classes(results).items():
        verdict = "conforms" if entry["conforms"] else "not applicable" if not entry["applicable"] else "FAILS"
        lines.append(f"  {CLASS_NAMES[name]}: {verdict}")
    failed = must_failures(results)
    if failed:
        lines.append("MUST failures: " + ", ".join(" ".join(r.check.ids) + f" ({r.check.name})" for r in failed))
    return "\n".join(lines)
