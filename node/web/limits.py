"""How much work a request may cause: admission caps on unauthenticated verification, and every request's
work allowance (a deadline and a cancel flag that canonicalization checks as it goes, see node/ld/work.py).

Worker threads share one interpreter lock: a node switches threads every millisecond (not Python's 5 ms), so
the event loop and a cheap verification are not held up behind expensive ones. A process per job would also
use every core but costs a typical verification twice its time (pickling and a round trip), measured in
``bench/bench_poison.py``; cooperative stopping frees a thread as fast as killing a process would.

Why concurrency caps and not a rate: a verification costs from 1 ms (a credential) to the canonicalization
budget (a poison graph, a few hundred ms), so what must be shared fairly is the work in flight. Each client
address gets ``verify_per_client`` verifications at once, all clients together ``verify_total``; beyond them
429 (this client) or 503 (everyone), with ``Retry-After``. Publishing and admin routes are not counted, and the
worker threads outnumber the verification cap, so they keep their own capacity.

When the client goes away or the allowance runs out, the allowance is cancelled and the work stops at its next
check; its worker thread is free again.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from node.config import Limits
from node.errors import PROBLEM_BASE
from node.ld import work
from node.web.problems import Handler, problem_response

# Unauthenticated routes whose work is CPU-heavy (canonicalization of what a stranger sends).
VERIFICATION_PATHS = frozenset({"/credentials/verify", "/presentations/verify", "/verify", "/credits/transcript"})
# Writes whose work (canonicalization, SHACL, proofs) runs under an allowance. Only routes that start no
# background task: a task started under an allowance would inherit it, and be stopped when the request ends.
ALLOWANCE_WRITES = ("/api/records", "/records/", "/inbox")
# How often a request in flight looks whether its client is still connected.
WATCH_SECONDS = 0.05
# Worker threads beyond the verification cap: publishing, the inbox and admin work always find one free.
RESERVED_THREADS = 8
# How long a thread may hold the GIL while another waits (Python's default is 5 ms). With eight poison
# verifications running, the default left /healthz and a valid verification waiting 0.4-1.2 s; at 1 ms they
# answer in about 0.1 s (bench/bench_poison.py).
SWITCH_INTERVAL_SECONDS = 0.001

LIMITS = web.AppKey("limits", Limits)


class Admission:
    """Verifications in flight, per client address and in total."""

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client = per_client
        self.total = total
        self._by_client: Counter[str] = Counter()
        self._count = 0

    def enter(self, client: str) -> int | None:
        """None when admitted, else the refusal's status: 429 (this client's cap) or 503 (the node's)."""
        if self._by_client[client] >= self.per_client:
            return 429
        if self._count >= self.total:
            return 503
        self._by_client[client] += 1
        self._count += 1
        return None

    def leave(self, client: str) -> None:
        self._count -= 1
        self._by_client[client] -= 1
        if self._by_client[client] <= 0:
            del self._by_client[client]


ADMISSION = web.AppKey("admission", Admission)


def _refusal(status: int, limits: Limits) -> web.Response:
    if status == 429:
        kind = PROBLEM_BASE + "rate-limited"
        title = "Too many verifications from this client"
        detail = f"at most {limits.verify_per_client} verifications at once per client address"
    else:
        kind = PROBLEM_BASE + "overloaded"
        title = "Too many verifications in progress"
        detail = f"this node verifies at most {limits.verify_total} documents at once"
    problem: dict[str, Any] = {"type": kind, "title": title, "status": status, "detail": detail}
    return problem_response(problem, {"Retry-After": str(limits.retry_after_seconds)})


async def _watch(request: web.Request, allowance: work.Allowance) -> None:
    """Cancel the allowance as soon as the client's connection closes."""
    while not allowance.cancelled:
        await asyncio.sleep(WATCH_SECONDS)
        transport = request.transport
        if transport is None or transport.is_closing():
            allowance.cancel()


def _heavy_write(request: web.Request) -> bool:
    return request.method in ("POST", "PUT") and request.path.startswith(ALLOWANCE_WRITES)


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limits = request.app[LIMITS]
    guarded = request.method == "POST" and request.path in VERIFICATION_PATHS
    client = request.remote or "unknown"
    if guarded:
        refused = request.app[ADMISSION].enter(client)
        if refused is not None:
            return _refusal(refused, limits)
    if not guarded and not _heavy_write(request):
        return await handler(request)
    allowance = work.Allowance(limits.work_seconds)
    watcher = asyncio.create_task(_watch(request, allowance))
    try:
        with work.allowed(allowance):
            return await handler(request)
    except work.WorkRefused as refused:
        if refused.status != 503:
            raise
        return problem_response(refused.problem(), {"Retry-After": str(limits.retry_after_seconds)})
    finally:
        allowance.cancel()  # whatever still runs for this request stops at its next check
        watcher.cancel()
        if guarded:
            request.app[ADMISSION].leave(client)


_EXECUTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


def setup(app: web.Application, limits: Limits) -> None:
    """Install the caps; the middleware goes inside the problem middleware, so its errors become problems."""
    app[LIMITS] = limits
    app[ADMISSION] = Admission(limits.verify_per_client, limits.verify_total)
    app.middlewares.append(limits_middleware)

    async def threads(app: web.Application) -> None:
        # asyncio.to_thread uses the loop's default executor (min(32, cores + 4) threads): fewer than the
        # verifications admitted, so a burst would queue publishing behind it. One per loop; the loop shuts it
        # down when it closes.
        sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
        loop = asyncio.get_running_loop()
        if loop not in _EXECUTORS:
            _EXECUTORS[loop] = ThreadPoolExecutor(max_workers=limits.verify_total + RESERVED_THREADS,
                                                  thread_name_prefix="edufed-work")
            loop.set_default_executor(_EXECUTORS[loop])

    app.on_startup.append(threads)
