"""The OpenAPI 3.1 description of a node's HTTP interface, served at ``/openapi.json``.

Built from one table of operations, and a test checks that every route the application registers is in it, so
the document cannot fall behind the code. Linked-data and protocol payloads (records, activities, credentials)
are described by reference to their own specifications rather than copied into JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from node import __version__
from node.web.services import services

JSON_LD = "application/ld+json"
PROBLEM = {"description": "RFC 9457 problem document",
           "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
ANY_JSON: dict[str, Any] = {"type": "object", "additionalProperties": True}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    tag: str
    summary: str
    admin: bool = False
    query: tuple[tuple[str, str], ...] = ()  # (name, description)
    body: str | None = None  # media type of the request body
    ok: int = 200
    ok_type: str = "application/json"
    errors: tuple[int, ...] = ()
    spec: str | None = None  # the protocol_spec chapter that defines the payloads
    extra: dict[str, Any] = field(default_factory=dict)


SEARCH_PARAMETERS = (
    ("q", "words, all of which must match (any language)"), ("type", "record type"),
    ("category", "category (SKOS concept IRI)"), ("level", "educational level"), ("language", "BCP 47 tag"),
    ("license", "licence IRI"), ("free", "true or false"), ("mode", "delivery mode"),
    ("origin", "origin node host[:port]"), ("near", "latitude,longitude"), ("radius", "kilometres, with near"),
    ("limit", "1-100"), ("cursor", "from a previous page's next"),
)

OPERATIONS = (
    Operation("get", "/", "pages", "Home page of the node", ok_type="text/html"),
    Operation("get", "/healthz", "operations", "Liveness"),
    Operation("get", "/readyz", "operations", "Readiness: the database answers", errors=(503,)),
    Operation("get", "/metrics", "operations", "Prometheus metrics", ok_type="text/plain"),
    Operation("get", "/.well-known/did.json", "identity", "The node's did:web DID document",
              ok_type="application/did+json", spec="01-identity.md"),
    Operation("get", "/contexts", "linked data", "Bundled JSON-LD contexts: IRI -> URL of the copy on this node"),
    Operation("get", "/contexts/{name}", "linked data", "One bundled context, its pinned bytes", ok_type=JSON_LD,
              errors=(404,)),
    Operation("get", "/vocab", "linked data", "EduFed vocabulary files: IRI -> URL on this node"),
    Operation("get", "/vocab/{path}", "linked data", "One vocabulary file (Turtle or JSON-LD)",
              ok_type="text/turtle", errors=(404,)),
    Operation("post", "/api/records", "catalog", "Publish a record", admin=True, body=JSON_LD, ok=201,
              ok_type=JSON_LD, errors=(400, 401, 409, 413, 415, 422, 503), spec="04-catalog-api.md"),
    Operation("get", "/api/records", "catalog", "A stored record by IRI, or the cursor-paged list of records",
              query=(("iri", "record IRI, own or mirrored"), ("after", "cursor"), ("limit", "1-1000"),
                     ("origin", "host[:port] of an origin node")), ok_type=JSON_LD, errors=(400, 404, 406, 410),
              spec="04-catalog-api.md"),
    Operation("get", "/records/{id}", "catalog", "A record (JSON-LD, Turtle, N-Triples, N-Quads, TriG or HTML)",
              ok_type=JSON_LD, errors=(404, 406, 410), spec="04-catalog-api.md"),
    Operation("put", "/records/{id}", "catalog", "Replace a record with a new version", admin=True, body=JSON_LD,
              ok_type=JSON_LD, errors=(400, 401, 404, 409, 410, 413, 415, 422, 503), spec="04-catalog-api.md"),
    Operation("delete", "/records/{id}", "catalog", "Withdraw a record (leaves a signed Tombstone)", admin=True,
              ok_type=JSON_LD, errors=(401, 404, 410), spec="04-catalog-api.md"),
    Operation("get", "/api/search", "search", "Full-text, faceted and near-me search over own and mirrored records",
              query=SEARCH_PARAMETERS, errors=(400,)),
    Operation("get", "/search", "pages", "Search page", query=SEARCH_PARAMETERS, ok_type="text/html"),
    Operation("get", "/map", "pages", "The learning map: places, events and course runs near a point",
              query=(("near", "latitude,longitude"), ("radius", "kilometres"), ("type", "record type")),
              ok_type="text/html"),
    Operation("get", "/actor", "federation", "The node's ActivityPub actor (Service)",
              ok_type="application/activity+json", spec="05-discovery.md"),
    Operation("get", "/.well-known/nodeinfo", "federation", "NodeInfo links", spec="05-discovery.md"),
    Operation("get", "/nodeinfo/2.1", "federation", "NodeInfo 2.1 with EduFed metadata", spec="05-discovery.md"),
    Operation("get", "/.well-known/webfinger", "federation", "WebFinger for acct:node@host",
              query=(("resource", "acct:node@host or the actor URL"),), ok_type="application/jrd+json",
              errors=(400, 404), spec="05-discovery.md"),
    Operation("get", "/outbox", "federation", "The change feed (OrderedCollection, or a page after a cursor)",
              query=(("after", "sequence number"), ("limit", "1-500")), ok_type="application/activity+json",
              errors=(400,), spec="06-feed-and-push.md"),
    Operation("get", "/outbox/{seq}", "federation", "One activity of the change feed",
              ok_type="application/activity+json", errors=(404,), spec="06-feed-and-push.md"),
    Operation("get", "/followers", "federation", "Number of followers", ok_type="application/activity+json"),
    Operation("get", "/following", "federation", "Number of followed peers", ok_type="application/activity+json"),
    Operation("post", "/inbox", "federation", "Shared inbox (HTTP-signed activities)",
              body="application/activity+json", ok=202, errors=(400, 401, 403, 413, 415, 422),
              spec="07-sync-and-trust.md"),
    Operation("get", "/federation/peers", "federation", "Peers this node has reached (gossip)",
              spec="05-discovery.md"),
    Operation("get", "/federation/digest", "federation", "Anti-entropy digest of live own records",
              spec="07-sync-and-trust.md"),
    Operation("get", "/federation/status", "federation", "Peers with state and lag, delivery queue, digest",
              spec="07-sync-and-trust.md"),
    Operation("get", "/federation", "pages", "Federation page", ok_type="text/html"),
    Operation("post", "/credentials/issue", "credentials",
              "Issue a VC 2.0 credential (Open Badges 3.0 achievement credentials checked as a profile)",
              admin=True, body="application/json", ok=201, errors=(400, 401, 409, 413, 415, 422),
              spec="08-credentials.md"),
    Operation("post", "/credentials/verify", "credentials",
              "Verify a credential, or a presentation (422 with checks if it fails)",
              body="application/json", errors=(400, 413, 415, 422, 429, 503), spec="08-credentials.md"),
    Operation("post", "/presentations/verify", "credentials", "Verify a presentation with challenge and domain",
              body="application/json", errors=(400, 413, 415, 422, 429, 503), spec="08-credentials.md"),
    Operation("post", "/credentials/status", "credentials", "Revoke, suspend or reinstate an issued credential",
              admin=True, body="application/json", errors=(400, 401, 404, 422), spec="09-status-lists.md"),
    Operation("get", "/credentials/status/{list}", "credentials", "A Bitstring Status List credential",
              ok_type=JSON_LD, errors=(404,), spec="09-status-lists.md"),
    Operation("post", "/credits/transcript", "credentials", "Verify a presentation and convert its credits",
              body="application/json", errors=(400, 413, 415, 422, 429, 503), spec="10-credit-conversion.md"),
    Operation("get", "/credits/systems", "credentials", "Credit systems and conversion rules in use",
              spec="10-credit-conversion.md"),
    Operation("get", "/verify", "pages", "Credential verification page", ok_type="text/html"),
    Operation("post", "/verify", "pages", "Verify a pasted or uploaded credential", body="multipart/form-data",
              ok_type="text/html", errors=(400, 422, 429, 503)),
    Operation("get", "/oai", "harvesting", "OAI-PMH 2.0 provider (all six verbs)",
              query=(("verb", "OAI-PMH verb"),), ok_type="text/xml", spec="11-oai-pmh.md"),
    Operation("post", "/oai", "harvesting", "OAI-PMH 2.0 provider (form-encoded arguments)",
              body="application/x-www-form-urlencoded", ok_type="text/xml", spec="11-oai-pmh.md"),
    Operation("get", "/oai/jsonld.xsd", "harvesting", "XML Schema of the jsonld metadata format",
              ok_type="application/xml", spec="11-oai-pmh.md"),
    Operation("get", "/sparql", "linked data", "SPARQL 1.1 query (read-only, limited)",
              query=(("query", "SPARQL query"),), ok_type="application/sparql-results+json", errors=(400, 503),
              spec="12-sparql.md"),
    Operation("post", "/sparql", "linked data", "SPARQL 1.1 query in the body", body="application/sparql-query",
              ok_type="application/sparql-results+json", errors=(400, 503), spec="12-sparql.md"),
    Operation("get", "/openapi.json", "operations", "This document"),
)

FORM = "application/x-www-form-urlencoded"
# Learners' wallets (protocol_spec/16-wallets.md). The OpenID4VCI endpoints answer errors as OAuth error JSON.
WALLET_OPERATIONS = (
    Operation("post", "/credentials/offers", "wallets", "Offer a credential to a wallet (OpenID4VCI, pre-authorized)",
              admin=True, body="application/json", ok=201, errors=(400, 401, 413, 415, 422), spec="16-wallets.md"),
    Operation("get", "/credentials/offers/{id}", "wallets", "State of an offer: pending, redeemed or expired",
              errors=(404,), spec="16-wallets.md"),
    Operation("get", "/openid4vci/offers/{reference}", "wallets", "A credential offer by reference",
              errors=(404, 410), spec="16-wallets.md"),
    Operation("get", "/.well-known/openid-credential-issuer", "wallets", "OpenID4VCI credential issuer metadata",
              spec="16-wallets.md"),
    Operation("get", "/.well-known/oauth-authorization-server", "wallets", "OAuth 2.0 authorization server metadata",
              spec="16-wallets.md"),
    Operation("post", "/openid4vci/token", "wallets", "Token endpoint: pre-authorized code (and PIN) for a token",
              body=FORM, errors=(400,), spec="16-wallets.md"),
    Operation("post", "/openid4vci/nonce", "wallets", "A fresh c_nonce for a key proof", spec="16-wallets.md"),
    Operation("post", "/openid4vci/credential", "wallets", "Credential endpoint: the credential bound to a key proof",
              body="application/json", errors=(400, 401), spec="16-wallets.md"),
    Operation("post", "/presentations/requests", "wallets", "Ask a wallet for a presentation (OpenID4VP, DCQL)",
              body="application/json", ok=201, errors=(400, 413, 415, 429), spec="16-wallets.md"),
    Operation("get", "/presentations/requests/{id}", "wallets", "Result of a presentation request",
              errors=(404,), spec="16-wallets.md"),
    Operation("get", "/openid4vp/requests/{reference}", "wallets", "The signed request object (request_uri)",
              ok_type="application/oauth-authz-req+jwt", errors=(404, 410), spec="16-wallets.md"),
    Operation("post", "/openid4vp/response", "wallets", "Response endpoint (direct_post) of a presentation request",
              body=FORM, errors=(400,), spec="16-wallets.md"),
    Operation("post", "/exchanges", "wallets", "Start a VC-API exchange (DID authentication, then the credential)",
              admin=True, body="application/json", ok=201, errors=(400, 401, 413, 415, 422), spec="16-wallets.md"),
    Operation("post", "/exchanges/{id}", "wallets", "Take part in an exchange: {} or a DID authentication",
              body="application/json", errors=(400, 404, 409, 410, 413, 415, 422), spec="16-wallets.md"),
    Operation("get", "/wallets/offer", "pages", "Staff page: offer a credential as a QR code", ok_type="text/html"),
    Operation("post", "/wallets/offer", "pages", "Make the offer and show its QR code", body=FORM, ok=201,
              ok_type="text/html", errors=(400, 401, 422)),
    Operation("get", "/wallets/verify", "pages", "Verifier page: ask a wallet for a credential", ok_type="text/html"),
    Operation("post", "/wallets/verify", "pages", "Start a presentation request and show its QR code", body=FORM,
              ok=201, ok_type="text/html", errors=(400,)),
    Operation("get", "/wallets/verify/{id}", "pages", "The answer to a presentation request, in words",
              ok_type="text/html", errors=(404,)),
)


def _operation(op: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {str(op.ok): {"description": "OK", "content": {op.ok_type: {"schema": ANY_JSON}}}}
    responses.update({str(code): PROBLEM for code in op.errors})
    doc: dict[str, Any] = {"tags": [op.tag], "summary": op.summary, "responses": responses,
                           "operationId": f"{op.method}_{op.path}".replace("/", "_").replace("{", "").replace("}", "")}
    parameters = [{"name": name, "in": "query", "required": False, "description": text, "schema": {"type": "string"}}
                  for name, text in op.query]
    parameters += [{"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
                    for part in op.path.split("/") if part.startswith("{")]
    if parameters:
        doc["parameters"] = parameters
    if op.body:
        doc["requestBody"] = {"required": True, "content": {op.body: {"schema": ANY_JSON}}}
    if op.admin:
        doc["security"] = [{"adminToken": []}]
    if op.spec:
        doc["externalDocs"] = {"description": "EduFed protocol", "url": f"https://w3id.org/edufed/spec/{op.spec}"}
    return doc


def document(base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in (*OPERATIONS, *WALLET_OPERATIONS):
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "EduFed node", "version": __version__,
                 "description": "A node of the EduFed federation: signed catalog records, federation, credentials."},
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "the admin token printed by edufed init"}},
            "schemas": {"Problem": {"type": "object", "required": ["type", "title", "status"], "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "field": {"type": "string"}}}},
        },
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(services(request).config.base_url))


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi)
