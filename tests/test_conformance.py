"""``edufed conformance``: our node passes every MUST; a broken node fails exactly the checks it breaks.

The broken node (tests/broken_node.py) is a real node behind a proxy that alters chosen answers; with no break
it must pass like any node, so each failure below is caused by its break alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from node.conformance.checks import CHECKS, CheckResult, Probe, run_checks
from node.conformance.report import exit_code, requirements, to_text
from node.net.client import FetchPolicy, SafeClient
from node.trust.multikey import Ed25519Key
from tests.broken_node import BREAKS, TAMPERED, broken_node, publish_sample
from tests.conftest import MakeDatabaseUrl
from tests.harness import running_node

ROOT = Path(__file__).resolve().parents[1]


async def check(base_url: str, *, allow_private: bool = True) -> list[CheckResult]:
    async with SafeClient(FetchPolicy(allow_private=allow_private, max_bytes=8 * 1024 * 1024)) as client:
        return await run_checks(Probe(base_url, client))


def failed_ids(results: list[CheckResult]) -> set[str]:
    return {i for r in results if r.status == "fail" for i in r.check.ids}


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check.name: r for r in results}


def credential(subject: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2",
                     "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Pottery for beginners",
        "credentialSubject": {"id": subject, "type": ["AchievementSubject"],
                              "achievement": {"id": "https://example.org/achievements/pottery",
                                              "type": ["Achievement"], "name": "Pottery for beginners",
                                              "criteria": {"narrative": "Threw six pots."}}},
    }


async def run_cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node.conformance.cli", *args, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def test_every_check_is_tagged() -> None:
    """Each check names requirement ids of the form SECTION-N, a keyword and a one-line title; names are unique."""
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names))
    for item in CHECKS:
        assert item.ids and all("-" in i and i.split("-")[-1].isdigit() for i in item.ids), item
        assert item.keyword in ("MUST", "SHOULD") and item.title and "\n" not in item.title
    chapters = (ROOT / "protocol_spec").glob("*.md")
    spec = "".join(p.read_text("utf-8") for p in chapters if p.name != "13-conformance.md")
    missing = {i for item in CHECKS for i in item.ids if f"[{i}]" not in spec}
    assert not missing, f"checks name requirements the specification does not define: {missing}"


async def test_our_node_passes_every_must(tmp_path: Path, database_url: str) -> None:
    """Our node with published records, a withdrawn one and an issued credential: no check fails, exit 0."""
    async with running_node(tmp_path / "node", database_url) as node:
        await publish_sample(node.http, node.base_url, node.token)
        subject = f"did:key:{Ed25519Key.generate().public_multibase}"
        async with node.http.post(f"{node.base_url}/credentials/issue", json={"credential": credential(subject)},
                                  headers=node.admin) as response:
            assert response.status == 201, await response.text()
        results = await check(node.base_url)
    report = to_text(results, node.base_url)
    assert not failed_ids(results), report
    assert exit_code(results) == 0
    statuses = {name: r.status for name, r in by_name(results).items()}
    # every check had something to examine: the withdrawn record, the feed and the status lists included
    assert set(statuses.values()) == {"pass"}, statuses
    proofs = by_name(results)["record-proofs"].evidence
    assert sum("proof verifies" in line for line in proofs) == 4  # three live records and the Tombstone


async def test_faithful_proxy_passes(tmp_path: Path, database_url: str) -> None:
    """The fixture without breaks is a conforming node, so the failures below come from the breaks alone."""
    async with broken_node(tmp_path / "broken", database_url, []) as node:
        results = await check(node.base_url)
    assert not failed_ids(results), to_text(results, node.base_url, all_evidence=False)
    assert by_name(results)["withdrawn-record"].status == "pass"


@pytest.mark.parametrize("name", sorted(BREAKS))
async def test_a_break_fails_exactly_its_requirements(tmp_path: Path, database_url: str, name: str) -> None:
    """Each break is reported as a failure of the requirements it breaks, and of no other."""
    async with broken_node(tmp_path / "broken", database_url, [name]) as node:
        results = await check(node.base_url)
    report = to_text(results, node.base_url, all_evidence=False)
    assert failed_ids(results) == BREAKS[name], report
    assert exit_code(results) == 1
    summary = requirements(results)
    assert all(summary[i]["status"] == "fail" for i in BREAKS[name])
    assert all(r.status in ("pass", "n/a") for r in results if not set(r.check.ids) & BREAKS[name]), report
    for result in results:  # a failed check says what it saw
        if result.status == "fail":
            assert any(line.startswith("FAIL ") for line in result.evidence), result


async def test_tampered_proof_names_the_record_and_the_reason(tmp_path: Path, database_url: str) -> None:
    async with broken_node(tmp_path / "broken", database_url, ["tampered-proof"]) as node:
        results = await check(node.base_url)
    failures = [line for line in by_name(results)["record-proofs"].evidence if line.startswith("FAIL")]
    assert len(failures) == 1 and f"/records/{TAMPERED}" in failures[0] and "signature" in failures[0], failures


async def test_cli_reports_and_exit_status(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    """The command as a subprocess: exit 0 on our node, 1 on the broken one (JSON lists each failed id), 2 on a
    URL that is not an origin, and 1 without --allow-private-networks (the guarded client refuses loopback)."""
    async with running_node(tmp_path / "good", await make_database_url()) as node:
        await publish_sample(node.http, node.base_url, node.token)
        status, output = await run_cli(node.base_url, "--allow-private-networks")
        assert status == 0, output
        assert "publishing node (sections 0-4): conforms" in output and "FAIL " not in output
        status, output = await run_cli(node.base_url)
        assert status == 1 and "refused" in output, output
        status, output = await run_cli(node.base_url + "/catalog", "--allow-private-networks")
        assert status == 2 and "not an origin" in output, output
    async with broken_node(tmp_path / "broken", await make_database_url(), BREAKS) as broken:
        status, output = await run_cli(broken.base_url, "--allow-private-networks", "--json")
    assert status == 1, output
    report = json.loads(output)
    assert report["conforms"] is False
    failed = {i for i, entry in report["requirements"].items() if entry["status"] == "fail"}
    assert failed == broken.expected_failures
