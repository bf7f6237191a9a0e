"""Scale-out on PostgreSQL: one node served by one, then two real ``edufed serve`` worker processes.

Measures, with one and with two workers on the same data folder and database:

* publishing (``POST /api/records`` with the admin token) in records per second;
* serving the catalog: ``GET /records/{id}`` as JSON-LD and ``GET /api/records?limit=100`` pages, requests per
  second with p50/p95 latency;
* draining the delivery queue: N records (default 1,000) to 10 followers, i.e. 10,000 signed POSTs, in
  deliveries per second from the first to the last one done, and how long fan-out took.

The load comes from this process (aiohttp, 16 requests in flight, round-robin over the workers' ports); the
follower inboxes are small aiohttp servers in this process that answer 202 at once and do *not* verify
signatures (the figure is the sender's side). Each process's CPU time is read from ``/proc`` so the table says
where the cores went. A fresh database is created for the run and dropped at the end.
Usage: ``python bench/bench_workers.py [--database-url postgres://…] [--seconds S] [--records N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from aiohttp import web

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.config import NodeConfig
from node.store.models import Counter, Delivery, Follower
from node.store.records import Store

SERVER_URL = "postgres://postgres@127.0.0.1:5432/test"
CONTEXT = "https://w3id.org/edufed/v1"
TICK = os.sysconf("SC_CLK_TCK")

Request = Callable[[aiohttp.ClientSession, str, int], Awaitable[None]]


def course(tag: str, n: int) -> dict[str, Any]:
    return {
        "type": "Course",
        "name": {"en": f"Evening course {tag} {n}"},
        "description": {"en": f"A ten-week evening course, number {n}, for adult learners of every age."},
        "keywords": {"en": ["evening", "adults", f"topic-{n % 97}"]},
        "inLanguage": "en",
        "isAccessibleForFree": n % 2 == 0,
        "about": [f"https://w3id.org/edufed/schemes/isced-f/0{n % 10}"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a database of its own ---------------------------------------------------------------------------------


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def fresh_database(server_url: str) -> AsyncIterator[tuple[str, str, str]]:
    """A new database on the server (name, URL, server version), dropped afterwards even if the run fails."""
    name = f"edufed_bench_{secrets.token_hex(5)}"
    admin = await asyncpg.connect(_dsn(server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        version = await admin.fetchval("SHOW server_version")
    finally:
        await admin.close()
    parts = urlsplit(server_url)
    try:
        yield name, urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, "")), str(version)
    finally:
        admin = await asyncpg.connect(_dsn(server_url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# -- worker processes --------------------------------------------------------------------------------------


@dataclass
class Worker:
    port: int
    process: subprocess.Popen[bytes]
    log: Path


def start_worker(data: Path, log: Path) -> Worker:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(port)],
                               stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return Worker(port, process, log)


async def ready(worker: Worker) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if worker.process.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{worker.port}/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    tail = worker.log.read_text("utf-8", "replace")[-2000:]
    raise RuntimeError(f"worker on port {worker.port} did not become ready:\n{tail}")


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        os.killpg(worker.process.pid, signal.SIGTERM)
        try:
            worker.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(5)


# -- where the CPU went ------------------------------------------------------------------------------------


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class CpuShare:
    """CPU seconds per wall second over one phase (1.0 = one core fully busy)."""

    workers: list[float]
    postgres: float
    bench: float
    machine: float  # fraction of all cores busy, whoever used them

    def text(self, rate: float) -> str:
        """The shares, the workers' CPU per request (or delivery) at ``rate``, and what other processes took."""
        per_worker = " + ".join(f"{w:.2f}" for w in self.workers)
        others = max(0.0, self.machine * (os.cpu_count() or 1) - sum(self.workers) - self.postgres - self.bench)
        return (f"worker{'s' if len(self.workers) > 1 else ''} {per_worker} ({sum(self.workers) / rate * 1000:.1f} ms"
                f" each), postgres {self.postgres:.2f}, bench process {self.bench:.2f}, other processes {others:.2f}")


