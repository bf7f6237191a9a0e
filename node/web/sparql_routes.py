"""``/sparql``: the SPARQL 1.1 Protocol (query operation only) over the federated catalog.

Errors take the protocol's own form, a ``text/plain`` message with 400 (malformed, update, over a limit),
406 (no acceptable result format) or 503 (timed out, index still building): not problem+json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from node.sparql.endpoint import RESULTS_JSON, SparqlEndpoint, SparqlError, media_types, refused
from node.web.negotiation import NotAcceptable, choose
from node.web.services import SERVICES

SPARQL = web.AppKey("sparql", SparqlEndpoint)
QUERY_TYPE = "application/sparql-query"
UPDATE_TYPE = "application/sparql-update"
FORM_TYPE = "application/x-www-form-urlencoded"


def _error(error: SparqlError) -> web.Response:
    return web.Response(status=error.status, text=error.message + "\n", content_type="text/plain",
                        headers=error.headers)


async def _read(request: web.Request) -> tuple[str, list[str], list[str]]:
    """(query, default-graph-uri values, named-graph-uri values) from GET or either form of POST."""
    params = request.query
    if request.method == "POST":
        if request.content_type == UPDATE_TYPE:
            raise refused("SPARQL Update is not allowed: this endpoint is read-only")
        if request.content_type == QUERY_TYPE:
            return await request.text(), params.getall("default-graph-uri", []), params.getall("named-graph-uri", [])
        if request.content_type != FORM_TYPE:
            raise refused(f"POST a query as {QUERY_TYPE} or {FORM_TYPE}, not {request.content_type or 'nothing'}")
        params = await request.post()  # type: ignore[assignment]
    if "update" in params:
        raise refused("SPARQL Update is not allowed: this endpoint is read-only")
    queries = params.getall("query", [])
    if len(queries) != 1:
        raise refused("Give exactly one query parameter" if queries else "Missing query parameter")
    return (str(queries[0]), [str(g) for g in params.getall("default-graph-uri", [])],
            [str(g) for g in params.getall("named-graph-uri", [])])


def _negotiate(request: web.Request, offered: list[str]) -> str:
    try:
        best = choose(request, offered)
    except NotAcceptable:  # the SPARQL protocol answers in plain text, not problem+json
        raise SparqlError(406, f"None of the accepted media types is available for this query; offered: "
                               f"{', '.join(reversed(offered))}") from None
    return RESULTS_JSON if best == "application/json" else best


async def sparql(request: web.Request) -> web.Response:
    endpoint = request.app[SPARQL]
    try:
        query, default_graphs, named_graphs = await _read(request)
        analysis = endpoint.check(query)
        media_type = _negotiate(request, media_types(analysis.form))
        answer = await endpoint.answer(query, media_type, default_graphs=default_graphs, named_graphs=named_graphs)
    except SparqlError as error:
        return _error(error)
    headers = {"Vary": "Accept", "EduFed-Result-Limit": str(endpoint.limits.max_rows)}
    if answer.truncated:
        headers["EduFed-Results-Truncated"] = "true"
    return web.Response(text=answer.body, content_type=answer.media_type, charset="utf-8", headers=headers)


def setup(app: web.Application) -> None:
    """Route ``/sparql`` and keep one endpoint (and its index) per application, started with it."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        endpoint = app[SPARQL] = SparqlEndpoint(app[SERVICES].store)
        endpoint.start()
        yield
        await endpoint.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/sparql", sparql)
    app.router.add_post("/sparql", sparql)
