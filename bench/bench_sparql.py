"""SPARQL by category over N records: the node's Oxigraph index beside rdflib in memory, in the same run.

Records are written straight into the Record table (signed-looking JSON-LD with a placeholder proof, which the
index leaves out anyway), as a mirror holding N courses from two origins would have them. Measured: the index
build from the database (what a restart costs), a sync when nothing changed (paid before every query), a sync
after one update, and p50/p95 of two queries through the endpoint (sync + evaluation + JSON results) beside the
same queries run by rdflib on a Dataset of the same quads.

Usage: ``python bench/bench_sparql.py [N] [--repeat R] [--database-url URL] [--skip-rdflib]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import rdflib

from node.catalog.records import RECORD_CONTEXT, to_stored
from node.sparql.endpoint import RESULTS_JSON, SparqlEndpoint
from node.store.records import Store

FIELDS = ["00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]
ISCED = "https://w3id.org/edufed/schemes/isced-f/"
BY_CATEGORY = (f"PREFIX schema: <https://schema.org/>\nSELECT ?c ?name WHERE {{ ?c schema:about <{ISCED}02> ; "
               'schema:name ?name . FILTER(lang(?name) = "en") } ORDER BY ?c LIMIT 100')
COUNT_CATEGORY = (f"PREFIX schema: <https://schema.org/>\nSELECT (COUNT(?c) AS ?n) WHERE {{ ?c schema:about "
                  f"<{ISCED}02> ; a schema:Course }}")


def course(n: int) -> dict[str, Any]:
    origin = "https://a.example" if n % 2 else "https://b.example"
    return {
        "@context": list(RECORD_CONTEXT),
        "id": f"{origin}/records/course-{n:07d}",
        "type": "Course",
        "name": {"en": f"Evening course {n}", "zh": f"夜校课程 {n}"},
        "description": {"en": f"A ten-week evening course, number {n}, for adult learners of every age."},
        "keywords": {"en": ["evening", "adults", f"topic-{n % 97}"]},
        "inLanguage": "en",
        "isAccessibleForFree": n % 2 == 0,
        "about": [ISCED + FIELDS[n % len(FIELDS)]],
        "version": 1,
        "dateModified": "2026-01-01T00:00:00Z",
        "proof": {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "created": "2026-01-01T00:00:00Z",
                  "verificationMethod": f"did:web:{origin[8:]}#key-1", "proofPurpose": "assertionMethod",
                  "proofValue": "z" + "1" * 86},
    }


async def timed(action: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        times.append((time.perf_counter() - started) * 1000)
    return times


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def line(label: str, times: list[float]) -> None:
    print(f"{label:<52}{p(times, 50):>10.2f}{p(times, 95):>10.2f}{len(times):>8}")


async def run(count: int, repeat: int, database_url: str | None, skip_rdflib: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(database_url or f"sqlite://{Path(tmp) / 'bench.sqlite3'}")
        try:
            started = time.perf_counter()
            for start in range(0, count, 5000):
                batch = [(to_stored(course(n), None), None) for n in range(start, min(count, start + 5000))]
                await store.save_many(batch, feed=False)
            print(f"wrote {count} records in {time.perf_counter() - started:.1f} s")

            endpoint = SparqlEndpoint(store)
            started = time.perf_counter()
            await endpoint.index.sync(store)
            build = time.perf_counter() - started
            quads = len(endpoint.index.oxigraph)
            print(f"index build from the database: {build:.1f} s ({count / build:.0f} records/s, {quads} quads)")

            print(f"{'figure (ms)':<52}{'p50':>10}{'p95':>10}{'runs':>8}")
            line("sync before a query, nothing changed", await timed(lambda: endpoint.index.sync(store), repeat))
            line("full check (background, every 2 s), nothing changed",
                 await timed(lambda: endpoint.index.full_check(store), max(5, repeat // 10)))
            changed = course(7)

            async def one_update() -> None:
                changed["version"] += 1
                changed["name"] = {"en": f"Evening course 7, version {changed['version']}"}
                await store.apply_mirrored(to_stored(changed, None), None)
                await endpoint.index.full_check(store)

            line("replace one mirrored record + full check and rescan", await timed(one_update, max(5, repeat // 10)))
            for label, query in (("page of 100 by category", BY_CATEGORY), ("count by category", COUNT_CATEGORY)):
                endpoint.check(query)
                body = json.loads((await endpoint.answer(query, RESULTS_JSON)).body)
                rows = len(body["results"]["bindings"])
                line(f"oxigraph endpoint: {label} ({rows} rows)",
                     await timed(lambda q=query: endpoint.answer(q, RESULTS_JSON), repeat))  # type: ignore[misc]

            if skip_rdflib:
                return
            started = time.perf_counter()
            dataset = rdflib.Dataset()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                dataset.parse(data=ox.serialize(endpoint.index.oxigraph, format=ox.RdfFormat.N_QUADS),
                              format="nquads")
            dataset.default_union = True  # the endpoint's default graph: the union of the origin graphs
            print(f"naive: rdflib Dataset of the same {quads} quads built in {time.perf_counter() - started:.1f} s")
            for label, query in (("page of 100 by category", BY_CATEGORY), ("count by category", COUNT_CATEGORY)):

                async def naive(q: str = query) -> None:
                    list(dataset.query(q))

                line(f"naive rdflib: {label}", await timed(naive, max(3, repeat // 20)))
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=100_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--skip-rdflib", action="store_true", help="leave out the naive baseline")
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d}, {args.count} records")
    asyncio.run(run(args.count, args.repeat, args.database_url, args.skip_rdflib))


if __name__ == "__main__":
    main()