class CpuMeter:
    """CPU used by the workers, by the PostgreSQL backends of the bench database and by this process."""

    def __init__(self, workers: list[Worker], admin: asyncpg.Connection, database: str) -> None:
        self.workers, self.admin, self.database = workers, admin, database

    async def _backends(self) -> dict[int, float]:
        pids = await self.admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.database)
        return {int(row["pid"]): cpu_of(int(row["pid"])) for row in pids}

    @contextlib.asynccontextmanager
    async def measure(self) -> AsyncIterator[list[CpuShare]]:
        found: list[CpuShare] = []
        workers = [cpu_of(w.process.pid) for w in self.workers]
        backends, bench, ticks = await self._backends(), time.process_time(), machine_ticks()
        started = time.perf_counter()
        yield found
        wall = time.perf_counter() - started
        after = await self._backends()
        postgres = sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items())
        busy, total = machine_ticks()
        shares = [(cpu_of(w.process.pid) - before) / wall for w, before in zip(self.workers, workers, strict=True)]
        found.append(CpuShare(shares, postgres / wall, (time.process_time() - bench) / wall,
                              (busy - ticks[0]) / max(1, total - ticks[1])))


# -- HTTP load ---------------------------------------------------------------------------------------------


@dataclass
class Run:
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    first_error: str | None = None
    cpu: CpuShare | None = None

    @property
    def rate(self) -> float:
        return self.done / self.seconds

    def percentile(self, p: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[p - 1] * 1000 if len(self.latencies) > 1 else 0.0


async def hammer(ports: list[int], request: Request, seconds: float, concurrency: int, cap: int | None = None) -> Run:
    """Keep ``concurrency`` requests in flight, round-robin over ``ports``, for ``seconds`` or ``cap`` requests."""
    numbers = itertools.count()
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def client() -> None:
            while time.perf_counter() < deadline:
                n = next(numbers)
                if cap is not None and n >= cap:
                    return
                began = time.perf_counter()
                try:
                    await request(http, f"http://127.0.0.1:{ports[n % len(ports)]}", n)
                except (aiohttp.ClientError, AssertionError, TimeoutError) as error:
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - began)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Run(len(latencies), len(errors), elapsed, latencies, errors[0] if errors else None)


def publisher(token: str, records_base: str, published: list[str], tag: str) -> Request:
    async def publish(http: aiohttp.ClientSession, origin: str, n: int) -> None:
        body = json.dumps({"@context": CONTEXT, **course(tag, n)})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"}
        async with http.post(f"{origin}/api/records", data=body, headers=headers) as response:
            text = await response.text()
            assert response.status == 201, f"{response.status} {text[:200]}"
            published.append(response.headers["Location"].removeprefix(records_base))

    return publish


def record_reader(ids: list[str], rng: random.Random) -> Request:
    async def read(http: aiohttp.ClientSession, origin: str, n: int) -> None:
        async with http.get(f"{origin}/records/{rng.choice(ids)}", headers={"Accept": "application/ld+json"}) as r:
            await r.read()
            assert r.status == 200, r.status

    return read


def page_reader(count: int, rng: random.Random) -> Request:
    async def read(http: aiohttp.ClientSession, origin: str, n: int) -> None:
        after = rng.randrange(max(1, count - 100))
        async with http.get(f"{origin}/api/records?limit=100&after={after}") as r:
            page = await r.json()
            assert r.status == 200 and len(page["items"]) > 0, r.status

    return read


# -- follower inboxes --------------------------------------------------------------------------------------


@dataclass
class Inboxes:
    """Loopback inboxes that accept any POST with 202 (no signature check) and count what they got."""

    ports: list[int] = field(default_factory=list)
    received: Tally[tuple[int, str]] = field(default_factory=Tally)
    runners: list[web.AppRunner] = field(default_factory=list)

    async def start(self, count: int) -> None:
        for _ in range(count):
            port = free_port()

            async def accept(request: web.Request, port: int = port) -> web.Response:
                activity = json.loads(await request.read())
                self.received[(port, str(activity.get("id")))] += 1
                return web.Response(status=202)

            app = web.Application()
            app.router.add_post("/inbox", accept)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)
            self.ports.append(port)

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.received.values())


# -- queue drain -------------------------------------------------------------------------------------------


@dataclass
class Drain:
    deliveries: int
    failed: int
    fanout_seconds: float  # from the commit of the records to the last delivery row written
    first_done_seconds: float  # from the commit to the first delivery done
    drain_seconds: float  # first to last delivery done
    per_worker: list[int]
    cpu: CpuShare | None = None

    @property
    def rate(self) -> float:
        return self.deliveries / self.drain_seconds


async def delivered_by(worker: Worker) -> int:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{worker.port}/federation/status") as r:
        return int((await r.json())["deliveries"]["delivered"])


async def counter(store: Store, name: str) -> int:
    with store.bound():
        row = await Counter.get_or_none(name=name)
    return int(row.value) if row else 0


