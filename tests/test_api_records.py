"""The catalog API of one real node over HTTP: publish, read in every format, update, withdraw, refuse."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import rdflib

from node.ld.contexts import bundled_iris, manifest
from node.trust.proofs import verify
from tests.harness import RunningNode, running_node
from tests.interop_verifier import verify_independently

COURSE: dict[str, Any] = {
    "@context": "https://w3id.org/edufed/v1",
    "type": "Course",
    "name": {"en": "Pottery for beginners", "zh": "陶艺入门"},
    "description": "Hands-on ceramics: wedging, throwing and glazing, in six evening sessions.",
    "keywords": ["ceramics", "crafts"],
    "inLanguage": "en",
    "isAccessibleForFree": True,
    "about": ["https://w3id.org/edufed/schemes/isced-f/02"],
}


@pytest.fixture
async def node(tmp_path: Path, database_url: str) -> AsyncIterator[RunningNode]:
    async with running_node(tmp_path / "node", database_url) as running:
        yield running


async def did_document(node: RunningNode) -> dict[str, Any]:
    async with node.http.get(f"{node.base_url}/.well-known/did.json") as response:
        assert response.status == 200
        document: dict[str, Any] = await response.json(content_type=None)
        return document


async def record_total(node: RunningNode) -> int:
    async with node.http.get(f"{node.base_url}/api/records") as response:
        return int((await response.json())["total"])


async def test_published_record_is_signed_and_verifies_against_the_did_document(node: RunningNode) -> None:
    signed = await node.publish(COURSE)
    assert signed["id"].startswith(f"{node.base_url}/records/")
    assert signed["version"] == 1
    assert signed["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    did_doc = await did_document(node)
    assert did_doc["id"] == "did:web:" + node.base_url.removeprefix("http://").replace(":", "%3A")
    result = verify(signed, {did_doc["id"]: did_doc}.get, expected_controller=did_doc["id"])
    assert result.verified, result


async def test_served_record_verifies_in_an_independent_implementation(node: RunningNode) -> None:
    """[PRF-4] the JavaScript Data Integrity stack, given only the DID document, accepts what the node serves."""
    signed = await node.publish(COURSE)
    async with node.http.get(f"{node.base_url}/api/records", params={"iri": signed["id"]}) as response:
        served = await response.json(content_type=None)
    did_doc = await did_document(node)
    assert verify_independently(served, {did_doc["id"]: did_doc}) == {"verified": True, "error": ""}
    served["name"]["en"] = "Pottery for experts"
    assert verify_independently(served, {did_doc["id"]: did_doc})["verified"] is False


async def test_record_is_served_in_every_format(node: RunningNode) -> None:
    signed = await node.publish(COURSE)
    iri = signed["id"]
    async with node.http.get(iri) as response:
        assert response.status == 200
        assert response.content_type == "application/ld+json"
        assert json.loads(await response.text()) == signed
    async with node.http.get(iri, headers={"Accept": "text/turtle"}) as response:
        assert response.content_type == "text/turtle"
        graph = rdflib.Graph().parse(data=await response.text(), format="turtle")
    name_in_chinese = rdflib.Literal("陶艺入门", lang="zh")
    assert (rdflib.URIRef(iri), rdflib.URIRef("https://schema.org/name"), name_in_chinese) in graph
    async with node.http.get(iri, headers={"Accept": "application/n-triples"}) as response:
        assert response.content_type == "application/n-triples"
        assert len(rdflib.Graph().parse(data=await response.text(), format="nt")) == len(graph)
    async with node.http.get(iri, headers={"Accept": "text/html"}) as response:
        page = await response.text()
        assert response.content_type == "text/html"
        assert "Pottery for beginners" in page
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    async with node.http.get(f"{node.base_url}/api/records", params={"iri": iri}) as response:
        assert json.loads(await response.text()) == signed


async def test_update_makes_a_new_signed_version_and_stale_writes_conflict(node: RunningNode) -> None:
    signed = await node.publish(COURSE)
    changed = {**copy.deepcopy(signed), "description": "Now with a raku firing day."}
    async with node.http.put(signed["id"], json=changed, headers={**node.admin, "If-Match": '"v1"'}) as response:
        assert response.status == 200, await response.text()
        updated = await response.json(content_type=None)
    assert updated["version"] == 2
    assert updated["description"] == "Now with a raku firing day."
    assert updated["proof"]["proofValue"] != signed["proof"]["proofValue"]
    async with node.http.put(signed["id"], json=changed, headers={**node.admin, "If-Match": '"v1"'}) as response:
        assert response.status == 409
        assert (await response.json(content_type=None))["field"] == "If-Match"
    async with node.http.get(signed["id"]) as response:
        assert (await response.json(content_type=None))["version"] == 2


async def test_delete_leaves_a_signed_tombstone_served_with_410(node: RunningNode) -> None:
    signed = await node.publish(COURSE)
    async with node.http.delete(signed["id"], headers=node.admin) as response:
        assert response.status == 200
    async with node.http.get(signed["id"]) as response:
        assert response.status == 410
        tombstone = json.loads(await response.text())
    assert tombstone["type"] == "Tombstone"
    assert tombstone["formerType"] == "Course"
    did_doc = await did_document(node)
    assert verify(tombstone, {did_doc["id"]: did_doc}.get).verified
    async with node.http.put(signed["id"], json=COURSE, headers=node.admin) as response:
        assert response.status == 410


def deeply_nested(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = {"x": 1}
    for _ in range(levels):
        body = {"x": body}
    return {**COURSE, "description": body}


BAD_INPUTS: list[tuple[str, Any, dict[str, str], int, str | None]] = [
    ("malformed JSON", b'{"type": "Course",', {}, 400, "body"),
    ("not JSON media type", b"<course/>", {"Content-Type": "application/xml"}, 415, "Content-Type"),
    ("JSON array", [COURSE], {}, 400, "body"),
    ("remote context", {**COURSE, "@context": "https://evil.example/context.jsonld"}, {}, 400, "@context"),
    ("foreign context", {**COURSE, "@context": "https://www.w3.org/ns/activitystreams"}, {}, 422, "@context"),
    ("undefined term", {**COURSE, "sneaky": "not covered by the proof"}, {}, 422, "sneaky"),
    ("unknown type", {**COURSE, "type": "Spaceship"}, {}, 422, "type"),
    ("shape violation", {k: v for k, v in COURSE.items() if k != "name"}, {}, 422, "name"),
    ("too deep", deeply_nested(200), {}, 400, "body"),
    ("id of another node", {**COURSE, "id": "https://elsewhere.example/records/1"}, {}, 422, "id"),
]


@pytest.mark.parametrize(("case", "body", "headers", "status", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
async def test_bad_input_is_refused_with_a_problem_and_nothing_is_stored(
    node: RunningNode, case: str, body: Any, headers: dict[str, str], status: int, field: str | None
) -> None:
    before = await record_total(node)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/ld+json", **node.admin, **headers}
    async with node.http.post(f"{node.base_url}/api/records", data=data, headers=all_headers) as response:
        assert response.status == status, await response.text()
        assert response.content_type == "application/problem+json"
        problem = await response.json(content_type=None)
    assert problem["status"] == status
    assert problem["title"]
    assert problem.get("field") == field
    assert await record_total(node) == before


async def test_oversized_body_gets_413(node: RunningNode) -> None:
    big = {**COURSE, "description": "x" * (node.config.limits.max_body_bytes + 10)}
    async with node.http.post(f"{node.base_url}/api/records", json=big, headers=node.admin) as response:
        assert response.status == 413
        assert response.content_type == "application/problem+json"
    assert await record_total(node) == 0


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic abc"])
async def test_admin_actions_need_the_token(node: RunningNode, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with node.http.post(f"{node.base_url}/api/records", json=COURSE, headers=headers) as response:
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert (await response.json(content_type=None))["field"] == "Authorization"
    signed = await node.publish(COURSE)
    async with node.http.delete(signed["id"], headers=headers) as response:
        assert response.status == 401
    async with node.http.get(signed["id"]) as response:
        assert response.status == 200


async def test_unknown_record_is_a_404_problem(node: RunningNode) -> None:
    async with node.http.get(f"{node.base_url}/api/records", params={"iri": "https://nowhere.example/x"}) as r:
        assert r.status == 404
        assert r.content_type == "application/problem+json"


async def test_bundled_contexts_are_served_with_their_pinned_bytes(node: RunningNode) -> None:
    async with node.http.get(f"{node.base_url}/contexts") as response:
        listing = await response.json()
    assert sorted(listing) == bundled_iris()
    for iri, url in listing.items():
        async with node.http.get(url) as response:
            assert response.status == 200
            digest = hashlib.sha256(await response.read()).hexdigest()
        assert digest == manifest()[iri]["sha256"], iri


async def test_vocabulary_files_are_served_and_parse(node: RunningNode) -> None:
    async with node.http.get(f"{node.base_url}/vocab") as response:
        listing = await response.json()
    assert {"https://w3id.org/edufed/ns", "https://w3id.org/edufed/shapes/v1",
            "https://w3id.org/edufed/schemes/isced-f", "https://w3id.org/edufed/credit-systems"} <= set(listing)
    for url in set(listing.values()):
        async with node.http.get(url) as response:
            assert response.status == 200, url
            body = await response.text()
        if response.content_type == "text/turtle":
            assert len(rdflib.Graph().parse(data=body, format="turtle")) > 10, url
