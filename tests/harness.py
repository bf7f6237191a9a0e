"""Real nodes for tests: initialised like ``edufed init`` does, served over HTTP on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.app import create_app
from node.bootstrap import ADMIN_TOKEN_FILE, init_node
from node.config import (
    CONFIG_FILE,
    ConnectionLimits,
    CredentialPolicy,
    FederationPolicy,
    Limits,
    NodeConfig,
    load,
    save,
)
from node.web.connections import GuardedSite
from node.web.services import SERVICES, Services


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningNode:
    config: NodeConfig
    token: str
    http: aiohttp.ClientSession
    app: web.Application

    @property
    def services(self) -> Services:
        return self.app[SERVICES]

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def publish(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(f"{self.base_url}/api/records", json=body, headers=self.admin) as response:
            assert response.status == 201, await response.text()
            result: dict[str, Any] = await response.json(content_type=None)
            return result

    async def record(self, iri: str) -> tuple[int, dict[str, Any] | None]:
        """(status, body) of ``GET /api/records?iri=`` on this node."""
        async with self.http.get(f"{self.base_url}/api/records", params={"iri": iri}) as response:
            body = await response.json(content_type=None) if response.status in (200, 410) else None
            return response.status, body

    async def federation_status(self) -> dict[str, Any]:
        async with self.http.get(f"{self.base_url}/federation/status") as response:
            assert response.status == 200
            result: dict[str, Any] = await response.json()
            return result

    async def peer(self, other: RunningNode) -> dict[str, Any] | None:
        return await self.peer_by_url(other.base_url)

    async def peer_by_url(self, base_url: str) -> dict[str, Any] | None:
        peers = (await self.federation_status())["peers"]
        return next((p for p in peers if p["url"] == base_url), None)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait until ``check()`` holds (federation is asynchronous); fail with ``what`` after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


FAST = FederationPolicy(discovery_interval_seconds=0.3, sync_interval_seconds=1.0, discovery_per_cycle=10)


@asynccontextmanager
async def running_node(
    data_dir: Path,
    database_url: str,
    name: str = "Test Node",
    *,
    federation: FederationPolicy = FAST,
    credentials: CredentialPolicy | None = None,
    connections: ConnectionLimits | None = None,
    limits: Limits | None = None,
) -> AsyncIterator[RunningNode]:
    """A node served on loopback; a data folder that already exists is served again (a restart)."""
    if (data_dir / CONFIG_FILE).exists():
        config = load(data_dir)
        token = (data_dir / ADMIN_TOKEN_FILE).read_text("utf-8").strip()
    else:
        port = free_port()
        config, token = await init_node(
            data_dir, base_url=f"http://127.0.0.1:{port}", name=name, database_url=database_url,
            allow_private_networks=True,
        )
    config = replace(config, federation=federation, credentials=credentials or config.credentials,
                     connections=connections or config.connections, limits=limits or config.limits)
    save(config)
    app = create_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", config.port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningNode(config, token, http, app)
    finally:
        await runner.cleanup()
