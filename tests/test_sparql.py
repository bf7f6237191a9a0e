"""The SPARQL endpoint of a real node: queries over own and mirrored records, formats, refusals and limits."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyoxigraph as ox
import pytest

from node.catalog.records import to_stored
from node.sparql.endpoint import CatalogIndex, origin_graph
from node.store.records import Store, StoredRecord
from node.web.sparql_routes import SPARQL
from tests.harness import RunningNode, eventually, running_node
from tests.test_federation import course, holds, pushing  # noqa: F401  (pushing is a fixture)

ISCED = "https://w3id.org/edufed/schemes/isced-f/"
PREFIX = "PREFIX schema: <https://schema.org/>\n"


def pottery() -> dict[str, Any]:
    return course("Pottery for beginners", description={"en": "Wedging, throwing and glazing."},
                  inLanguage="en", about=[ISCED + "02"])


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url) as running:
        yield running


async def ask(node: RunningNode, query: str, *, accept: str = "application/sparql-results+json",
              method: str = "GET", **params: str) -> tuple[int, str, str, dict[str, str]]:
    """(status, content type, body, headers) of one query; POST as an application/sparql-query body."""
    url = f"{node.base_url}/sparql"
    headers = {"Accept": accept}
    if method == "GET":
        request = node.http.get(url, params={"query": query, **params}, headers=headers)
    elif method == "FORM":
        request = node.http.post(url, data={"query": query, **params}, headers=headers)
    else:
        request = node.http.post(url, data=query.encode(), params=params,
                                 headers={**headers, "Content-Type": "application/sparql-query"})
    async with request as response:
        return response.status, response.content_type, await response.text(), dict(response.headers)


async def select(node: RunningNode, query: str, **kwargs: Any) -> list[dict[str, str]]:
    status, content_type, body, _ = await ask(node, query, **kwargs)
    assert status == 200, body
    assert content_type == "application/sparql-results+json"
    return [{k: v["value"] for k, v in row.items()} for row in json.loads(body)["results"]["bindings"]]


async def test_select_by_category_type_and_language_tagged_name(node: RunningNode) -> None:
    """[SPARQL-1] records as RDF without their proof: by category, by type, by language-tagged name."""
    wanted = await node.publish(pottery())
    await node.publish(course("Welding", about=[ISCED + "07"]))
    place = await node.publish({"@context": "https://w3id.org/edufed/v1", "type": "Place",
                                "name": {"en": "Kallio learning point", "fi": "Kallion oppimispiste"}})

    rows = await select(node, PREFIX + f"SELECT ?c WHERE {{ ?c schema:about <{ISCED}02> }}")
    assert rows == [{"c": wanted["id"]}]
    rows = await select(node, PREFIX + "SELECT ?p WHERE { ?p a schema:Place }")
    assert rows == [{"p": place["id"]}]
    rows = await select(node, PREFIX + 'SELECT ?p WHERE { ?p schema:name "Kallion oppimispiste"@fi }')
    assert rows == [{"p": place["id"]}]
    assert await select(node, PREFIX + 'SELECT ?p WHERE { ?p schema:name "Kallion oppimispiste"@en }') == []
    # the proof is left out; the record's own terms are in
    assert await select(node, "SELECT ?s WHERE { ?s <https://w3id.org/security#proof> ?p }") == []
    rows = await select(node, f"SELECT ?v WHERE {{ <{wanted['id']}> <https://w3id.org/edufed/ns#version> ?v }}")
    assert rows == [{"v": "1"}]


async def test_changes_and_tombstones_reach_the_index(node: RunningNode) -> None:
    """[SPARQL-3] an update is seen by the next query; a withdrawn record leaves the dataset."""
    record = await node.publish(pottery())
    query = PREFIX + f'SELECT ?n WHERE {{ <{record["id"]}> schema:name ?n }}'
    assert await select(node, query) == [{"n": "Pottery for beginners"}]
    changed = {**record, "name": {"en": "Pottery for everyone"}}
    async with node.http.put(record["id"], json=changed, headers=node.admin) as response:
        assert response.status == 200
    assert await select(node, query) == [{"n": "Pottery for everyone"}]
    async with node.http.delete(record["id"], headers=node.admin) as response:
        assert response.status == 200
    assert await select(node, f"SELECT ?p ?o WHERE {{ <{record['id']}> ?p ?o }}") == []
    assert await select(node, PREFIX + "SELECT ?s WHERE { ?s a schema:Tombstone }") == []


async def test_a_mirrored_record_is_in_its_origins_named_graph(pushing: tuple[RunningNode, RunningNode]) -> None:  # noqa: F811
    """[SPARQL-2] [SPARQL-4] one named graph per origin; the default graph is their union."""
    a, b = pushing
    theirs = await a.publish(pottery())
    ours = await b.publish(course("Bread baking", about=[ISCED + "07"]))
    await eventually(lambda: holds(b, theirs["id"]), timeout=5, what="the push")
    rows = await select(b, PREFIX + "SELECT ?g ?c WHERE { GRAPH ?g { ?c a schema:Course } } ORDER BY ?g")
    assert sorted((r["g"], r["c"]) for r in rows) == sorted(
        [(a.base_url + "/", theirs["id"]), (b.base_url + "/", ours["id"])])
    # the default graph is the union of the origin graphs; named-graph-uri narrows the dataset
    assert len(await select(b, PREFIX + "SELECT ?c WHERE { ?c a schema:Course }")) == 2
    rows = await select(b, PREFIX + "SELECT ?c WHERE { ?c a schema:Course }", **{"default-graph-uri": a.base_url + "/"})
    assert rows == [{"c": theirs["id"]}]
    rows = await select(b, PREFIX + f"SELECT ?c WHERE {{ GRAPH <{a.base_url}/> {{ ?c schema:about <{ISCED}02> }} }}")
    assert rows == [{"c": theirs["id"]}]


async def test_formats_and_protocol_operations(node: RunningNode) -> None:
    """[SPARQL-4] [SPARQL-5] GET and both POST forms; every result format; 406 when none fits."""
    record = await node.publish(pottery())
    query = PREFIX + "SELECT ?c ?n WHERE { ?c schema:name ?n }"
    for method in ("GET", "POST", "FORM"):
        assert await select(node, query, method=method) == [{"c": record["id"], "n": "Pottery for beginners"}]

    status, content_type, body, _ = await ask(node, query, accept="application/sparql-results+xml")
    assert (status, content_type) == (200, "application/sparql-results+xml")
    ns = {"r": "http://www.w3.org/2005/sparql-results#"}
    literal = ElementTree.fromstring(body).find("r:results/r:result/r:binding[@name='n']/r:literal", ns)
    assert literal is not None and literal.text == "Pottery for beginners"
    assert literal.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"

    status, content_type, body, _ = await ask(node, query, accept="text/csv")
    assert (status, content_type) == (200, "text/csv")
    assert list(csv.reader(io.StringIO(body))) == [["c", "n"], [record["id"], "Pottery for beginners"]]

    status, content_type, body, _ = await ask(node, query, accept="text/html,*/*;q=0.8")  # a browser
    assert (status, content_type) == (200, "application/sparql-results+json")

    status, _, body, _ = await ask(node, PREFIX + "ASK { ?c a schema:Course }")
    assert status == 200 and json.loads(body) == {"head": {}, "boolean": True}

    construct = PREFIX + "CONSTRUCT { ?c schema:name ?n } WHERE { ?c schema:name ?n }"
    for accept, fmt in (("text/turtle", ox.RdfFormat.TURTLE), ("application/n-triples", ox.RdfFormat.N_TRIPLES)):
        status, content_type, body, _ = await ask(node, construct, accept=accept)
        assert (status, content_type) == (200, accept)
        triples = list(ox.parse(body.encode(), format=fmt))
        assert [(t.subject.value, t.object.value, t.object.language) for t in triples] == [
            (record["id"], "Pottery for beginners", "en")]
    status, content_type, body, _ = await ask(node, f"DESCRIBE <{record['id']}>", accept="text/turtle")
    assert status == 200 and "Pottery for beginners" in body

    status, content_type, body, _ = await ask(node, construct, accept="application/sparql-results+json")
    assert status == 406 and content_type == "text/plain" and "text/turtle" in body


@pytest.mark.parametrize(("query", "expected"), [
    ("INSERT DATA { <https://x.example/a> <https://x.example/b> <https://x.example/c> }", "read-only"),
    ("DELETE WHERE { ?s ?p ?o }", "read-only"),
    ("LOAD <https://x.example/data.ttl>", "read-only"),
    ("CLEAR ALL", "read-only"),
    ("SELECT ?s WHERE { ?s ?p }", "Malformed query"),
    ("SELECT ?s WHERE { ?s nope:p ?o }", "Malformed query"),
    ("SELECT ?s WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }", "SERVICE"),
    ("SELECT ?s WHERE { ?s <https://schema.org/subOrganizationOf>* ?o }", "Unbounded"),
    ("SELECT ?s WHERE { ?s (<https://schema.org/a>/<https://schema.org/b>)+ ?o }", "Unbounded"),
])
async def test_updates_and_bad_queries_are_refused(node: RunningNode, query: str, expected: str) -> None:
    """[SPARQL-6] [SPARQL-7] updates, SERVICE and malformed queries: 400 text/plain, nothing changed."""
    record = await node.publish(pottery())
    for method in ("GET", "POST"):
        status, content_type, body, _ = await ask(node, query, method=method)
        assert (status, content_type) == (400, "text/plain") and expected in body, body
    assert (await node.record(record["id"]))[0] == 200  # DELETE WHERE / CLEAR changed nothing
    assert len(await select(node, f"SELECT ?p WHERE {{ <{record['id']}> ?p ?o }}")) > 5


async def test_the_update_operation_is_refused(node: RunningNode) -> None:
    """[SPARQL-6] the protocol's update operation is refused too."""
    async with node.http.post(f"{node.base_url}/sparql", data={"update": "CLEAR ALL"}) as response:
        assert response.status == 400 and "read-only" in await response.text()
    async with node.http.post(f"{node.base_url}/sparql", data=b"CLEAR ALL",
                              headers={"Content-Type": "application/sparql-update"}) as response:
        assert response.status == 400 and "read-only" in await response.text()
    async with node.http.get(f"{node.base_url}/sparql") as response:
        assert response.status == 400 and "Missing query" in await response.text()