async def drain(config: NodeConfig, store: Store, workers: list[Worker], meter: CpuMeter, tag: str, records: int,
                followers: int, folder: Path) -> Drain:
    """Publish ``records`` in one import while the workers run, then wait until every delivery is done."""
    with store.bound():
        last = await Delivery.all().order_by("-id").first()
    floor = last.id if last else 0
    before = [await delivered_by(w) for w in workers]
    path = folder / f"drain-{tag}.jsonld"
    path.write_text(json.dumps({"@context": CONTEXT, "@graph": [
        {"id": f"drain-{tag}-{n:05d}", **course(tag, n)} for n in range(records)]}), "utf-8")
    expected = records * followers
    written, rejected = await import_file(config, store, path)  # one transaction: the queue appears at once
    committed = datetime.now(UTC)
    assert written == records and not rejected, rejected[:3]
    async with meter.measure() as cpu:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            with store.bound():
                batch = Delivery.filter(id__gt=floor)
                finished = await batch.filter(state__in=("done", "failed")).count()
            if finished >= expected:
                break
            await asyncio.sleep(0.2)
    with store.bound():
        batch = Delivery.filter(id__gt=floor)
        rows = await batch.count()
        done = cast("list[datetime]", await batch.filter(state="done").order_by("finished_at").values_list(
            "finished_at", flat=True))
        failed = await batch.filter(state="failed").count()
        last_written = await batch.order_by("-created_at").first()
    assert rows == expected, f"{rows} delivery rows, expected {expected}"
    assert len(done) + failed == expected, f"queue not drained in time: {len(done)} done, {failed} failed"
    assert last_written is not None and done
    after = [await delivered_by(w) for w in workers]
    return Drain(len(done), failed, (last_written.created_at - committed).total_seconds(),
                 (done[0] - committed).total_seconds(), (done[-1] - done[0]).total_seconds(),
                 [a - b for a, b in zip(after, before, strict=True)], cpu[0])


# -- the run -----------------------------------------------------------------------------------------------


@dataclass
class Figures:
    publish: Run
    record: Run
    page: Run
    drain: Drain | None = None


async def throughput(ports: list[int], meter: CpuMeter, token: str, config: NodeConfig, seconds: float,
                     concurrency: int, cap: int, tag: str) -> Figures:
    published: list[str] = []
    rng = random.Random(7)
    await hammer(ports, publisher(token, config.records_base, [], f"warm-{tag}"), 1.5, concurrency)
    async with meter.measure() as cpu:
        publish = await hammer(ports, publisher(token, config.records_base, published, tag), seconds, concurrency, cap)
    publish.cpu = cpu[0]
    read_seconds = seconds / 2
    await hammer(ports, record_reader(published, rng), 1.0, concurrency)
    async with meter.measure() as cpu:
        record = await hammer(ports, record_reader(published, rng), read_seconds, concurrency)
    record.cpu = cpu[0]
    total = 0
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{ports[0]}/api/records?limit=1") as r:
        total = int((await r.json())["total"])
    async with meter.measure() as cpu:
        page = await hammer(ports, page_reader(total, rng), read_seconds, concurrency)
    page.cpu = cpu[0]
    return Figures(publish, record, page)


async def run(server_url: str, seconds: float, concurrency: int, cap: int, records: int, followers: int) -> None:
    async with fresh_database(server_url) as (database, url, version):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            port = free_port()
            config, token = await init_node(folder / "node", base_url=f"http://127.0.0.1:{port}", name="Bench",
                                            database_url=url, allow_private_networks=True)
            store = await Store.open(url)
            admin = await asyncpg.connect(_dsn(server_url))
            inboxes = Inboxes()
            workers: list[Worker] = []
            results: dict[int, Figures] = {}
            started = time.perf_counter()
            try:
                for count in (1, 2):
                    workers.append(start_worker(config.data_dir, folder / f"worker{count}.log"))
                    await ready(workers[-1])
                    meter = CpuMeter(workers, admin, database)
                    results[count] = await throughput([w.port for w in workers], meter, token, config, seconds,
                                                      concurrency, cap, f"w{count}")
                    print(f"throughput with {count} worker(s) measured ({time.perf_counter() - started:.0f} s)",
                          file=sys.stderr)

                stop_worker(workers.pop())
                deadline = time.monotonic() + 30  # what was published so far has no followers: let it fan out
                while await counter(store, "fanout") < await counter(store, "feed"):
                    assert time.monotonic() < deadline, "fan-out of the published records did not catch up"
                    await asyncio.sleep(0.2)
                await inboxes.start(followers)
                with store.bound():
                    for p in inboxes.ports:
                        await Follower.create(actor_id=f"http://127.0.0.1:{p}/actor",
                                              inbox=f"http://127.0.0.1:{p}/inbox", kind="edufed")
                for count in (1, 2):
                    if len(workers) < count:
                        workers.append(start_worker(config.data_dir, folder / f"worker{count}-drain.log"))
                        await ready(workers[-1])
                    results[count].drain = await drain(config, store, workers, CpuMeter(workers, admin, database),
                                                       f"d{count}", records, followers, folder)
                    print(f"drain with {count} worker(s) measured ({time.perf_counter() - started:.0f} s)",
                          file=sys.stderr)
            finally:
                for worker in workers:
                    stop_worker(worker)
                await inboxes.stop()
                await admin.close()
                await store.close()
            report(results, version, concurrency, followers, records, inboxes, time.perf_counter() - started)


