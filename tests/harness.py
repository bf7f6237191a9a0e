"""Real nodes for tests: initialised like ``edufed init`` does, served over HTTP on a free loopback port."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.app import create_app
from node.bootstrap import init_node
from node.config import NodeConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningNode:
    config: NodeConfig
    token: str
    http: aiohttp.ClientSession

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


@asynccontextmanager
async def running_node(data_dir: Path, database_url: str, name: str = "Test Node") -> AsyncIterator[RunningNode]:
    port = free_port()
    config, token = await init_node(
        data_dir, base_url=f"http://127.0.0.1:{port}", name=name, database_url=database_url,
        allow_private_networks=True,
    )
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningNode(config, token, http)
    finally:
        await runner.cleanup()
