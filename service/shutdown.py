"""Graceful shutdown in two phases, so that a load balancer stops sending before the listener closes.

uvicorn alone, on SIGTERM, closes its listening socket at once and then waits (up to
``timeout_graceful_shutdown``) for the requests in flight: from the first moment new connections are
refused, and a readiness probe can only see a refused connection. Here the first SIGTERM starts a
drain instead: ``/readyz`` answers 503 ("draining") while every request, new or in flight, is still
served, and ``DRAIN_SECONDS`` later uvicorn's own shutdown runs (listener closed, in-flight requests
finished, then the process exits). A second SIGTERM skips the rest of the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger("service")

DRAIN_SECONDS = 3.0  # long enough for probes (and nginx's next attempt) to see 503; the rest fits the grace period


class Drain:
    """Whether this process is draining (SIGTERM received), and since when."""

    def __init__(self) -> None:
        self.started_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def start(self) -> None:
        if self.started_at is None:
            self.started_at = time.monotonic()


def defer_sigterm(drain: Drain, delay: float) -> Callable[[], None]:
    """Wraps the SIGTERM handler in force (uvicorn's ``Server.handle_exit``, installed before the app
    starts, in every worker process) so that the first SIGTERM starts ``drain`` and hands the signal
    on ``delay`` seconds later. Returns a function that puts the wrapped handler back. Outside the
    main thread (an app run in a test thread) signals cannot be handled, and nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    wrapped = signal.getsignal(signal.SIGTERM)
    if not callable(wrapped):  # no server handler to defer (SIG_DFL, SIG_IGN)
        return lambda: None
    loop = asyncio.get_running_loop()

    def start_draining(signum: int, frame: Any) -> None:
        if drain.draining:
            wrapped(signum, frame)
            return
        drain.start()
        log.warning("SIGTERM: draining (readiness 503) for %.1f s, then finishing in-flight requests", delay)
        # call_soon_threadsafe wakes the loop from its select(); a signal handler must not block
        loop.call_soon_threadsafe(loop.call_later, delay, wrapped, signum, frame)

    signal.signal(signal.SIGTERM, start_draining)
    return lambda: signal.signal(signal.SIGTERM, wrapped)


def lifespan(delay: float = DRAIN_SECONDS) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that defers the server's SIGTERM handling through ``app.state.drain``."""

    @contextlib.asynccontextmanager
    async def draining_on_sigterm(app: Any) -> AsyncIterator[None]:
        restore = defer_sigterm(app.state.drain, delay)
        try:
            yield
        finally:
            restore()

    return draining_on_sigterm
