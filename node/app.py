"""The aiohttp application of one node: wiring only; behaviour lives in the services it is handed."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

from aiohttp import web

from node.catalog.records import Signer, node_signer
from node.catalog.search import Search
from node.catalog.service import Catalog
from node.config import NodeConfig
from node.credentials.service import CreditBank
from node.errors import BadRequest
from node.federation.service import Federation
from node.store.records import Store
from node.trust.did import build_did_document, did_web_from_base_url
from node.trust.keyring import KeyRing
from node.web import (
    catalog_routes,
    cors,
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
    wallet_routes,
)
from node.web.connections import CONNECTIONS, ConnectionGuard, GuardedSite, deadline_middleware
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
    app = web.Application(middlewares=[problem_middleware, deadline_middleware],
                          client_max_size=config.limits.max_body_bytes)
    app[MAX_BODY] = config.limits.max_body_bytes
    app[CONNECTIONS] = ConnectionGuard(config.connections)
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
    cors.setup(app)
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
    wallet_routes.setup(app)
    return app


def describe_database(url: str) -> str:
    """The database kind and place, without credentials (the banner is printed and logged)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return f"SQLite {url.removeprefix('sqlite://')}"
    return f"PostgreSQL {parts.hostname or 'localhost'}{f':{parts.port}' if parts.port else ''}{parts.path}"


async def serve(config: NodeConfig, *, ready: Callable[[str], None]) -> None:
    """Serve ``config``'s node until SIGINT or SIGTERM, through the connection guard (slow and greedy clients);
    ``ready`` gets a line saying where it listens once the socket is bound and the database is open."""
    runner = web.AppRunner(create_app(config), keepalive_timeout=75.0)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = GuardedSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as error:  # the port is taken, or the address is not this machine's
            raise BadRequest("Cannot listen", detail=f"{config.host}:{config.port}: {error.strerror or error}",
                             field="port") from None
        ready(f"EduFed node {config.name!r} listening on http://{config.host}:{site.port} "
              f"(base URL {config.base_url}); data folder {config.data_dir}; "
              f"database {describe_database(config.effective_database_url)}")
        await stop.wait()
    finally:
        await runner.cleanup()
