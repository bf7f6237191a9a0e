"""Stoppable CPU work: the time a request allows, and whether its client is still there, seen by the code that
works on its behalf.

Why cooperative: the expensive steps (RDFC-1.0 canonicalization above all, whose worst case is exponential)
are loops of our own, so they can look at an :class:`Allowance` as they go and stop within milliseconds; the
worker thread is then free again. ``asyncio.to_thread`` runs the function in a copy of the caller's context,
so the allowance a request sets reaches every worker thread without passing through each call in between.
``bench/bench_poison.py`` measures the alternative (a process per job) and the answer time under load.

It lives in ``ld``, the lowest floor whose code does such work (canonicalization); ``trust``, ``catalog`` and
``web`` above it use it too. Code with no allowance in its context (the CLI, imports, tests) runs unbounded by
time; the canonicalization work budget still applies to it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from node.errors import EduFedError


class WorkRefused(EduFedError):
    """Work the node will not do, or not finish, for this request: a limit of the node, not a verdict on the
    input, so verifiers raise it instead of reporting a failed check."""

    status = 503
    code = "work-refused"


class WorkTimeout(WorkRefused):
    code = "work-time-limit"


class WorkCancelled(WorkRefused):
    """The client went away: nobody will read the answer."""

    code = "work-cancelled"


class Allowance:
    """A deadline (monotonic seconds) and a cancel flag for the work done on behalf of one request."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.deadline = None if seconds is None else time.monotonic() + seconds
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def check(self) -> None:
        """Raise when the client is gone or the time is up; cheap enough to call every few milliseconds."""
        if self._cancelled.is_set():
            raise WorkCancelled("Request cancelled", detail="the client closed the connection")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise WorkTimeout(
                "Work time limit exceeded",
                detail=f"the work for this request ran longer than {self.seconds:g} s and was stopped",
            )


_CURRENT: ContextVar[Allowance | None] = ContextVar("edufed_work_allowance", default=None)


def check() -> None:
    """Check the current context's allowance, if it has one."""
    allowance = _CURRENT.get()
    if allowance is not None:
        allowance.check()


def current() -> Allowance | None:
    return _CURRENT.get()


@contextmanager
def allowed(allowance: Allowance) -> Iterator[Allowance]:
    """Run the block (and every ``asyncio.to_thread`` it starts) under ``allowance``."""
    token = _CURRENT.set(allowance)
    try:
        yield allowance
    finally:
        _CURRENT.reset(token)
