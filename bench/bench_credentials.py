"""The credit bank's throughput: issuing, verifying with warm caches, and a 20-credential transcript.

A node is initialised in a temporary folder (SQLite by default) and served on a loopback port, so the verifier
fetches the issuer's DID document and status lists over real HTTP once and then serves them from its caches
(status cache age set to an hour). Measured, on one core (the process is pinned to one CPU unless ``--no-pin``):

- issuance through ``CreditBank.issuer.issue``: random status index, signing, and the database write;
- verification through ``CreditVerifier.verify_credential`` (every check: structure, issuer, proof, validity,
  status, schema), cycling over the issued credentials; beside it, in the same run, the naive baseline (the
  proof alone: plain ``pyld.normalize`` URDNA2015 with a non-caching loader, as ``bench_proofs.py`` does, then
  Ed25519) and the limit (``Ed25519PublicKey.verify`` of a 64-byte message, which is what a proof signs);
  each rate is the best of three spans, as the machine may be shared;
- ``CreditBank.transcript`` of a holder-signed presentation of 20 credentials to HOURS, in milliseconds:
  the median of warm runs, and cold runs (a fresh verifier: DID document and status lists fetched over HTTP).

Usage: ``python bench/bench_credentials.py [N] [--seconds S] [--runs R] [--database-url URL]`` (an empty
PostgreSQL database for ``--database-url``). Add ``--profile`` for where warm verification spends its time.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiohttp import web
from bench_proofs import naive_hash
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.app import create_app
from node.bootstrap import init_node
from node.catalog.records import node_signer
from node.config import CredentialPolicy, NodeConfig
from node.credentials.service import CreditBank
from node.credentials.wallet import Wallet
from node.net.did_resolver import DidResolver
from node.trust.keyring import KeyRing
from node.trust.multikey import decode_multibase, verify_signature
from node.trust.proofs import verify
from node.web.services import SERVICES, Services

VC2 = "https://www.w3.org/ns/credentials/v2"
OB3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EDUFED_CREDENTIALS = "https://w3id.org/edufed/credentials/v1"
SYSTEMS = "https://w3id.org/edufed/credit-systems/"
TRANSCRIPT_SIZE = 20
CHALLENGE, DOMAIN = "bench-challenge", "transcripts.example"


def achievement_credential(subject: str, n: int) -> dict[str, Any]:
    """An issue request as an institution sends it (the node adds id, issuer, validFrom, status, proof)."""
    return {
        "@context": [VC2, OB3, EDUFED_CREDENTIALS],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": f"Evening course {n}",
        "credentialSubject": {
            "id": subject,
            "type": ["AchievementSubject"],
            "achievement": {
                "id": f"https://bench.example/achievements/course-{n}",
                "type": ["Achievement"],
                "name": f"Evening course {n}",
                "criteria": {"narrative": "Attended every session and passed the final task."},
                "creditsAvailable": 1 + n % 5 / 2,
                "creditSystem": SYSTEMS + "ECTS",
            },
        },
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def idle_ticks() -> dict[int, int]:
    """Idle time of each CPU so far, from /proc/stat (Linux)."""
    ticks = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks[int(name[3:])] = int(fields[3])
    return ticks


def pin_to_one_cpu() -> str:
    """Run on one CPU (threads included: the verifier's to_thread calls and the SQLite thread), the one that
    was idlest over half a second, so a busy neighbour does not share it."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity here)"
    allowed = os.sched_getaffinity(0)
    try:
        before = idle_ticks()
        time.sleep(0.5)
        after = idle_ticks()
        cpu = max(allowed, key=lambda c: after.get(c, 0) - before.get(c, 0))
    except (OSError, ValueError):
        cpu = min(allowed)
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def rate(action: Callable[[int], object], seconds: float, rounds: int = 3) -> float:
    """Calls per second of ``action(i)`` for i = 0, 1, …: the best of ``rounds`` spans sharing ``seconds``, so
    a busy neighbour's burst lowers one span, not the figure."""
    action(0)
    best, count = 0.0, 0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / rounds:
            action(count)
            count, done = count + 1, done + 1
        best = max(best, done / elapsed)
    return best


async def async_rate(action: Callable[[int], Awaitable[object]], seconds: float, rounds: int = 3) -> float:
    best, count = 0.0, 0
    for _ in range(rounds):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / rounds:
            await action(count)
            count, done = count + 1, done + 1
        best = max(best, done / elapsed)
    return best


def ed25519_limit(seconds: float) -> float:
    """Bare Ed25519 verifications per second of a 64-byte message (two SHA-256 digests, as in a proof)."""
    private = Ed25519PrivateKey.generate()
    public, message = private.public_key(), os.urandom(64)
    signature = private.sign(message)
    return rate(lambda _: public.verify(signature, message), seconds)


def naive_verifier(credentials: list[dict[str, Any]], did_document: dict[str, Any]) -> Callable[[int], bool]:
    """The proof alone, checked the plain way: pyld URDNA2015 without context caching, then Ed25519."""
    listed = {m["publicKeyMultibase"] for m in did_document["verificationMethod"]}

    def check(i: int) -> bool:
        credential = credentials[i % len(credentials)]
        proof = credential["proof"]
        public = proof["verificationMethod"].split("#", 1)[1]
        assert public in listed
        return verify_signature(public, naive_hash(credential, proof), decode_multibase(proof["proofValue"]))

    return check


def fresh_bank(config: NodeConfig, services: Services) -> CreditBank:
    """A credit bank with empty caches (no DID document, no status list): what a first request meets."""
    client = services.federation.client
    resolver = DidResolver(client, services.store, allow_private=True)
    keyring = KeyRing(config.keys_dir)
    return CreditBank(config, services.store, lambda: node_signer(config.base_url, keyring), client, resolver)


async def transcript_ms(bank: CreditBank, presentation: dict[str, Any]) -> float:
    start = time.perf_counter()
    verified, body = await bank.transcript(presentation, challenge=CHALLENGE, domain=DOMAIN, target_unit="HOURS")
    elapsed = (time.perf_counter() - start) * 1000
    assert verified and body["total"]["counted"] == TRANSCRIPT_SIZE, body
    return elapsed


async def run(args: argparse.Namespace) -> None:
    pinned = "not pinned" if args.no_pin else pin_to_one_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        config, _ = await init_node(Path(tmp) / "node", base_url=f"http://127.0.0.1:{port}", name="Bench",
                                    database_url=args.database_url, allow_private_networks=True)
        config = replace(config, credentials=CredentialPolicy(status_cache_seconds=3600.0))
        app = create_app(config)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            services = app[SERVICES]
            await measure(args, config, services, Path(tmp), pinned)
        finally:
            await runner.cleanup()


async def measure(args: argparse.Namespace, config: NodeConfig, services: Services, tmp: Path, pinned: str) -> None:
    bank = services.credit_bank
    wallet = Wallet(tmp / "wallet")
    wallet.init()

    # Issuance. The first credential opens a status group (two lists signed): not counted.
    started = time.perf_counter()
    first = await bank.issuer.issue(achievement_credential(wallet.did, 0))
    first_issue_ms = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    issued = [await bank.issuer.issue(achievement_credential(wallet.did, n)) for n in range(1, args.count + 1)]
    issue_seconds = time.perf_counter() - started
    credentials = [first, *issued]
    assert len({c["credentialStatus"][0]["statusListIndex"] for c in credentials}) == len(credentials)

    # Transcript, cold: each run a verifier that has fetched nothing yet.
    chosen = credentials[:TRANSCRIPT_SIZE]
    for credential in chosen:
        wallet.add(credential)
    presentation = wallet.present(CHALLENGE, DOMAIN, [c["id"] for c in chosen])
    cold = [await transcript_ms(fresh_bank(config, services), presentation) for _ in range(args.cold_runs)]
    # Verification, first call (cold: DID document and both status lists over HTTP), then warm.
    started = time.perf_counter()
    assert (await bank.verifier.verify_credential(credentials[0])).verified
    first_verify_ms = (time.perf_counter() - started) * 1000

    async def verify_one(i: int) -> None:
        verdict = await bank.verifier.verify_credential(credentials[i % len(credentials)])
        assert verdict.verified, verdict.as_json()

    await verify_one(0)
    ours_verify = await async_rate(verify_one, args.seconds)
    did_document = services.did_document()
    resolve = {did_document["id"]: did_document}.__getitem__

    def proof_one(i: int) -> None:
        assert verify(credentials[i % len(credentials)], resolve, expected_controller=did_document["id"]).verified

    proof_alone = rate(proof_one, args.seconds)
    naive_verify = rate(naive_verifier(credentials, did_document), args.seconds)
    limit = ed25519_limit(args.seconds)
    warm = [await transcript_ms(bank, presentation) for _ in range(args.runs)]

    if args.profile:  # the proof runs in a worker thread under the verifier: profile both sides
        for title, action in (("verifier (event loop side)", None), ("proof (worker thread side)", proof_one)):
            profiler = cProfile.Profile()
            profiler.enable()
            if action is None:
                await async_rate(verify_one, args.seconds)
            else:
                rate(action, args.seconds)
            profiler.disable()
            print(f"--- {title}")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)

    issue_rate = args.count / issue_seconds
    print(f"{'figure':<44}{'ours':>12}{'baseline':>12}{'ratio':>8}")
    print(f"{'issue (index, sign, DB write) /s':<44}{issue_rate:>12.0f}{'':>12}{'':>8}")
    print(f"{'verify, warm caches, every check /s':<44}{ours_verify:>12.0f}{naive_verify:>12.0f}"
          f"{ours_verify / naive_verify:>7.1f}x")
    print(f"{'  of which the proof alone (ours) /s':<44}{proof_alone:>12.0f}{naive_verify:>12.0f}"
          f"{proof_alone / naive_verify:>7.1f}x")
    print(f"{'Ed25519 verify limit (64-byte message) /s':<44}{limit:>12.0f}")
    print(f"{f'transcript of {TRANSCRIPT_SIZE}, warm, median ms':<44}{statistics.median(warm):>12.1f}")
    print(f"{f'transcript of {TRANSCRIPT_SIZE}, cold, median ms':<44}{statistics.median(cold):>12.1f}")
    print(f"issued {args.count} in {issue_seconds:.2f} s ({config.effective_database_url.split(':', 1)[0]}); "
          f"the first issue, which opens a status group, took {first_issue_ms:.0f} ms")
    print(f"verify is {limit / ours_verify:.0f}x below the bare Ed25519 limit "
          f"({ours_verify / limit:.1%} of it); first verify (DID document and status lists over HTTP): "
          f"{first_verify_ms:.1f} ms")
    print(f"one warm verify: {1e6 / ours_verify:.0f} µs, of which the proof {1e6 / proof_alone:.0f} µs "
          f"(Ed25519 {1e6 / limit:.0f} µs) and {1e6 / ours_verify - 1e6 / proof_alone:.0f} µs the rest "
          "(thread hop, issuer and status lookups, validity and schema checks)")
    print(f"transcript runs, ms: warm {' '.join(f'{t:.1f}' for t in warm)}; cold {' '.join(f'{t:.1f}' for t in cold)}")
    print("baseline = the proof alone (plain pyld URDNA2015 + Ed25519): no DID, validity, status or schema checks")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"machine: {os.cpu_count()} cores; this run {pinned}; load average at the end {load}; "
          f"Python {sys.version.split()[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, nargs="?", default=500, help="credentials to issue")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each verification measurement")
    parser.add_argument("--runs", type=int, default=9, help="warm transcript runs (median reported)")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold transcript runs (median reported)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one CPU")
    parser.add_argument("--profile", action="store_true", help="cProfile of warm verification")
    args = parser.parse_args()
    if args.count < TRANSCRIPT_SIZE:
        parser.error(f"issue at least {TRANSCRIPT_SIZE} credentials")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
