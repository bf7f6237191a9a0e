"""Search on a real node with the three sample catalogs: words in several languages, facets, near me, paging,
and refusals. The same assertions run on SQLite and on PostgreSQL, so both give the same answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.catalog.importer import import_file
from node.catalog.search import distance_km
from node.catalog.tokens import query_tokens, text_tokens
from node.demo import samples_dir
from tests.harness import RunningNode, running_node

PIAZZA_MAGGIORE = (44.4938, 11.3430)
XUJIAHUI = (31.1940, 121.4370)




@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url, "Search") as running:
        for city in ("shanghai-xuhui", "helsinki", "bologna"):
            written, rejected = await import_file(running.config, running.services.store,
                                                  samples_dir() / f"{city}.csv")
            assert written and not rejected
        yield running


async def search(node: RunningNode, **params: str) -> tuple[int, dict[str, Any]]:
    async with node.http.get(f"{node.base_url}/api/search", params=params) as response:
        return response.status, await response.json(content_type=None)


def test_tokens_split_cjk_into_pairs_and_fold_case() -> None:
    assert text_tokens("Ceramics 陶艺入门") == ["ceramics", "陶", "艺", "入", "门", "陶艺", "艺入", "入门"]
    assert query_tokens("陶艺") == ["陶艺"] and query_tokens("CERAMICS") == ["ceramics"]


async def test_words_find_records_in_any_of_their_languages(node: RunningNode) -> None:
    """[API-9] own records found by a word in any of their languages, CJK included."""
    status, found = await search(node, q="ceramics")
    assert status == 200
    assert {item["id"].rsplit("/", 1)[1] for item in found["items"]} >= {"bo-course-ceramics-01"}
    assert all(item["origin"] == node.base_url.removeprefix("http://") for item in found["items"])
    _, sauna = await search(node, q="sauna")
    assert [i["id"].rsplit("/", 1)[1] for i in sauna["items"]] == ["hel-course-culture-01"]
    _, library = await search(node, q="图书馆")
    assert any(i["id"].endswith("xh-place-library-01") for i in library["items"])
    _, nothing = await search(node, q="zeppelin")
    assert nothing["total"] == 0 and nothing["items"] == []


async def test_facets_count_the_result_and_filters_narrow_it(node: RunningNode) -> None:
    _, everything = await search(node, limit="5")
    assert everything["total"] == 94
    assert sum(everything["facets"]["type"].values()) == 94
    assert set(everything["facets"]) == {"type", "category", "level", "language", "license", "free", "mode", "origin"}
    courses = everything["facets"]["type"]["Course"]
    _, filtered = await search(node, type="Course", category="https://w3id.org/edufed/schemes/isced-f/02")
    assert 0 < filtered["total"] < courses
    assert all(item["type"] == "Course" for item in filtered["items"])
    assert all("https://w3id.org/edufed/schemes/isced-f/02" in item["categories"] for item in filtered["items"])
    _, free = await search(node, free="true", type="Place")
    assert free["total"] == everything["facets"]["type"]["Place"] and free["facets"]["free"] == {"true": free["total"]}


async def test_near_me_lists_places_within_the_radius_nearest_first(node: RunningNode) -> None:
    _, near = await search(node, near=f"{PIAZZA_MAGGIORE[0]},{PIAZZA_MAGGIORE[1]}", radius="2")
    assert near["total"] >= 5
    distances = [item["distanceKm"] for item in near["items"]]
    assert distances == sorted(distances) and distances[-1] <= 2.0
    for item in near["items"]:
        assert abs(distance_km(PIAZZA_MAGGIORE, (item["latitude"], item["longitude"])) - item["distanceKm"]) < 0.01
        assert item["id"].rsplit("/", 1)[1].startswith("bo-")
    _, places = await search(node, near=f"{XUJIAHUI[0]},{XUJIAHUI[1]}", radius="2", type="Place")
    assert places["total"] >= 1 and all(i["type"] == "Place" for i in places["items"])


async def test_pages_follow_the_cursor_without_gaps_or_repeats(node: RunningNode) -> None:
    seen: list[str] = []
    url: str | None = f"{node.base_url}/api/search?limit=7"
    while url:
        async with node.http.get(url) as response:
            page = await response.json()
        seen.extend(item["id"] for item in page["items"])
        url = page["next"]
    assert len(seen) == len(set(seen)) == 94


@pytest.mark.parametrize(("params", "field"), [
    ({"colour": "red"}, "colour"),
    ({"near": "91,0"}, "near"),
    ({"near": "44.5,11.3", "radius": "500"}, "radius"),
    ({"radius": "2"}, "radius"),
    ({"limit": "0"}, "limit"),
    ({"free": "maybe"}, "free"),
    ({"q": "!!!"}, "q"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
])
async def test_bad_parameters_get_a_problem_naming_them(node: RunningNode, params: dict[str, str], field: str) -> None:
    """[API-10]"""
    async with node.http.get(f"{node.base_url}/api/search", params=params) as response:
        assert response.status == 400 and response.content_type == "application/problem+json"
        assert (await response.json(content_type=None))["field"] == field


async def test_sqlite_and_the_configured_database_give_the_same_answers(tmp_path: Path, database_url: str) -> None:
    """With EDUFED_TEST_DATABASE_URL set this compares PostgreSQL with SQLite, query by query."""
    answers = []
    for name, url in (("configured", database_url), ("sqlite", f"sqlite://{tmp_path / 'second.sqlite3'}")):
        async with running_node(tmp_path / name, url, name) as running:
            for city in ("shanghai-xuhui", "helsinki", "bologna"):
                await import_file(running.config, running.services.store, samples_dir() / f"{city}.csv")
            found = []
            for params in ({"q": "library"}, {"q": "图书馆"}, {"type": "Course", "free": "true"},
                           {"category": "https://w3id.org/edufed/schemes/isced-f/06", "limit": "50"},
                           {"near": "60.1710,24.9415", "radius": "2"}, {"limit": "100"}):
                _, body = await search(running, **params)
                facets = {k: v for k, v in body["facets"].items() if k != "origin"}
                found.append((body["total"], [i["id"].rsplit("/", 1)[1] for i in body["items"]], facets,
                              [i.get("distanceKm") for i in body["items"]]))
            answers.append(found)
    assert answers[0] == answers[1]
