"""The CI gate over the W3C suites' summary: which results fail the build (tests/w3c/check.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.w3c.check import SUITES, expected_failures, main

HOOK = 'Suite EduFed "before all" hook for "first test"'


def summary(**changes: dict[str, Any]) -> dict[str, Any]:
    suites = {name: {"passed": 3, "failed": 0, "passes": [f"{name} ok"], "failures": [], "hook_failures": [],
                     "errors": {}} for name in SUITES}
    for name, change in changes.items():
        suites[name.replace("_", "-")].update(change)
    return {"passed": 9, "failed": 0, "suites": suites}


def run(tmp_path: Path, result: dict[str, Any], listed: str = "") -> int:
    (tmp_path / "summary.json").write_text(json.dumps(result), "utf-8")
    (tmp_path / "expected.txt").write_text(listed, "utf-8")
    return main(["check.py", str(tmp_path / "summary.json"), str(tmp_path / "expected.txt")])


def test_only_listed_failures_and_setup_steps_pass_the_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    eddsa = "vc-di-eddsa-test-suite"
    assert run(tmp_path, summary()) == 0
    failing = {eddsa: {"failures": ["Suite EduFed a test"], "errors": {"Suite EduFed a test": "boom"}}}
    assert run(tmp_path, summary(**failing)) == 1
    assert "UNEXPECTED vc-di-eddsa-test-suite: Suite EduFed a test" in capsys.readouterr().out
    assert run(tmp_path, summary(**failing), "Suite EduFed a test | remote contexts are never fetched\n") == 0
    assert run(tmp_path, summary(**{eddsa: {"hook_failures": [HOOK]}})) == 1
    assert "setup step failed" in capsys.readouterr().out
    result = summary()
    del result["suites"][eddsa]
    assert run(tmp_path, result) == 1
    assert run(tmp_path, summary(**{eddsa: {"error": "no result from mocha"}})) == 1
    assert run(tmp_path, summary(**{eddsa: {"passed": 0}})) == 1
    (tmp_path / "missing.json").unlink(missing_ok=True)
    assert main(["check.py", str(tmp_path / "missing.json"), str(tmp_path / "expected.txt")]) == 1


def test_the_list_itself_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "expected.txt"
    path.write_text("a title without a policy\n", "utf-8")
    with pytest.raises(SystemExit, match=r"title \| policy"):
        expected_failures(path)
    path.write_text("".join(f"title {n} | policy\n" for n in range(6)), "utf-8")
    with pytest.raises(SystemExit, match="at most 5"):
        expected_failures(path)
    assert len(expected_failures(Path("tests/w3c/expected-failures.txt"))) <= 5
