"""Serving: uvicorn configured from the settings in one place. ``python -m service`` runs it; so do
``dev.py serve`` and the image's CMD (exec form, so this process, uvicorn's, is PID 1).

Time and connections are bounded here, beside the work budget of ``service.api.compute``:
bodies must arrive within ``body_timeout`` (``service.api.body``); at most ``max_connections``
are open (uvicorn's ``limit_concurrency``), kept under the open-files limit, which is raised to its
hard limit at start-up; and idle connections cannot crowd out requests (``BoundedHTTPProtocol``).
"""

from __future__ import annotations

import argparse
import copy
import logging
import signal
import sys
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .config import Settings
from .engine import BYTES_PER_WORK
from .shutdown import DRAIN_SECONDS

log = logging.getLogger("service")

BASELINE_BYTES = 300 * 1024 * 1024  # RSS of an idle worker with MKL's vector math loaded (about 200-270 MB)
PARSE_FACTOR = 4  # parsing a JSON body of numbers takes up to about 4x its size (the lists, then the arrays)
QUEUED_BYTES_PER_ELEMENT = 16  # a parsed request's float64 inputs, and the copies a loss's prepare may make
RESPONSE_BYTES_PER_WORK = 80  # a response's JSON: up to three arrays (per_sample, gradient, hessian) of the
#                               work's size at most ~25 characters per float64 (shortest round-trip repr and a comma)
FD_RESERVE = 64  # descriptors besides connections: the listening socket, logs, pipes, shared libraries
GRACEFUL_SHUTDOWN_SECONDS = 20  # after the drain; docker stop waits 30 s (compose stop_grace_period) before SIGKILL
SHUTDOWN_SECONDS = DRAIN_SECONDS + GRACEFUL_SHUTDOWN_SECONDS  # the longest a SIGTERM takes to end the process


def _idle(protocol: Any) -> bool:
    """No request in progress (uvicorn's own test in ``shutdown``): new, kept alive, or half-sent headers."""
    return protocol.cycle is None or protocol.cycle.response_complete


class BoundedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol, with idle connections unable to exhaust the connection limit:

    * a connection that sends nothing is closed after ``timeout_keep_alive``, as uvicorn closes a
      kept-alive one (uvicorn arms that timer only after a response);
    * at the limit, a new connection closes the longest-open idle ones (no request in progress)
      to make room, so that a request (a health check) always gets in while any connection is idle.
    """

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self.opened_at = self.loop.time()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)
        limit = self.limit_concurrency
        if limit is not None and len(self.connections) >= limit:
            idle = sorted((c for c in self.connections if c is not self and _idle(c)),
                          key=lambda c: getattr(c, "opened_at", 0.0))
            for victim in idle[:len(self.connections) - limit + 1]:
                victim.transport.close()
                self.connections.discard(victim)  # its connection_lost comes later; the room is needed now


def memory_bound(settings: Settings) -> dict[str, int]:
    """The terms of a uvicorn worker's peak memory under any load, in bytes, its executor's worker
    processes included (README, "Limits under hostile load"): computations (the work budget at
    float64's bytes per unit of work), bodies being parsed (one per parsing thread), parsed requests
    waiting in the queue (their input arrays, at most max_elements numbers each), and the baseline.
    With the process executor each worker process has its own baseline (each returns its freed heap
    after a computation, so the budget still bounds all computations together), and bodies and
    responses are copied through the pipes: a body is read in the worker (its bytes and, for a moment,
    the read buffer) while the server keeps its own, and a response is read into a buffer of the
    server while the worker still holds it. Bodies still arriving, or waiting a moment for a parsing thread, are
    bounded by the body timeout and the connection limit rather than here. Compressed bodies add no
    term: they are inflated as they arrive (service.api.compression), so a body is never held both
    compressed and inflated, and the inflated one is held to max_body_bytes like a plain one. A gzipped
    response adds its compressed copy (smaller than the response) while it is sent; responses being sent
    are, like bodies arriving, bounded by the connection limit rather than here."""
    processes = settings.max_concurrency if settings.executor == "process" else 0
    terms = {
        "baseline": (1 + processes) * BASELINE_BYTES,
        "computations": settings.work_budget * BYTES_PER_WORK["float64"],
        "parsing": settings.max_concurrency * PARSE_FACTOR * settings.max_body_bytes,
        "queued inputs": settings.max_queue * QUEUED_BYTES_PER_ELEMENT * settings.max_elements,
    }
    if processes and settings.binary_in_process:  # binary bodies decoded in this process's threads as well
        terms["binary in process"] = settings.max_concurrency * settings.max_body_bytes
    if processes:
        terms["pipe copies"] = (settings.max_concurrency * 2 * settings.max_body_bytes
                                + settings.work_budget * RESPONSE_BYTES_PER_WORK)
    terms["total"] = sum(terms.values())
    return terms


def raise_open_files_limit() -> int:
    """Raises the soft RLIMIT_NOFILE to the hard limit (often 1024 of 1048576 in containers); returns
    the soft limit in force."""
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit to raise
        return 1 << 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # not permitted here: keep the soft limit
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_limit(settings: Settings, open_files: int) -> int:
    """``max_connections``, lowered to fit under the open-files limit (each connection is a descriptor)."""
    fits = max(1, open_files - FD_RESERVE)
    if settings.max_connections > fits:
        log.warning("LOSS_SERVICE_MAX_CONNECTIONS=%d does not fit under the open-files limit of %d; using %d",
                    settings.max_connections, open_files, fits)
    return min(settings.max_connections, fits)


def _log_config(level: str) -> dict:
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["service"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


def uvicorn_options(settings: Settings, open_files: int) -> dict[str, Any]:
    """Everything uvicorn.run is given, from the settings."""
    level = settings.log_level.lower()
    return {
        "host": settings.host, "port": settings.port, "workers": settings.workers, "log_level": level,
        "log_config": _log_config(level),
        "http": "service.server:BoundedHTTPProtocol",
        "limit_concurrency": connection_limit(settings, open_files),
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "server_header": False,  # no "Server: uvicorn" for scanners to match
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m service",
                                     description="Serve the loss service (settings: LOSS_SERVICE_* variables, README).")
    parser.add_argument("--host", help="address to listen on (overrides LOSS_SERVICE_HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (overrides LOSS_SERVICE_PORT)")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    given = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    return Settings(**given)


def _stopped_as_asked(signum: int, frame: Any) -> None:
    sys.exit(0)


def main(argv: list[str] | None = None) -> None:
    settings = settings_from(parse_args(argv))
    # uvicorn raises the SIGTERM it shut down for again once its own handler is gone, which would end the
    # process "killed by SIGTERM" (143): the stop was asked for and completed, so exit 0 instead.
    signal.signal(signal.SIGTERM, _stopped_as_asked)
    uvicorn.run("service.app:app", **uvicorn_options(settings, raise_open_files_limit()))
