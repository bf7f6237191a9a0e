"""Slow and greedy clients over real sockets: slow headers and bodies are cut off, one address cannot take every
connection ([server] header_timeout_seconds, body_timeout_seconds, max_connections_per_client)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

from node.config import ConnectionLimits, load
from tests.harness import RunningNode, running_node

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _port(node: RunningNode) -> int:
    return int(urlsplit(node.base_url).port or 80)


async def _connect(node: RunningNode, source: str = "127.0.0.1") -> Stream:
    return await asyncio.open_connection("127.0.0.1", _port(node), local_addr=(source, 0))


async def _answer(reader: asyncio.StreamReader, within: float) -> tuple[int | None, bytes]:
    """(status, raw answer) of what the node sends until it closes the connection; status None if it sent
    nothing before closing. Fails if the connection is still open after ``within`` seconds."""
    try:
        data = await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:  # closed while our bytes were still arriving: closed all the same
        return None, b""
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, data


async def _get(node: RunningNode, path: str, source: str) -> int:
    reader, writer = await _connect(node, source)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    status, _ = await _answer(reader, 10)
    writer.close()
    return status or 0


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    """Send ``data`` one byte every ``every`` seconds until done or the node closes the connection."""
    with contextlib.suppress(ConnectionError):
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)


async def test_slow_headers_are_cut_off_within_the_limit(tmp_path: Path, database_url: str) -> None:
    limits = ConnectionLimits(header_timeout_seconds=1.0, max_connections_per_client=0)
    async with running_node(tmp_path / "n", database_url, connections=limits) as node:
        request = b"GET /search?q=pottery HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n"
        clients = [await _connect(node) for _ in range(30)]
        started = time.monotonic()
        trickles = [asyncio.create_task(_trickle(w, request, 0.2)) for _, w in clients]
        answers = await asyncio.gather(*(_answer(r, 5) for r, _ in clients))
        elapsed = time.monotonic() - started
        for task in trickles:
            task.cancel()
        assert [status for status, _ in answers] == [408] * 30
        assert json.loads(answers[0][1].split(b"\r\n\r\n", 1)[1])["title"] == "Request headers not received in time"
        assert elapsed < 3.0, f"slow connections held for {elapsed:.1f} s with a 1 s limit"
        # a client that is not slow is served as ever, also on a kept-alive connection
        reader, writer = await _connect(node)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await reader.readexactly(0)
        # ...but the next request on that connection gets the same deadline once it starts
        await asyncio.sleep(0.3)
        await reader.read(1024)  # the rest of the first answer's body
        trickle = asyncio.create_task(_trickle(writer, request, 0.2))
        status, _ = await _answer(reader, 5)
        trickle.cancel()
        assert status == 408


async def test_slow_body_is_cut_off_within_the_limit(tmp_path: Path, database_url: str) -> None:
    limits = ConnectionLimits(body_timeout_seconds=1.0)
    async with running_node(tmp_path / "n", database_url, connections=limits) as node:
        body = json.dumps({"verifiableCredential": {"type": ["VerifiableCredential"]}}).encode()
        reader, writer = await _connect(node)
        writer.write(b"POST /credentials/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:5])
        started = time.monotonic()
        trickle = asyncio.create_task(_trickle(writer, body[5:], 0.5))
        status, _ = await _answer(reader, 5)
        trickle.cancel()
        assert status is None  # closed without an answer: the request never arrived whole
        assert time.monotonic() - started < 3.0
        # the same request sent at once is answered
        reader, writer = await _connect(node)
        writer.write(b"POST /credentials/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        status, _ = await _answer(reader, 10)
        assert status is not None and 400 <= status < 500


async def test_connections_per_client_are_capped_while_others_are_served(tmp_path: Path, database_url: str) -> None:
    limits = ConnectionLimits(header_timeout_seconds=30.0, max_connections_per_client=3)
    async with running_node(tmp_path / "n", database_url, connections=limits) as node:
        held = [await _connect(node) for _ in range(3)]  # open, sending nothing
        reader, _ = await _connect(node)
        status, raw = await _answer(reader, 5)
        assert status == 429
        assert b"\r\nRetry-After: " in raw
        assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["title"] == "Too many connections from this address"
        assert await _get(node, "/healthz", source="127.0.0.2") == 200  # another address is served
        held[0][1].close()
        await asyncio.sleep(0.2)
        assert await _get(node, "/healthz", source="127.0.0.1") == 200  # a freed slot is usable again


async def test_limits_are_read_from_the_server_section(tmp_path: Path, database_url: str) -> None:
    async with running_node(tmp_path / "n", database_url) as node:
        pass
    path = node.config.data_dir / "edufed.toml"
    text = path.read_text("utf-8")
    assert "header_timeout_seconds = 10.0" in text and "max_connections_per_client = 64" in text
    path.write_text(text.replace("max_connections_per_client = 64", "max_connections_per_client = 7"), "utf-8")
    assert load(node.config.data_dir).connections.max_connections_per_client == 7
