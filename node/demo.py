"""``edufed demo``: three city nodes on loopback, each with its sample catalog, served until interrupted.

Each node is a separate ``edufed serve`` process with its own SQLite database, exactly as an operator would
run it; the demo only prepares their data folders (once; re-runs reuse them) and supervises the processes.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
from tqdm import tqdm

from node.bootstrap import ADMIN_TOKEN_FILE, init_node
from node.catalog.importer import import_file
from node.config import CONFIG_FILE, FederationPolicy, load, save
from node.store.records import Store


@dataclass(frozen=True)
class DemoCity:
    slug: str
    name: str
    country: str
    city: str
    languages: tuple[str, ...]


CITIES = (
    DemoCity("shanghai-xuhui", "Xuhui Learning Society", "CN", "Shanghai", ("zh", "en")),
    DemoCity("helsinki", "Helsinki Learns", "FI", "Helsinki", ("fi", "en")),
    DemoCity("bologna", "Bologna Impara", "IT", "Bologna", ("it", "en")),
)


def samples_dir() -> Path:
    """``samples/`` in a checkout, ``node/_samples`` in an installed wheel."""
    checkout = Path(__file__).resolve().parents[1] / "samples"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "_samples"


# Quicker than a production node, so the federation forms while one watches.
DEMO_FEDERATION = FederationPolicy(discovery_interval_seconds=2.0, sync_interval_seconds=10.0)


async def prepare(city: DemoCity, data_dir: Path, port: int, seed: str | None) -> None:
    """Initialise the city's node (with the previous city as its only seed) and import its sample catalog,
    unless an earlier run did. Gossip does the rest: every node ends up following the other two."""
    if (data_dir / CONFIG_FILE).exists():
        return
    config, _ = await init_node(
        data_dir, base_url=f"http://127.0.0.1:{port}", name=city.name, country=city.country, city=city.city,
        languages=city.languages, allow_private_networks=True,
    )
    config = replace(config, federation=replace(DEMO_FEDERATION, seeds=(seed,) if seed else ()))
    save(config)
    store = await Store.open(config.effective_database_url)
    try:
        written, rejected = await import_file(config, store, samples_dir() / f"{city.slug}.csv")
    finally:
        await store.close()
    if rejected:
        raise SystemExit(f"sample catalog {city.slug}: {len(rejected)} rows refused, first: {rejected[0]}")
    print(f"  {city.name}: imported {written} records")


async def wait_healthy(urls: list[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        for url in urls:
            while True:
                try:
                    async with http.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{url} did not start within {timeout:.0f} s")
                await asyncio.sleep(0.2)


async def wait_federated(urls: list[str], timeout: float = 120.0) -> None:
    """Show the federation forming: every node following every other one, with nothing left to pull."""
    links = len(urls) * (len(urls) - 1)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        with tqdm(total=links, desc="federating", unit="link", file=sys.stderr) as bar:
            while True:
                done = 0
                for url in urls:
                    async with http.get(f"{url}/federation/status") as response:
                        status = await response.json()
                    done += sum(p["state"] == "following" and p["lag"] == 0 and p["lastSync"] is not None
                                for p in status["peers"] if p["url"] in urls)
                bar.update(done - bar.n)
                if done >= links:
                    return
                if time.monotonic() > deadline:
                    print(f"federation still forming after {timeout:.0f} s; see each node's /federation page",
                          file=sys.stderr)
                    return
                await asyncio.sleep(1.0)


def run_demo(root: Path, base_port: int) -> int:
    root = root.resolve()
    print(f"Preparing demo nodes in {root}")
    folders = [root / city.slug for city in CITIES]
    for offset, (city, folder) in enumerate(zip(CITIES, folders, strict=True)):
        seed = f"http://127.0.0.1:{base_port + offset - 1}" if offset else None
        asyncio.run(prepare(city, folder, base_port + offset, seed))
    processes = [
        subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(folder)],
                         stdout=(folder / "node.log").open("ab"), stderr=subprocess.STDOUT)
        for folder in folders
    ]
    try:
        urls = [load(folder).base_url for folder in folders]
        asyncio.run(wait_healthy(urls))
        asyncio.run(wait_federated(urls))
        print("\nEduFed demo running (Ctrl-C stops it):")
        for city, folder, url in zip(CITIES, folders, urls, strict=True):
            print(f"  {city.name:<24} {url}/   federation: {url}/federation")
            print(f"  {'':<24} admin token: {folder / ADMIN_TOKEN_FILE}   log: {folder / 'node.log'}")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("a demo node stopped unexpectedly", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
