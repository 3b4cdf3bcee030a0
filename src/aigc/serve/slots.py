"""Bounded sampling for the service: per model a fixed number of worker threads behind a bounded queue,
a time limit per request that interrupts the sampling itself, and an estimate for Retry-After.

Why interrupt inside torch? A thread cannot be killed, and a request that outlived its limit would
otherwise keep its worker busy for as long as the sampling takes. A global forward pre-hook checks a
thread-local deadline before every module call: a worker whose request is out of time raises
`SampleTimeout` at its next network call and is free again. Threads without a deadline (anything not
sampling for the service) pass through the hook untouched.
"""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

_local = threading.local()
_hook_lock = threading.Lock()
_hook: dict[str, Any] = {"handle": None, "users": 0}


class SampleTimeout(Exception):
    """The request's time limit passed while it was sampling."""


class Busy(Exception):
    """The model's queue is full; `retry_after` seconds is a fair guess for a next try."""

    def __init__(self, retry_after: int):
        super().__init__(f"busy, retry after {retry_after} s")
        self.retry_after = retry_after


class Gone(Exception):
    """The client went away while the request waited for a worker (its sampling never started)."""


class QueueTimeout(Exception):
    """The request waited in the queue for its whole time limit."""


def _check_deadline(module: torch.nn.Module, args: Any) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None and time.monotonic() > deadline:
        raise SampleTimeout()


def install_deadline_hook() -> None:
    """Turn the deadline check on (counted: every install needs its `remove_deadline_hook`)."""
    with _hook_lock:
        if _hook["handle"] is None:
            _hook["handle"] = torch.nn.modules.module.register_module_forward_pre_hook(_check_deadline)
        _hook["users"] += 1


def remove_deadline_hook() -> None:
    with _hook_lock:
        _hook["users"] -= 1
        if _hook["users"] <= 0 and _hook["handle"] is not None:
            _hook["handle"].remove()
            _hook["handle"], _hook["users"] = None, 0


def call_before(fn: Callable[[], Any], deadline: float) -> Any:
    """fn() in this thread, interrupted at its next module call once time.monotonic() passes deadline."""
    _local.deadline = deadline
    try:
        if time.monotonic() > deadline:
            raise SampleTimeout()
        return fn()
    finally:
        _local.deadline = None


class ModelSlots:
    """`workers` threads sample one model; up to `queue` more requests wait; the rest are refused at once.

    All counting happens on the event loop's thread, so it needs no lock. A request cancelled while
    its work runs (the client went away) keeps its place until the work ends: the bound holds for
    the work really running, not for the requests still listening.
    """

    def __init__(self, name: str, workers: int, queue: int, time_limit: float):
        self.name, self.workers, self.queue, self.time_limit = name, workers, queue, time_limit
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix=f"aigc-{name}")
        self.admitted = 0          # waiting + running
        self.served = 0
        self.refused = 0
        self._seats: asyncio.Semaphore | None = None
        self._seconds: deque[float] = deque(maxlen=32)  # recent sampling times, for Retry-After

    @property
    def seats(self) -> asyncio.Semaphore:
        if self._seats is None:  # made on the event loop that uses it
            self._seats = asyncio.Semaphore(self.workers)
        return self._seats

    def retry_after(self) -> int:
        """Seconds until a seat is likely free: the queue ahead times the recent sampling time."""
        typical = sorted(self._seconds)[len(self._seconds) // 2] if self._seconds else 1.0
        return max(1, math.ceil(typical * max(1, self.admitted - self.workers + 1) / self.workers))

    async def run(self, fn: Callable[[], Any], gone: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """fn() on a worker thread within the time limit; Busy, QueueTimeout or SampleTimeout else.
        `gone()` is asked once a worker is free: a request whose client left is dropped (Gone)."""
        if self.admitted >= self.workers + self.queue:
            self.refused += 1
            raise Busy(self.retry_after())
        self.admitted += 1
        deadline = time.monotonic() + self.time_limit
        try:
            await asyncio.wait_for(self.seats.acquire(), timeout=self.time_limit)
        except BaseException as e:
            self.admitted -= 1
            if isinstance(e, TimeoutError):
                raise QueueTimeout() from None
            raise
        started = time.monotonic()
        try:
            if gone is not None and await gone():
                raise Gone()
            work = asyncio.get_running_loop().run_in_executor(self.pool, call_before, fn, deadline)
        except BaseException:
            self.seats.release()
            self.admitted -= 1
            raise

        def done(f: asyncio.Future) -> None:
            self.seats.release()
            self.admitted -= 1
            if not f.cancelled() and f.exception() is None:
                self._seconds.append(time.monotonic() - started)
                self.served += 1

        work.add_done_callback(done)
        return await asyncio.shield(work)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def stats(self) -> dict[str, Any]:
        return {"workers": self.workers, "queue": self.queue, "admitted": self.admitted,
                "served": self.served, "refused": self.refused, "time_limit_s": self.time_limit}
