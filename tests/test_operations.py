"""What an operator watches: readiness, and Prometheus metrics that follow what the node does."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.harness import running_node


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def test_readiness_and_metrics(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "node", database_url) as node:
        async with node.http.get(f"{node.base_url}/readyz") as response:
            assert response.status == 200
        await node.publish({"@context": "https://w3id.org/edufed/v1", "type": "Course", "name": {"en": "Metrics"}})
        async with node.http.post(f"{node.base_url}/api/records", json={}) as response:
            assert response.status == 401
        async with node.http.post(f"{node.base_url}/credentials/verify",
                                  json={"verifiableCredential": {"not": "a credential"}}) as response:
            assert response.status == 422
        async with node.http.get(f"{node.base_url}/metrics") as response:
            assert response.status == 200
            found = samples(await response.text())
    route = (("method", "POST"), ("route", "/api/records"))
    assert found[("edufed_http_requests_total", (*route, ("status", "201")))] == 1
    assert found[("edufed_http_requests_total", (*route, ("status", "401")))] == 1
    assert found[("edufed_verifications_total", (("kind", "credential"), ("outcome", "refused")))] == 1
    assert found[("edufed_records", ())] == 1
    assert found[("edufed_delivery_queue", (("state", "failed"),))] == 0
