"""Poison graphs: what canonicalization costs at its budget, and how fast a node still answers under attack.

1. CPU per core (``time.process_time``) of canonicalizing a typical record and credential, the largest ring of
   look-alike blank nodes the budget allows, and cliques that it refuses, with the work units counted; beside
   them plain ``pyld.normalize`` (URDNA2015, no budget) on the same input, stopped after ``--baseline-cap`` s.
2. A real ``edufed serve`` (SQLite): the time until a small valid credential verifies, on an idle node and while
   eight poison credentials (cliques of 40, each from its own loopback address) are in flight, and the node's
   CPU in the second after they are answered.
3. Why cooperative stopping rather than a process per job: a typical verify in a worker thread beside the same
   verify sent to a worker process (pickling and a round trip), which is what a killable pool would add to
   every verification.

Run: ``python bench/bench_poison.py [--rounds N] [--baseline-cap S]``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import copy
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from pyld import jsonld

from node.bootstrap import init_node
from node.ld import canon
from node.ld.canon import RDFC10, to_rdf
from node.ld.contexts import context_document
from node.trust.did import did_key_document
from node.trust.proofs import verify
from tests import poison

TICK = os.sysconf("SC_CLK_TCK")


def course() -> dict[str, Any]:
    return {
        "@context": ["https://w3id.org/edufed/v1", "https://w3id.org/security/data-integrity/v2"],
        "id": "https://helsinki.example/records/course-finnish-a1", "type": "Course",
        "name": {"en": "Finnish for beginners (A1)", "fi": "Suomen alkeet (A1)"},
        "description": {"en": "Everyday Finnish: greetings, shopping, transport and small talk."},
        "provider": "https://helsinki.example/",
        "address": {"type": "PostalAddress", "streetAddress": "Liisankatu 14", "addressCountry": "FI"},
        "audience": [{"type": "Audience", "audienceType": "adults"}, {"type": "Audience", "audienceType": "adults"}],
        "dateModified": "2024-05-01T12:00:00Z", "version": 3,
    }


def _loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(context_document(url))}


def plain_pyld(document: dict[str, Any]) -> str:
    return str(jsonld.normalize(document, {"algorithm": "URDNA2015", "format": "application/n-quads",
                                           "documentLoader": _loader}))


def ours(document: dict[str, Any]) -> tuple[str, int]:
    """(outcome, work units) of our canonicalization."""
    algorithm = RDFC10()
    try:
        algorithm.canonicalize(to_rdf(document))
        return "canonical", algorithm.work
    except canon.CanonicalizationBudgetError as refused:
        return "refused" if "comparisons" not in str(refused) else "refused (node map)", max(algorithm.work, 0)


def cpu(fn: Callable[[], Any], repeat: int = 1) -> float:
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def capped_baseline(document: dict[str, Any], cap: float) -> str:
    """Plain pyld's CPU time on ``document`` in a child process, or "> cap" when it is still working."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(os.getpid).result()  # the child has started
        future = pool.submit(_baseline_cpu, document)
        try:
            return f"{future.result(timeout=cap) * 1000:,.0f} ms"
        except concurrent.futures.TimeoutError:
            for child in multiprocessing.active_children():
                child.kill()
            return f"> {cap:g} s (stopped)"


def _baseline_cpu(document: dict[str, Any]) -> float:
    return cpu(lambda: plain_pyld(document))


def canonicalization_figures(cap: float) -> None:
    signer = poison.Signer()
    typical_credential = signer.credential()
    typical_credential.pop("proof")
    rows: list[tuple[str, dict[str, Any], int]] = [
        ("typical record (course, two look-alike audiences)", course(), 200),
        ("typical credential", typical_credential, 200),
        ("ring of 80 blank nodes", poison.record("ring", 80), 3),
        ("ring of 110 (about the largest allowed)", poison.record("ring", 110), 2),
        ("clique of 10 (refused)", poison.record("clique", 10), 3),
        ("clique of 40 (refused)", poison.record("clique", 40), 2),
        ("clique of 80 (refused)", poison.record("clique", 80), 2),
    ]
    print(f"canonicalization, CPU per core (budget {canon.MAX_CANONICALIZATION_WORK:,} units)")
    print(f"{'input':<52} {'ours':>10} {'work units':>11} {'outcome':<20} plain pyld (no budget)")
    for name, document, repeat in rows:
        outcome, units = ours(document)
        seconds = cpu(lambda document=document: ours(document), repeat)  # type: ignore[misc]
        print(f"{name:<52} {seconds * 1000:>8,.1f}ms {units:>11,} {outcome:<20} {capped_baseline(document, cap)}",
              flush=True)


