"""What an operator watches: readiness and Prometheus metrics.

Each application has its own metrics registry (several nodes can share a process, as in the tests). Counters
that change on requests are kept here; figures that live in the database (queue depth, peers' lag) are read
when Prometheus scrapes, so every worker of a deployment reports the same truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from node.errors import PROBLEM_BASE
from node.web.problems import Handler, problem_response
from node.web.services import services


class _Snapshot(Collector):
    """Figures read from the node's state at scrape time."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def collect(self) -> Iterator[Any]:
        queue = GaugeMetricFamily("edufed_delivery_queue", "Deliveries by state", labels=["state"])
        for state, count in self.values.get("queue", {}).items():
            queue.add_metric([state], count)
        yield queue
        outcomes = CounterMetricFamily("edufed_deliveries", "Delivery attempts since start, by outcome",
                                       labels=["outcome"])
        for outcome, count in self.values.get("deliveries", {}).items():
            outcomes.add_metric([outcome], count)
        yield outcomes
        lag = GaugeMetricFamily("edufed_peer_lag", "Changes a followed peer published that are not applied yet",
                                labels=["peer"])
        refusals = GaugeMetricFamily("edufed_peer_refusals", "Inbox requests refused, by claimed peer",
                                     labels=["peer"])
        for peer in self.values.get("peers", []):
            lag.add_metric([peer["url"]], peer["lag"])
            refusals.add_metric([peer["url"]], peer["refusals"])
        yield lag
        yield refusals
        records = GaugeMetricFamily("edufed_records", "Live records held (own and mirrored)")
        records.add_metric([], self.values.get("records", 0))
        yield records


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("edufed_http_requests", "HTTP requests by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.verifications = Counter("edufed_verifications", "Credential and presentation verdicts",
                                     ["kind", "outcome"], registry=self.registry)
        self.snapshot = _Snapshot()
        self.registry.register(self.snapshot)


METRICS = web.AppKey("metrics", NodeMetrics)


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    request.app[METRICS].requests.labels(request.method, route, str(response.status)).inc()
    return response


async def metrics(request: web.Request) -> web.Response:
    found = services(request)
    snapshot = request.app[METRICS].snapshot
    stats = found.federation.deliverer.stats
    snapshot.values = {
        "queue": await found.federation.deliverer.queue_depth(),
        "deliveries": {"delivered": stats.delivered, "retried": stats.retried, "failed": stats.failed},
        "peers": [p.as_json() for p in await found.federation.peers.all()],
        "records": await found.store.count(),
    }
    return web.Response(body=generate_latest(request.app[METRICS].registry),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers (a load balancer sends traffic only then)."""
    try:
        await services(request).store.ping()
    except Exception as error:  # any failure to reach the database means: not ready
        return problem_response({"type": PROBLEM_BASE + "not-ready", "title": "Database unavailable",
                                 "status": 503, "detail": type(error).__name__})
    return web.json_response({"status": "ready"})


def setup(app: web.Application) -> None:
    app[METRICS] = NodeMetrics()
    app.middlewares.insert(0, count_requests)  # outermost: it also counts the problem answers
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/readyz", readyz)
