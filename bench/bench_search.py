"""Search at scale: p50/p95 of a faceted word search, a filtered search and "near me" over N records, an OAI-PMH
ListRecords page of 100; beside the naive approach (rdflib in memory, SPARQL with FILTER and GROUP BY) answering
the same questions over the same records in the same run.

Records are written straight through the Store (search does not look at proofs), so a run of 100,000 takes a few
minutes. Usage: ``python bench/bench_search.py [N] [--database-url URL] [--naive N2] [--runs R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, Namespace, URIRef

from node.catalog.indexing import index_entry
from node.catalog.search import Search, parse_query
from node.config import NodeConfig
from node.oai.provider import Provider
from node.store.records import Store, StoredRecord

SCHEMA = Namespace("https://schema.org/")
ISCED = "https://w3id.org/edufed/schemes/isced-f/"
WORDS = ("pottery", "finnish", "calligraphy", "gardening", "python", "history", "cooking", "chess", "yoga",
         "photography", "repair", "robotics", "choir", "painting", "accounting", "first-aid")
CITIES = ((31.19, 121.44), (60.17, 24.94), (44.49, 11.34))
TYPES = ("Course", "Course", "LearningResource", "EducationEvent", "Place")


def document(n: int, rng: random.Random) -> dict[str, Any]:
    word = WORDS[n % len(WORDS)]
    lat, lon = CITIES[n % len(CITIES)]
    kind = TYPES[n % len(TYPES)]
    body: dict[str, Any] = {
        "@context": ["https://w3id.org/edufed/v1"], "id": f"https://bench.example/records/r{n}", "type": kind,
        "name": {"en": f"{word.title()} {n}"},
        "description": {"en": f"An evening {word} session number {n} for adults in the neighbourhood."},
        "keywords": {"en": [word, f"topic{n % 211}"]}, "inLanguage": ("en", "fi", "it", "zh")[n % 4],
        "isAccessibleForFree": n % 3 != 0, "about": [f"{ISCED}{n % 11:02d}"],
        "educationalLevel": ("beginner", "intermediate", "advanced")[n % 3],
        "version": 1, "dateModified": "2026-11-29T08:00:00Z",
    }
    if kind in ("Place", "EducationEvent"):
        body["geo"] = {"type": "GeoCoordinates", "latitude": lat + rng.uniform(-0.2, 0.2),
                       "longitude": lon + rng.uniform(-0.2, 0.2)}
    return body


async def fill(store: Store, count: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    documents = [document(n, rng) for n in range(count)]
    moment = datetime(2026, 11, 29, 8, tzinfo=UTC)
    for start in range(0, count, 5000):
        batch = documents[start : start + 5000]
        await store.save_many(
            [(StoredRecord(d["id"], f"r{start + i}", "bench.example", d["type"], 1, moment,
                           json.dumps(d), False), index_entry(d)) for i, d in enumerate(batch)],
            feed=False,
        )
    return documents


def naive_graph(documents: list[dict[str, Any]]) -> Graph:
    graph = Graph()
    for d in documents:
        node = URIRef(d["id"])
        graph.add((node, SCHEMA.additionalType, Literal(d["type"])))
        graph.add((node, SCHEMA.name, Literal(d["name"]["en"])))
        graph.add((node, SCHEMA.description, Literal(d["description"]["en"])))
        graph.add((node, SCHEMA.about, URIRef(d["about"][0])))
        graph.add((node, SCHEMA.inLanguage, Literal(d["inLanguage"])))
        if "geo" in d:
            graph.add((node, SCHEMA.latitude, Literal(d["geo"]["latitude"])))
            graph.add((node, SCHEMA.longitude, Literal(d["geo"]["longitude"])))
    return graph


NAIVE_WORD = """PREFIX s: <https://schema.org/>
SELECT ?type (COUNT(?r) AS ?n)
WHERE { ?r s:description ?d ; s:additionalType ?type . FILTER(CONTAINS(LCASE(?d), "pottery")) }
GROUP BY ?type"""
NAIVE_NEAR = """PREFIX s: <https://schema.org/>
SELECT ?r ?lat ?lon WHERE { ?r s:latitude ?lat ; s:longitude ?lon .
FILTER(?lat > 44.47 && ?lat < 44.51 && ?lon > 11.31 && ?lon < 11.37) }"""


async def timings(action: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def run(count: int, naive_count: int, database_url: str | None, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite://{Path(tmp) / 'bench.sqlite3'}"
        store = await Store.open(url)
        try:
            started = time.perf_counter()
            documents = await fill(store, count)
            print(f"filled {count} records in {time.perf_counter() - started:.0f} s ({store.dialect})")
            search = Search(store)
            config = NodeConfig(data_dir=Path(tmp), name="Bench", base_url="https://bench.example",
                                database_url=url, admin_token_sha256="-")
            oai = Provider(config, store)
            questions: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
                ("word + facets", lambda: search.run(parse_query({"q": "pottery"}))),
                ("word + filters + facets", lambda: search.run(parse_query(
                    {"q": "evening", "type": "Course", "language": "fi", "category": f"{ISCED}02"}))),
                ("all + facets (no filter)", lambda: search.run(parse_query({}))),
                ("near me 2 km + facets", lambda: search.run(parse_query({"near": "44.49,11.34", "radius": "2"}))),
                ("OAI ListRecords page of 100",
                 lambda: oai.respond([("verb", "ListRecords"), ("metadataPrefix", "oai_dc")])),
            ]
            print(f"{'query':<30}{'p50 ms':>10}{'p95 ms':>10}")
            for name, action in questions:
                p50, p95 = await timings(action, runs)
                print(f"{name:<30}{p50:>10.1f}{p95:>10.1f}")
        finally:
            await store.close()
    started = time.perf_counter()
    graph = naive_graph(documents[:naive_count])
    print(f"naive: rdflib graph of {naive_count} records built in {time.perf_counter() - started:.0f} s")
    for name, query in (("naive word + type facet", NAIVE_WORD), ("naive near (bounding box)", NAIVE_NEAR)):
        samples = []
        for _ in range(max(1, runs // 10)):
            started = time.perf_counter()
            list(graph.query(query))
            samples.append((time.perf_counter() - started) * 1000)
        print(f"{name:<30}{statistics.median(samples):>10.1f}{max(samples):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("count", type=int, nargs="?", default=100_000)
    parser.add_argument("--naive", type=int, default=None, help="records in the rdflib baseline (default: all)")
    parser.add_argument("--database-url", help="default: SQLite in a temporary folder")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.count, args.naive or args.count, args.database_url, args.runs))


if __name__ == "__main__":
    main()