# -- a node under attack ------------------------------------------------------------------------------------


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def timed_post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, float]:
    start = time.monotonic()
    async with http.post(url, json=body) as response:
        await response.read()
        return response.status, time.monotonic() - start


async def attack(base: str, pid: int, rounds: int) -> None:
    signer = poison.Signer()
    url = f"{base}/credentials/verify"
    valid = {"verifiableCredential": signer.credential()}
    bad = {"verifiableCredential": signer.poison_credential("clique", 40)}
    async with aiohttp.ClientSession() as http:
        idle = [(await timed_post(http, url, valid))[1] for _ in range(7)]
        print(f"\nnode: a valid credential verifies in {statistics.median(idle) * 1000:.0f} ms on an idle node "
              f"(median of 7)")
        attackers = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{2 + i}", 0)))
                     for i in range(8)]
        try:
            for round_ in range(rounds):
                cpu_before = cpu_of(pid)
                started = time.monotonic()
                flight = [asyncio.ensure_future(timed_post(client, url, bad)) for client in attackers]
                await asyncio.sleep(0.05)
                (status, answered), (health, health_time) = await asyncio.gather(
                    timed_post(http, url, valid), _get(http, f"{base}/healthz"))
                in_flight = sum(not task.done() for task in flight)
                poisons = await asyncio.gather(*flight)
                all_done = time.monotonic() - started
                spent = cpu_of(pid) - cpu_before
                await asyncio.sleep(1.0)
                after = cpu_of(pid)
                await asyncio.sleep(1.0)
                idle_cpu = cpu_of(pid) - after
                print(f"round {round_ + 1}: valid verify {status} in {answered * 1000:.0f} ms with "
                      f"{in_flight} of 8 poison requests still in flight; /healthz {health} in "
                      f"{health_time * 1000:.0f} ms; poison answers {sorted({s for s, _ in poisons})} within "
                      f"{max(t for _, t in poisons):.2f} s (all done {all_done:.2f} s, node CPU {spent:.2f} s); "
                      f"node CPU in the second after: {idle_cpu * 1000:.0f} ms", flush=True)
        finally:
            for client in attackers:
                await client.close()


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    start = time.monotonic()
    async with http.get(url) as response:
        await response.read()
        return response.status, time.monotonic() - start


async def node_figures(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "node"
        port = free_port()
        await init_node(data, base_url=f"http://127.0.0.1:{port}", name="Bench",
                        database_url=f"sqlite://{Path(folder) / 'db.sqlite3'}")
        log = (Path(folder) / "serve.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port",
                                    str(port)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{base}/healthz") as response:
                            if response.status == 200:
                                break
                    await asyncio.sleep(0.1)
            await attack(base, process.pid, rounds)
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(15)


# -- thread or process -------------------------------------------------------------------------------------


def _verify_typical(credential: dict[str, Any]) -> bool:
    return verify(credential, did_key_document).verified


def transport_figures() -> None:
    credential = poison.Signer().credential()
    repeat = 300
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        threads.submit(_verify_typical, credential).result()
        start = time.perf_counter()
        for _ in range(repeat):
            threads.submit(_verify_typical, credential).result()
        in_thread = (time.perf_counter() - start) / repeat
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_verify_typical, credential).result()
        start = time.perf_counter()
        for _ in range(repeat):
            pool.submit(_verify_typical, credential).result()
        in_process = (time.perf_counter() - start) / repeat
    print(f"\na typical credential verify, wall time per call: in a worker thread {in_thread * 1000:.2f} ms, "
          f"in a worker process {in_process * 1000:.2f} ms ({in_process / in_thread:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-cap", type=float, default=5.0)
    args = parser.parse_args()
    canonicalization_figures(args.baseline_cap)
    asyncio.run(node_figures(args.rounds))
    transport_figures()


if __name__ == "__main__":
    main()
