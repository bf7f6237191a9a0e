"""The aiohttp application of one node: wiring only; behaviour lives in the services it is handed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from node.catalog.records import Signer, node_signer
from node.catalog.search import Search
from node.catalog.service import Catalog
from node.config import NodeConfig
from node.credentials.service import CreditBank
from node.federation.service import Federation
from node.store.records import Store
from node.trust.did import build_did_document, did_web_from_base_url
from node.trust.keyring import KeyRing
from node.web import (
    catalog_routes,
    credential_routes,
    federation_routes,
    identity_routes,
    limits,
    oai_routes,
    openapi,
    operations,
    pages,
    search_routes,
    sparql_routes,
    vocab_routes,
)
from node.web.problems import MAX_BODY, problem_middleware
from node.web.services import SERVICES, Services


def make_services(config: NodeConfig, store: Store, keyring: KeyRing) -> Services:
    did = did_web_from_base_url(config.base_url)

    def signer() -> Signer:
        return node_signer(config.base_url, keyring)

    federation = Federation(config, store, signer)
    catalog = Catalog(store, config.records_base, signer, config.languages, on_change=federation.changed)
    credit_bank = CreditBank(config, store, signer, federation.client, federation.resolver)
    return Services(config=config, store=store, keyring=keyring, catalog=catalog, did=did,
                    did_document=lambda: build_did_document(did, keyring.entries()), federation=federation,
                    credit_bank=credit_bank, search=Search(store, config.languages))


def create_app(config: NodeConfig, store: Store | None = None) -> web.Application:
    """The node's application; opens its own store unless one is handed in (tests share one)."""
    app = web.Application(middlewares=[problem_middleware], client_max_size=config.limits.max_body_bytes)
    app[MAX_BODY] = config.limits.max_body_bytes
    limits.setup(app, config.limits)
    keyring = KeyRing(config.keys_dir)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        opened = store or await Store.open(config.effective_database_url)
        found = app[SERVICES] = make_services(config, opened, keyring)
        await found.federation.start()
        yield
        await found.federation.stop()
        if store is None:
            await opened.close()

    app.cleanup_ctx.append(lifecycle)
    identity_routes.setup(app)
    vocab_routes.setup(app)
    catalog_routes.setup(app)
    federation_routes.setup(app)
    credential_routes.setup(app)
    sparql_routes.setup(app)
    search_routes.setup(app)
    openapi.setup(app)
    operations.setup(app)
    pages.setup(app)
    oai_routes.setup(app)
    return app
