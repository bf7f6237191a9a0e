"""Two `edufed serve` workers of one node on one database: a worker killed mid-delivery loses nothing, and no
activity is applied twice by its follower. Real processes, real signals, the database of the run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import aiohttp

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.config import load, save
from node.store.models import Delivery, Record, SeenActivity
from node.store.records import Store
from tests.conftest import MakeDatabaseUrl
from tests.harness import FAST, eventually, free_port, running_node

RECORDS = 120


def serve(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "node.cli", "serve", "--data", str(data), "--port", str(port)],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


async def healthy(port: int) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"worker on {port} did not start"
            await asyncio.sleep(0.2)


async def delivery_states(store: Store) -> dict[str, int]:
    with store.bound():
        rows = await Delivery.all().values_list("state", flat=True)
    states: dict[str, int] = {}
    for state in rows:
        states[str(state)] = states.get(str(state), 0) + 1
    return states


async def test_a_killed_worker_loses_and_doubles_nothing(tmp_path: Path, make_database_url: MakeDatabaseUrl) -> None:
    port = free_port()
    origin, _ = await init_node(tmp_path / "a", base_url=f"http://127.0.0.1:{port}", name="A",
                                database_url=await make_database_url(), allow_private_networks=True)
    save(replace(origin, federation=replace(origin.federation, delivery_lease_seconds=2.0)))
    first = serve(origin.data_dir, port, tmp_path / "a1.log")
    second: subprocess.Popen[bytes] | None = None
    try:
        await healthy(port)
        follower_policy = replace(FAST, seeds=(origin.base_url,), sync_interval_seconds=3600)  # push only
        async with running_node(tmp_path / "b", await make_database_url(), "B", federation=follower_policy) as b:

            async def following() -> bool:
                peer = await b.peer_by_url(origin.base_url)
                return peer is not None and peer["state"] == "following"

            await eventually(following, what="b to follow a")
            os.killpg(first.pid, signal.SIGTERM)
            first.wait(10)

            rows = tmp_path / "courses.csv"
            rows.write_text("type,id,name@en\n" + "".join(f"Course,c{n:03d},Course {n}\n" for n in range(RECORDS)))
            store = await Store.open(load(origin.data_dir).effective_database_url)
            try:
                assert (await import_file(load(origin.data_dir), store, rows))[0] == RECORDS

                other_port = free_port()
                first = serve(origin.data_dir, port, tmp_path / "a1.log")
                second = serve(origin.data_dir, other_port, tmp_path / "a2.log")
                await asyncio.gather(healthy(port), healthy(other_port))

                async def some_delivered() -> bool:
                    return (await delivery_states(store)).get("done", 0) >= 10

                await eventually(some_delivered, what="the workers to start delivering")
                os.killpg(first.pid, signal.SIGKILL)  # mid-delivery, without a chance to clean up
                first.wait(10)

                async def all_done() -> bool:
                    with store.bound():
                        feed = Delivery.filter(activity_id__contains="/outbox/")
                        return await feed.filter(state="done").count() == await feed.count() == RECORDS

                await eventually(all_done, timeout=60, what="the surviving worker to finish the queue")
                with store.bound():
                    failures = await Delivery.filter(state="failed", activity_id__contains="/outbox/").values_list(
                        "activity_id", "last_status", "last_error")
                assert failures == []
            finally:
                await store.close()

            with b.services.store.bound():
                mirrored = await Record.filter(origin=origin.base_url.removeprefix("http://")).count()
                applied = await SeenActivity.filter(activity_id__startswith=f"{origin.base_url}/outbox/").count()
                versions = set(await Record.filter(local_id__isnull=True).values_list("version", flat=True))
            assert mirrored == RECORDS  # nothing lost
            assert applied == RECORDS and versions == {1}  # each applied once
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(10)
