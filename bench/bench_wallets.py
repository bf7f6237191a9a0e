"""A learner's wallet receiving a credential over OpenID4VCI, beside a plain ``POST /credentials/issue``.

A node is initialised in a temporary folder (SQLite by default) and served on a loopback port; the wallet is
tests/oid4vci_wallet.py (Python, joserfc), talking real HTTP. Measured in one run:

- baseline: ``POST /credentials/issue`` with the admin token, one after another, p50 / p95 in ms;
- offer scanned → credential in the wallet: from reading the ``openid-credential-offer://`` link to holding the
  credential (authorization server metadata, issuer metadata, token, nonce, key proof, credential request), one
  wallet after another, p50 / p95 in ms; the registrar's ``POST /credentials/offers`` is made beforehand and not
  counted (it happens when the registrar issues, not when the learner scans);
- presentation response → verdict available: the wallet's ``direct_post`` of a signed presentation of one
  credential to an OpenID4VP request, then ``GET`` of the result URL (every check, status lists fetched over
  loopback, the transcript), p50 / p95 in ms, for at most 30 requests (the rate limit of one client), beside
  ``POST /credentials/verify`` of the same credential;
- 50 wallets (or ``--crowd``) redeeming 50 offers at once on the one worker: errors, and the time until the last
  holds its credential.

Usage: ``python bench/bench_wallets.py [N] [--crowd C] [--database-url URL]`` (an empty PostgreSQL database for
``--database-url``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import web

from node.app import create_app
from node.bootstrap import init_node
from node.web.wallet_routes import REQUESTS_PER_MINUTE
from tests.harness import free_port
from tests.oid4vci_wallet import PyWallet, fetch_json, receive
from tests.test_wallets import open_request_object, present, vp_for

VC2 = "https://www.w3.org/ns/credentials/v2"
OB3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"


def credential(n: int, subject: str | None = None) -> dict[str, Any]:
    achievement = {"id": f"https://bench.example/achievements/course-{n}", "type": ["Achievement"],
                   "name": f"Evening course {n}", "criteria": {"narrative": "Attended every session."}}
    subject_part: dict[str, Any] = {"type": ["AchievementSubject"], "achievement": achievement}
    if subject:
        subject_part["id"] = subject
    return {"@context": [VC2, OB3], "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "name": f"Evening course {n}", "credentialSubject": subject_part}


def quantiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered):6.1f} ms, p95 {p95:6.1f} ms"


async def offer(http: aiohttp.ClientSession, base: str, admin: dict[str, str], n: int) -> str:
    async with http.post(f"{base}/credentials/offers", json={"credential": credential(n)}, headers=admin) as reply:
        assert reply.status == 201, await reply.text()
        return str((await reply.json())["offer"])


async def measure(http: aiohttp.ClientSession, base: str, admin: dict[str, str], n: int, crowd: int) -> None:
    plain: list[float] = []
    for i in range(n):
        started = time.perf_counter()
        async with http.post(f"{base}/credentials/issue", headers=admin,
                             json={"credential": credential(i, PyWallet().did)}) as reply:
            assert reply.status == 201, await reply.text()
            await reply.read()
        plain.append((time.perf_counter() - started) * 1000)
    scanned: list[float] = []
    for i in range(n):
        link = await offer(http, base, admin, i)
        wallet = PyWallet("ed25519" if i % 2 else "p256")
        started = time.perf_counter()
        received = await receive(http, wallet, link)
        scanned.append((time.perf_counter() - started) * 1000)
        assert received["ldp_vc"]["credentialSubject"]["id"] == wallet.did
    print(f"POST /credentials/issue (baseline), {n} in a row:      {quantiles(plain)}")
    print(f"offer scanned -> credential in the wallet, {n} in a row: {quantiles(scanned)}")
    wallet = PyWallet()
    held = (await receive(http, wallet, await offer(http, base, admin, 0)))["ldp_vc"]
    verified: list[float] = []
    answered: list[float] = []
    asked = min(n, REQUESTS_PER_MINUTE)  # presentation requests are rate-limited per client address
    for _ in range(asked):
        started = time.perf_counter()
        async with http.post(f"{base}/credentials/verify", json={"verifiableCredential": held}) as reply:
            assert reply.status == 200, await reply.text()
        verified.append((time.perf_counter() - started) * 1000)
        created = (await fetch_json(http, "POST", f"{base}/presentations/requests",
                                    json={"types": ["OpenBadgeCredential"]})).body
        request = await open_request_object(http, created["request"])
        vp = vp_for(wallet, [held], request["nonce"], request["client_id"])
        started = time.perf_counter()
        assert (await present(http, request, vp)).status == 200
        verdict = (await fetch_json(http, "GET", created["result"])).body
        answered.append((time.perf_counter() - started) * 1000)
        assert verdict["status"] == "valid", verdict
    print(f"POST /credentials/verify (baseline), {asked} in a row:     {quantiles(verified)}")
    print(f"presentation response -> verdict, {asked} in a row:        {quantiles(answered)}")
    links = [await offer(http, base, admin, i) for i in range(crowd)]
    started = time.perf_counter()
    results = await asyncio.gather(*(receive(http, PyWallet(), link) for link in links), return_exceptions=True)
    elapsed = time.perf_counter() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    print(f"{crowd} wallets redeeming at once, one worker: {len(errors)} errors, last credential after "
          f"{elapsed * 1000:.0f} ms ({crowd / elapsed:.1f} credentials/s)")
    for error in errors[:3]:
        print("  error:", repr(error))


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        database = args.database_url or f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        config, token = await init_node(Path(tmp) / "node", base_url=f"http://127.0.0.1:{port}", name="Bench",
                                        database_url=database, allow_private_networks=True)
        runner = web.AppRunner(create_app(config), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            connector = aiohttp.TCPConnector(limit=args.crowd + 10)
            async with aiohttp.ClientSession(connector=connector) as http:
                await measure(http, config.base_url, {"Authorization": f"Bearer {token}"}, args.n, args.crowd)
        finally:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=40)
    parser.add_argument("--crowd", type=int, default=50)
    parser.add_argument("--database-url")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
