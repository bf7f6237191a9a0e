"""Compare a W3C suites run (``../shared/w3c-suites/run.sh --json FILE``) with the failures the project expects.

Usage: ``python tests/w3c/check.py SUMMARY_JSON [EXPECTED_FAILURES]`` (default: ``expected-failures.txt`` next to
this file). Exits 1 when a suite did not report, when a setup step ("before all" hook) failed, or when a test
failed that the list does not name; a listed title that passed is printed so that the list can be shortened.

Each line of the list is a test's full mocha title, `` | ``, and the deliberate policy behind the failure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

EXPECTED = Path(__file__).with_name("expected-failures.txt")
MAX_EXPECTED = 5
SUITES = ("vc-data-model-2.0-test-suite", "vc-di-eddsa-test-suite", "vc-bitstring-status-list-test-suite")


def expected_failures(path: Path) -> dict[str, str]:
    """Title -> policy; a line without `` | policy`` or more than five lines are errors in the list itself."""
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        title, separator, policy = line.partition(" | ")
        if not separator or not title.strip() or not policy.strip():
            raise SystemExit(f"{path}:{number}: expected 'full mocha title | policy'")
        listed[title.strip()] = policy.strip()
    if len(listed) > MAX_EXPECTED:
        raise SystemExit(f"{path}: {len(listed)} expected failures; at most {MAX_EXPECTED} are allowed")
    return listed


def problems(summary: dict[str, object], listed: dict[str, str]) -> tuple[list[str], list[str]]:
    """(what fails the check, listed titles that passed)."""
    found: list[str] = []
    suites = summary.get("suites")
    if not isinstance(suites, dict):
        return ["the summary has no suites"], []
    passed_titles: set[str] = set()
    for name in SUITES:
        result = suites.get(name)
        if not isinstance(result, dict):
            found.append(f"{name}: did not run")
            continue
        if result.get("error"):
            found.append(f"{name}: {result['error']}")
        if not result.get("passed"):
            found.append(f"{name}: no test passed")
        passed_titles.update(result.get("passes", []))
        errors = result.get("errors", {})
        for hook in result.get("hook_failures", []):
            if hook not in listed:
                found.append(f"{name}: setup step failed: {hook}\n      {errors.get(hook, '')}")
        for title in result.get("failures", []):
            if title not in listed:
                found.append(f"{name}: {title}\n      {errors.get(title, '')}")
    return found, sorted(passed_titles & set(listed))


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        summary = json.loads(Path(argv[1]).read_text("utf-8"))
    except (OSError, ValueError) as error:
        print(f"UNEXPECTED no summary from run.sh: {error}")
        return 1
    listed = expected_failures(Path(argv[2]) if len(argv) == 3 else EXPECTED)
    found, stale = problems(summary, listed)
    for title in stale:
        print(f"note: listed as an expected failure but passed (remove it from the list): {title}")
    print(f"W3C suites: {summary.get('passed')} passed, {summary.get('failed')} failed "
          f"({len(listed)} failures expected by policy)")
    for problem in found:
        print(f"UNEXPECTED {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
