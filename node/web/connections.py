"""Slow and greedy clients: deadlines for request headers and bodies, and a cap on connections per address.

Why: aiohttp waits for a request's headers as long as the client keeps the connection open, so a client that
sends one byte a second (slowloris) holds a connection, a file descriptor and a task for ever, and a few hundred
of them shut every other client out. Three rules, all from ``[server]`` in ``edufed.toml``:

* the header block of a request must be complete within ``header_timeout_seconds`` of its first byte (or of the
  connection, for the first request); otherwise the node answers 408 and closes the connection;
* a request's body must have arrived within ``body_timeout_seconds`` of its headers; otherwise the connection is
  closed (the handler sees the client gone, as when it disconnects);
* one client address may hold at most ``max_connections_per_client`` connections (0: no cap); a connection
  beyond it is answered 429 with ``Retry-After`` and closed before anything is read.

The deadlines live in the connection, not in the handler: :class:`GuardedSite` serves the application through
:class:`GuardedProtocol`, a thin wrapper around aiohttp's own protocol that only watches time and counts, and
:func:`deadline_middleware` tells it when a request has reached the application.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.config import ConnectionLimits
from node.errors import PROBLEM_BASE
from node.web.problems import PROBLEM_TYPE, Handler

RETRY_AFTER_SECONDS = 5
LINGER_SECONDS = 1.0  # after a refusal, how long the client has to read it before the socket goes


def _raw_problem(status: int, reason: str, *, code: str, title: str, extra_headers: str = "") -> bytes:
    """A complete HTTP/1.1 problem answer written straight to a socket (no request object exists yet)."""
    body = json.dumps({"type": PROBLEM_BASE + code, "title": title, "status": status}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {PROBLEM_TYPE}\r\nContent-Length: {len(body)}\r\n"
            f"{extra_headers}Connection: close\r\n\r\n")
    return head.encode("ascii") + body


TOO_MANY = _raw_problem(429, "Too Many Requests", code="too-many-connections",
                        title="Too many connections from this address",
                        extra_headers=f"Retry-After: {RETRY_AFTER_SECONDS}\r\n")
HEADER_TIMEOUT = _raw_problem(408, "Request Timeout", code="request-timeout",
                              title="Request headers not received in time")


class ConnectionGuard:
    """The limits and the count of open connections per client address, shared by every connection of a site."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: Counter[str] = Counter()
        self._by_protocol: dict[object, GuardedProtocol] = {}

    def admit(self, address: str) -> bool:
        cap = self.limits.max_connections_per_client
        if cap and self.open[address] >= cap:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]

    def connection_of(self, protocol: object) -> GuardedProtocol | None:
        return self._by_protocol.get(protocol)


class GuardedProtocol(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a deadline on each request's headers and a per-address cap.

    States: ``waiting`` (the headers of the next request are due: a timer runs), ``active`` (a request is in
    the application; its body has its own deadline, see :func:`deadline_middleware`), ``idle`` (between
    requests of a kept-alive connection: aiohttp's keep-alive timeout applies, and the first byte of the next
    request starts a new header deadline) and ``refused`` (answered 408 or 429 and closing)."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], asyncio.Protocol]) -> None:
        self.guard = guard
        self.make_inner = make_inner
        self.inner: asyncio.Protocol | None = None
        self.transport: asyncio.Transport | None = None
        self.address = ""
        self.state = "waiting"
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol, forwarded to aiohttp once admitted -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) and peer else "unix"
        if not self.guard.admit(self.address):
            self._refuse(TOO_MANY)
            return
        self.inner = self.make_inner()
        self.guard._by_protocol[self.inner] = self
        self.inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.inner is None or self.state == "refused":
            return  # a refused client's bytes are read and dropped while it reads our answer
        if self.state == "idle":
            self.state = "waiting"
            self._arm()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.inner is None:
            return
        self.guard._by_protocol.pop(self.inner, None)
        self.guard.release(self.address)
        self.inner.connection_lost(exc)
        self.inner = None

    # -- the header deadline ------------------------------------------------------------------------------------

    def request_started(self) -> None:
        self.state = "active"
        self._disarm()

    def request_finished(self) -> None:
        self.state = "idle"

    def _arm(self) -> None:
        self._disarm()
        timeout = self.guard.limits.header_timeout_seconds
        if timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._headers_late)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _headers_late(self) -> None:
        self._timer = None
        if self.state == "waiting":
            self._refuse(HEADER_TIMEOUT)

    def _refuse(self, answer: bytes) -> None:
        """Send ``answer``, end our side, and close a moment later: closing at once while the client still sends
        would reset the connection, and the client could lose the answer."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self.state = "refused"
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through :class:`GuardedProtocol` (``edufed serve`` and the tests)."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.guard = runner.app[CONNECTIONS]

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: GuardedProtocol(self.guard, server), self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


CONNECTIONS = web.AppKey("connections", ConnectionGuard)


@web.middleware
async def deadline_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Marks the request as arrived for the header deadline, and closes the connection when the body has not
    fully arrived within the body deadline (the handler then sees the client gone)."""
    guard = request.app.get(CONNECTIONS)
    connection = guard.connection_of(request.protocol) if guard is not None else None
    if connection is not None:
        connection.request_started()
    timer = None
    late = False
    timeout = guard.limits.body_timeout_seconds if guard is not None else 0.0
    if request.body_exists and not request.content.is_eof() and timeout > 0:
        def body_late() -> None:
            nonlocal late
            if not request.content.is_eof() and request.transport is not None:
                late = True
                request.transport.close()

        timer = asyncio.get_running_loop().call_later(timeout, body_late)
    try:
        return await handler(request)
    except (ConnectionError, asyncio.CancelledError):
        if late:  # the client was too slow, not the node broken: no traceback, and the connection is gone
            raise web.HTTPRequestTimeout() from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if connection is not None:
            connection.request_finished()
