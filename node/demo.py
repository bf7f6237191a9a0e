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
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from node.bootstrap import ADMIN_TOKEN_FILE, init_node
from node.catalog.importer import import_file
from node.config import CONFIG_FILE, load
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


async def prepare(city: DemoCity, data_dir: Path, port: int) -> None:
    """Initialise the city's node and import its sample catalog, unless an earlier run did."""
    if (data_dir / CONFIG_FILE).exists():
        return
    config, _ = await init_node(
        data_dir, base_url=f"http://127.0.0.1:{port}", name=city.name, country=city.country, city=city.city,
        languages=city.languages, allow_private_networks=True,
    )
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


def run_demo(root: Path, base_port: int) -> int:
    root = root.resolve()
    print(f"Preparing demo nodes in {root}")
    folders = [root / city.slug for city in CITIES]
    for offset, (city, folder) in enumerate(zip(CITIES, folders, strict=True)):
        asyncio.run(prepare(city, folder, base_port + offset))
    processes = [
        subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(folder)]) for folder in folders
    ]
    try:
        urls = [load(folder).base_url for folder in folders]
        asyncio.run(wait_healthy(urls))
        print("\nEduFed demo running (Ctrl-C stops it):")
        for city, folder, url in zip(CITIES, folders, urls, strict=True):
            print(f"  {city.name:<24} {url}/   admin token: {folder / ADMIN_TOKEN_FILE}")
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
