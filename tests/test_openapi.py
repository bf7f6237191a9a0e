"""The OpenAPI document is valid OpenAPI 3.1 and lists every route the node serves."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from tests.harness import running_node


async def test_openapi_document_is_valid_and_complete(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "node", database_url) as node:
        async with node.http.get(f"{node.base_url}/openapi.json") as response:
            assert response.status == 200
            document = await response.json()
        routes = {
            (route.method.lower(), route.resource.canonical)
            for route in node.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
            and not route.resource.canonical.startswith("/static")
        }
    validate(document)
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert routes - documented == set(), "routes missing from /openapi.json"
    assert documented - routes == set(), "documented routes the node does not serve"
