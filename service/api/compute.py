"""Runs pipeline work off the event loop, a bounded number at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio


class ComputeGate:
    """At most ``limit`` computations at once (memory stays bounded); the rest wait their turn.

    Work runs in a worker thread so the event loop keeps answering health checks and small
    requests while a large one is parsed and computed."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._semaphore: anyio.Semaphore | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._semaphore is None:  # created lazily: it must belong to the running event loop
            self._semaphore = anyio.Semaphore(self._limit)
        async with self._semaphore:
            return await anyio.to_thread.run_sync(fn, *args)
