"""No request can exhaust a node: poison graphs, bursts of verifications, and work whose client went away.

Why: one unauthenticated credential of 30 kB (a clique of blank nodes) used to cost seconds of CPU, kept running
after its client left, and eight at once stalled every verification. Each test speaks HTTP to a real node in
this process, so "the node is idle again" is read from this process's CPU time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.config import Limits
from node.ld import canon
from node.trust.proofs import sign
from tests import poison
from tests.harness import RunningNode, running_node

BUDGET_TITLE = "Canonicalization budget exceeded"
CHALLENGE, DOMAIN = "c-poison", "verifier.example"


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url) as running:
        yield running


def client(address: str) -> aiohttp.ClientSession:
    """A client whose requests come from ``address`` (any of 127.0.0.0/8): another client to the node."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], float, dict[str, str]]:
    """(status, JSON body, seconds taken, headers)."""
    start = time.monotonic()
    async with http.post(url, json=body, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, time.monotonic() - start, dict(response.headers)


async def cpu_seconds_over(seconds: float) -> float:
    """CPU this process (the node) spends while the test waits ``seconds``."""
    before = time.process_time()
    await asyncio.sleep(seconds)
    return time.process_time() - before


async def assert_idle(within: float = 1.0) -> None:
    """The node's CPU is idle again within ``within`` seconds: nothing keeps working for a gone request."""
    await asyncio.sleep(within)
    busy = await cpu_seconds_over(0.5)
    assert busy < 0.15, f"the node still used {busy:.2f} s of CPU in 0.5 s"


def poison_requests(node: RunningNode, signer: poison.Signer, shape: str, size: int
                    ) -> list[tuple[str, str, dict[str, Any], dict[str, str] | None]]:
    """(what, url, body, headers) for the poison graph in a record, a credential and a presentation."""
    base = node.base_url
    return [
        ("record", f"{base}/api/records", poison.record(shape, size), node.admin),
        ("credential", f"{base}/credentials/verify",
         {"verifiableCredential": signer.poison_credential(shape, size)}, None),
        ("presentation", f"{base}/presentations/verify",
         {"verifiablePresentation": signer.presentation(signer.poison_credential(shape, size), CHALLENGE, DOMAIN),
          "options": {"challenge": CHALLENGE, "domain": DOMAIN}}, None),
    ]


async def test_every_poison_graph_is_refused_or_answered_within_five_seconds(node: RunningNode) -> None:
    """[SEC-17] [PRF-5]"""
    signer = poison.Signer()
    for shape in poison.SHAPES:
        for size in poison.SIZES:
            for what, url, body, headers in poison_requests(node, signer, shape, size):
                status, answer, seconds, _ = await post(node.http, url, body, headers)
                label = f"{shape} of {size} in a {what}"
                assert seconds < 5, f"{label} took {seconds:.1f} s"
                if status == 503:  # a machine busy with other work: refused at the request's work time
                    assert answer["title"] == "Work time limit exceeded", f"{label}: {answer}"
                    continue
                assert status < 500, f"{label}: {status} {answer}"
                refused = answer.get("title") == BUDGET_TITLE
                if shape == "clique":  # refused with a problem that says why
                    assert (status, refused) == (422, True), f"{label}: {status} {answer}"
                    assert answer["type"].endswith("#canonicalization-budget")
                else:  # a ring is harmless: it is canonicalized and answered on its merits
                    assert not refused, f"{label} was refused: {answer}"
    await assert_idle()


async def test_a_credential_holding_a_ring_of_eighty_blank_nodes_verifies(node: RunningNode) -> None:
    """[SEC-17] The budget counts work, not Hash N-Degree Quads calls: a ring of 80 (refused before) passes."""
    signer = poison.Signer()
    draft = signer.credential()
    draft["credentialSubject"]["knows"] = poison.nodes("ring", 80, "knows")
    ringed = sign({k: v for k, v in draft.items() if k != "proof"}, signer.key, signer.method, poison.CREATED)
    status, verdict, _, _ = await post(node.http, f"{node.base_url}/credentials/verify",
                                       {"verifiableCredential": ringed})
    assert status == 200 and verdict["verified"], verdict


async def test_a_valid_credential_verifies_while_eight_poison_credentials_are_in_flight(node: RunningNode) -> None:
    signer = poison.Signer()
    url = f"{node.base_url}/credentials/verify"
    attackers = [client(f"127.0.0.{2 + i}") for i in range(8)]
    try:
        in_flight = [asyncio.ensure_future(post(http, url, {"verifiableCredential": signer.poison_credential(
            "clique", 40)})) for http in attackers]
        await asyncio.sleep(0.2)  # let them start
        assert not all(task.done() for task in in_flight)
        async with node.http.get(f"{node.base_url}/healthz") as health:
            assert health.status == 200
        status, verdict, seconds, _ = await post(node.http, url, {"verifiableCredential": signer.credential()})
        assert status == 200 and verdict["verified"], verdict
        assert seconds < 5, f"the valid credential waited {seconds:.1f} s"
        for status, answer, seconds, _ in await asyncio.gather(*in_flight):  # refused: budget or time spent
            assert (status, answer["title"]) in ((422, BUDGET_TITLE), (503, "Work time limit exceeded")), answer
            assert seconds < 5
    finally:
        for http in attackers:
            await http.close()
    await assert_idle()


async def test_a_burst_from_one_address_gets_429_and_other_clients_are_still_served(node: RunningNode) -> None:
    """[SEC-19]"""
    signer = poison.Signer()
    url = f"{node.base_url}/credentials/verify"
    burst = [asyncio.ensure_future(post(node.http, url, {"verifiableCredential": signer.poison_credential(
        "clique", 20)})) for _ in range(12)]
    async with client("127.0.0.2") as other:
        await asyncio.sleep(0.05)
        status, verdict, _, _ = await post(other, url, {"verifiableCredential": signer.credential()})
    assert status == 200 and verdict["verified"], verdict
    answers = await asyncio.gather(*burst)
    limited = [(answer, headers) for status, answer, _, headers in answers if status == 429]
    assert len(limited) >= 12 - 2 * Limits().verify_per_client, [a[0] for a in answers]
    for answer, headers in limited:
        assert headers["Content-Type"].startswith("application/problem+json")
        assert int(headers["Retry-After"]) > 0
        assert answer["title"] == "Too many verifications from this client"
    await assert_idle()


async def test_all_clients_together_are_capped_with_503(tmp_path: Path, database_url: str) -> None:
    """[SEC-19]"""
    async with running_node(tmp_path / "node", database_url, limits=Limits(verify_total=2)) as node:
        signer = poison.Signer()
        url = f"{node.base_url}/credentials/verify"
        clients = [client(f"127.0.0.{2 + i}") for i in range(4)]
        try:
            answers = await asyncio.gather(*[post(http, url, {"verifiableCredential": signer.poison_credential(
                "clique", 20)}) for http in clients])
        finally:
            for http in clients:
                await http.close()
        overloaded = [(answer, headers) for status, answer, _, headers in answers if status == 503]
        assert overloaded, [a[:2] for a in answers]
        assert all(int(headers["Retry-After"]) > 0 for _, headers in overloaded)
        assert {answer["title"] for answer, _ in overloaded} == {"Too many verifications in progress"}
        # publishing keeps its own capacity: never counted against verifications
        status, _, _, _ = await post(node.http, f"{node.base_url}/api/records", poison.record("ring", 10),
                                     node.admin)
        assert status != 503


@pytest.fixture
def unbounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """No canonicalization budget: only the request's allowance can stop a clique now."""
    monkeypatch.setattr(canon, "MAX_CANONICALIZATION_WORK", 10**15)


@pytest.mark.usefixtures("unbounded")
async def test_work_stops_when_its_client_goes_away(node: RunningNode) -> None:
    """[SEC-18]"""
    signer = poison.Signer()
    request: Awaitable[Any] = post(node.http, f"{node.base_url}/credentials/verify",
                                   {"verifiableCredential": signer.poison_credential("clique", 12)})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(request, 0.5)  # the client gives up and closes its connection
    await assert_idle()
    status, verdict, _, _ = await post(node.http, f"{node.base_url}/credentials/verify",
                                       {"verifiableCredential": signer.credential()})
    assert status == 200 and verdict["verified"]


@pytest.mark.usefixtures("unbounded")
async def test_work_past_its_time_is_stopped_with_503(tmp_path: Path, database_url: str) -> None:
    """[SEC-18]"""
    async with running_node(tmp_path / "node", database_url, limits=Limits(work_seconds=0.5)) as node:
        signer = poison.Signer()
        status, answer, seconds, headers = await post(
            node.http, f"{node.base_url}/credentials/verify",
            {"verifiableCredential": signer.poison_credential("clique", 12)})
        assert (status, answer["title"]) == (503, "Work time limit exceeded"), answer
        assert int(headers["Retry-After"]) > 0 and seconds < 5
        await assert_idle()