def report(results: dict[int, Figures], version: str, concurrency: int, followers: int, records: int,
           inboxes: Inboxes, elapsed: float) -> None:
    one, two = results[1], results[2]
    width = 44

    def row(name: str, a: str, b: str) -> None:
        print(f"{name:<{width}}{a:>20}{b:>20}")

    def load(name: str, unit: str, x: Run, y: Run) -> None:
        row(name, f"{x.rate:,.0f} {unit}", f"{y.rate:,.0f} {unit}")
        row("  p50 / p95 latency", f"{x.percentile(50):.0f} / {x.percentile(95):.0f} ms",
            f"{y.percentile(50):.0f} / {y.percentile(95):.0f} ms")
        row("  requests (errors)", f"{x.done:,} ({x.errors})", f"{y.done:,} ({y.errors})")

    cores = os.cpu_count() or 1
    print(f"PostgreSQL {version}, {cores} cores, {concurrency} requests in flight, round-robin over the workers")
    row("figure", "1 worker", "2 workers")
    load("publish: POST /api/records", "records/s", one.publish, two.publish)
    load("GET /records/{id} (JSON-LD)", "req/s", one.record, two.record)
    load("GET /api/records?limit=100", "req/s", one.page, two.page)
    assert one.drain and two.drain
    x, y = one.drain, two.drain
    row(f"queue drain: {records * followers:,} deliveries, {followers} inboxes", f"{x.rate:,.0f} /s",
        f"{y.rate:,.0f} /s")
    row("  first to last delivery done", f"{x.drain_seconds:.1f} s", f"{y.drain_seconds:.1f} s")
    row("  fan-out written, after the records' commit", f"{x.fanout_seconds:.1f} s", f"{y.fanout_seconds:.1f} s")
    row("  first delivery done, after the commit", f"{x.first_done_seconds:.1f} s", f"{y.first_done_seconds:.1f} s")
    row("  delivered by each worker", " + ".join(map(str, x.per_worker)), " + ".join(map(str, y.per_worker)))
    row("  failed / received twice by an inbox", f"{x.failed} / -", f"{y.failed} / {inboxes.duplicates}")
    print(f"\nCPU seconds per second of each phase (1.00 = one core busy; {cores} cores on this machine):")
    for count, f in results.items():
        phases: list[tuple[str, CpuShare | None, float]] = [
            ("publish", f.publish.cpu, f.publish.rate), ("GET /records/{id}", f.record.cpu, f.record.rate),
            ("GET /api/records", f.page.cpu, f.page.rate)]
        if f.drain is not None:  # the drain window runs from the commit to the last delivery
            window = f.drain.first_done_seconds + f.drain.drain_seconds
            phases.append(("queue drain", f.drain.cpu, f.drain.deliveries / window))
        for name, share, rate in phases:
            if share is not None:
                print(f"  {name:<18} {count} worker{'s' if count > 1 else ' '}: {share.text(rate)}")
    errors = [r.first_error for f in results.values() for r in (f.publish, f.record, f.page) if r.first_error]
    if errors:
        print(f"\nfirst error: {errors[0]}")
    print(f"\nNote: {cores} cores shared by the workers, PostgreSQL, the load generator and the inboxes (all on this "
          "machine);\nwith 2 cores a second worker competes with them rather than getting a core of its own. The "
          "inboxes\nanswer 202 without verifying signatures: the drain figure is the sender's side (fan-out, claim,\n"
          f"sign, POST, record). Whole run: {elapsed:.0f} s.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=SERVER_URL, help="a PostgreSQL server; a database is created")
    parser.add_argument("--seconds", type=float, default=15.0, help="publishing time per worker count")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cap", type=int, default=2000, help="at most this many records published per worker count")
    parser.add_argument("--records", type=int, default=1000, help="records published for the queue drain")
    parser.add_argument("--followers", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.database_url, args.seconds, args.concurrency, args.cap, args.records, args.followers))


if __name__ == "__main__":
    main()