async def test_limits_length_patterns_rows_and_time(node: RunningNode) -> None:
    """[SPARQL-8] each limit is enforced: length, triple patterns, rows (truncated), time (503)."""
    endpoint = node.app[SPARQL]
    for n in range(12):
        await node.publish(course(f"Course {n}", about=[ISCED + "02"]))

    long_query = "SELECT ?s WHERE { ?s ?p ?o } #" + "x" * endpoint.limits.max_query_chars
    status, _, body, _ = await ask(node, long_query, method="POST")
    assert status == 400 and "Query too long" in body

    patterns = " . ".join(f"?s <https://schema.org/p{n}> ?o{n}" for n in range(endpoint.limits.max_triple_patterns + 1))
    status, _, body, _ = await ask(node, f"SELECT ?s WHERE {{ {patterns} }}")
    assert status == 400 and "too complex" in body

    endpoint.limits = replace(endpoint.limits, max_rows=50)
    status, _, body, headers = await ask(node, "SELECT * WHERE { ?s ?p ?o }")
    assert status == 200 and len(json.loads(body)["results"]["bindings"]) == 50
    assert headers["EduFed-Results-Truncated"] == "true" and headers["EduFed-Result-Limit"] == "50"
    status, _, body, headers = await ask(node, "SELECT * WHERE { ?s ?p ?o } LIMIT 10")
    assert status == 200 and "EduFed-Results-Truncated" not in headers

    # about 140 triples: a three-way cross join is 2.7 million rows, far beyond 0.2 s of work
    endpoint.limits = replace(endpoint.limits, max_rows=10_000_000, timeout_seconds=0.2)
    status, content_type, body, _ = await ask(node, "SELECT * WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }")
    assert (status, content_type) == (503, "text/plain") and "timed out" in body
    endpoint.limits = replace(endpoint.limits, timeout_seconds=5.0)
    assert len(await select(node, f"SELECT ?s WHERE {{ ?s <https://schema.org/about> <{ISCED}02> }}")) == 12


