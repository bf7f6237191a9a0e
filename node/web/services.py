"""The services a request handler may use, kept in the application under one typed key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node.catalog.search import Search
from node.catalog.service import Catalog
from node.config import NodeConfig
from node.credentials.service import CreditBank
from node.federation.service import Federation
from node.store.records import Store
from node.trust.admin_token import check_bearer
from node.trust.keyring import KeyRing


@dataclass(frozen=True)
class Services:
    config: NodeConfig
    store: Store
    keyring: KeyRing
    catalog: Catalog
    did: str
    did_document: Callable[[], dict[str, Any]]
    federation: Federation
    credit_bank: CreditBank
    search: Search


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def require_admin(request: web.Request) -> Services:
    found = request.app[SERVICES]
    check_bearer(request.headers.get("Authorization"), found.config.admin_token_sha256)
    return found
