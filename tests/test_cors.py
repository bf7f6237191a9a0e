"""CORS: browser applications on other sites may use the public read APIs (search, records, contexts, the DID
document, OAI-PMH, SPARQL, verification), never the admin routes."""

from __future__ import annotations

from pathlib import Path

from node.web.cors import PUBLIC
from tests.harness import RunningNode, running_node

ORIGIN = {"Origin": "https://app.example"}


async def preflight(node: RunningNode, path: str, method: str, headers: str = "") -> tuple[int, dict[str, str]]:
    asked = {"Access-Control-Request-Method": method, **ORIGIN}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    async with node.http.options(f"{node.base_url}{path}", headers=asked) as response:
        return response.status, dict(response.headers)


async def test_public_read_apis_answer_preflights_and_allow_any_origin(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "n", database_url) as node:
        record = await node.publish({"@context": "https://w3id.org/edufed/v1", "type": "Course",
                                     "name": {"en": "Pottery"}})
        record_path = record["id"].removeprefix(node.base_url)
        for path, method, headers in (("/api/search", "GET", ""), (record_path, "GET", "accept"),
                                      ("/sparql", "POST", "content-type"), ("/credentials/verify", "POST",
                                                                              "Content-Type"),
                                      ("/oai", "GET", ""), ("/.well-known/did.json", "GET", "")):
            status, answer = await preflight(node, path, method, headers)
            assert status == 204, (path, status)
            assert answer["Access-Control-Allow-Origin"] == "*"
            assert method in answer["Access-Control-Allow-Methods"]
        reads = ["/api/search?q=pottery", record_path, "/api/records?limit=1", "/.well-known/did.json",
                 "/contexts", "/oai?verb=Identify", "/sparql?query=ASK%20%7B%7D", "/credits/systems",
                 "/vocab/v1/context.jsonld", "/search?q=pottery"]
        for path in reads:
            async with node.http.get(f"{node.base_url}{path}", headers=ORIGIN) as response:
                assert response.status == 200, (path, response.status)
                assert response.headers.get("Access-Control-Allow-Origin") == "*", path
                assert "ETag" in response.headers["Access-Control-Expose-Headers"]
        # a refusal is readable too, so the application can show why
        async with node.http.post(f"{node.base_url}/credentials/verify", json={"verifiableCredential": {}},
                                  headers=ORIGIN) as response:
            assert 400 <= response.status < 500
            assert response.headers.get("Access-Control-Allow-Origin") == "*"


async def test_admin_routes_get_no_cors(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "n", database_url) as node:
        record = await node.publish({"@context": "https://w3id.org/edufed/v1", "type": "Course",
                                     "name": {"en": "Pottery"}})
        record_path = record["id"].removeprefix(node.base_url)
        refused = [("/api/records", "POST", "content-type"), (record_path, "PUT", ""), (record_path, "DELETE", ""),
                   ("/api/records", "GET", "authorization"), ("/credentials/issue", "POST", "content-type"),
                   ("/credentials/status", "POST", ""), ("/inbox", "POST", ""), ("/metrics", "GET", ""),
                   ("/federation/status", "GET", "")]
        for path, method, headers in refused:
            status, answer = await preflight(node, path, method, headers)
            assert status != 204 and "Access-Control-Allow-Origin" not in answer, (path, method, headers)
        async with node.http.post(f"{node.base_url}/api/records", headers={**node.admin, **ORIGIN},
                                  json={"@context": "https://w3id.org/edufed/v1", "type": "Course",
                                        "name": {"en": "Weaving"}}) as response:
            assert response.status == 201 and "Access-Control-Allow-Origin" not in response.headers
        for path in ("/metrics", "/federation/status", "/healthz"):
            async with node.http.get(f"{node.base_url}{path}", headers=ORIGIN) as response:
                assert "Access-Control-Allow-Origin" not in response.headers, path


async def test_every_public_path_is_a_route(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "n", database_url) as node:
        routes: dict[str, set[str]] = {}
        for route in node.app.router.routes():
            routes.setdefault(route.resource.canonical if route.resource else "", set()).add(route.method)
        for path, methods in PUBLIC.items():
            canonical = path.replace(":.+", "")  # aiohttp names a route by its template without the pattern
            assert canonical in routes and set(methods) <= routes[canonical], path
