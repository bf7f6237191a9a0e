"""Publishing through ``edufed import``: records per second for a file of N courses, on SQLite by default.

Beside it, the baseline: the same kind of record published one at a time through the catalog service (what the
API does per request), on a sample of the records. Usage: ``python bench/bench_import.py [N] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from node.bootstrap import init_node
from node.catalog.importer import import_file
from node.catalog.records import node_signer
from node.catalog.service import Catalog
from node.store.records import Store
from node.trust.keyring import KeyRing

FIELDS = ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]


def course(n: int, *, with_id: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Course",
        "name": {"en": f"Evening course {n}", "zh": f"夜校课程 {n}"},
        "description": {"en": f"A ten-week evening course, number {n}, for adult learners of every age."},
        "keywords": {"en": ["evening", "adults", f"topic-{n % 97}"]},
        "inLanguage": "en",
        "isAccessibleForFree": n % 2 == 0,
        "about": [f"https://w3id.org/edufed/schemes/isced-f/{FIELDS[n % len(FIELDS)]}"],
    }
    if with_id:
        body["id"] = f"course-{n:07d}"
    return body


async def run(count: int, sample: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config, _ = await init_node(Path(tmp) / "node", base_url="https://bench.example", name="Bench",
                                    database_url=database_url)
        path = Path(tmp) / "catalog.jsonld"
        path.write_text(json.dumps({"@context": "https://w3id.org/edufed/v1",
                                    "@graph": [course(n) for n in range(count)]}), "utf-8")
        store = await Store.open(config.effective_database_url)
        try:
            started = time.perf_counter()
            written, rejected = await import_file(config, store, path)
            import_seconds = time.perf_counter() - started
            assert written == count and not rejected, rejected[:3]

            keyring = KeyRing(config.keys_dir)
            catalog = Catalog(store, config.records_base, lambda: node_signer(config.base_url, keyring))
            started = time.perf_counter()
            for n in range(sample):
                await catalog.publish({"@context": "https://w3id.org/edufed/v1", **course(count + n, with_id=False)})
            one_by_one_seconds = time.perf_counter() - started
        finally:
            await store.close()
    print(f"{'path':<38}{'records':>10}{'seconds':>10}{'records/s':>12}")
    print(f"{'import (batch: validate, sign, write)':<38}{count:>10}{import_seconds:>10.2f}"
          f"{count / import_seconds:>12.0f}")
    print(f"{'baseline: one publish per record':<38}{sample:>10}{one_by_one_seconds:>10.2f}"
          f"{sample / one_by_one_seconds:>12.0f}")
    print(f"speed-up: {(count / import_seconds) / (sample / one_by_one_seconds):.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=10_000)
    parser.add_argument("--sample", type=int, default=300, help="records for the one-at-a-time baseline")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    asyncio.run(run(args.count, args.sample, args.database_url))


if __name__ == "__main__":
    main()