async def test_index_survives_a_restart(tmp_path: Path, database_url: str) -> None:
    """[SPARQL-3] a restarted node rebuilds its index from the database, Tombstones left out."""
    async with running_node(tmp_path / "node", database_url) as first:
        record = await first.publish(pottery())
        gone = await first.publish(course("Withdrawn"))
        async with first.http.delete(gone["id"], headers=first.admin) as response:
            assert response.status == 200
    async with running_node(tmp_path / "node", database_url) as again:
        rows = await select(again, PREFIX + "SELECT ?c WHERE { ?c a schema:Course }")
        assert rows == [{"c": record["id"]}]


async def test_shared_triples_of_embedded_nodes_are_counted(database_url: str) -> None:
    """Two records describe the same embedded node: removing one keeps the triple the other still states."""
    store = await Store.open(database_url)
    try:
        index = CatalogIndex()
        place = {"@context": ["https://w3id.org/edufed/v1"], "id": "https://o.example/records/p",
                 "type": "Place", "name": {"en": "Hall"}}

        def doc(n: int, version: int = 1) -> dict[str, Any]:
            return {"@context": ["https://w3id.org/edufed/v1"], "id": f"https://o.example/records/c{n}",
                    "type": "Course", "version": version, "dateModified": "2026-01-01T00:00:00Z",
                    "name": {"en": f"C{n}"}, "location": {"id": place["id"], "name": {"en": "Hall"}}}

        own = {**place, "version": 1, "dateModified": "2026-01-01T00:00:00Z"}
        records: list[StoredRecord] = [to_stored(own, None), to_stored(doc(1), None), to_stored(doc(2), None)]
        for r in records:
            assert await store.apply_mirrored(r, None)
        await index.sync(store)
        hall = ox.Quad(ox.NamedNode(place["id"]), ox.NamedNode("https://schema.org/name"),
                       ox.Literal("Hall", language="en"), ox.NamedNode(origin_graph(place["id"])))
        assert hall in index.oxigraph and len(index) == 3
        for n in (1, 2):
            assert await store.apply_mirrored(to_stored({**doc(n, 2), "location": place["id"]}, None), None)
            assert (await index.sync(store)).added == 0  # a replaced mirrored record: found by the full check
            stats = await index.full_check(store)
            assert stats.added == stats.removed == n  # the second also puts the Place's own triple back
            assert hall in index.oxigraph  # the Place record still states it
        assert await store.remove_mirrored([place["id"]]) == 1
        await index.sync(store)  # a removed row changes the count: seen at once
        assert hall not in index.oxigraph and len(index) == 2
    finally:
        await store.close()
