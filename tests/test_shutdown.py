"""Graceful shutdown of a live server (``python -m service``): on SIGTERM readiness turns false while
requests are still served, the listener then closes, the request in flight finishes with its answer,
and the process exits 0 within the grace period (service.shutdown, service.server)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import httpx
import numpy as np
import psutil

from service.server import SHUTDOWN_SECONDS
from service.shutdown import DRAIN_SECONDS

from .conftest import live_server

GENEROUS = 30.0  # seconds: a bound for "happened at all" on a loaded machine, never a performance claim
UPLOAD_SECONDS = DRAIN_SECONDS + 5  # the slow request is still arriving when the listener closes


def slow_upload(body: bytes, seconds: float, pieces: int = 12):
    """A request body sent in pieces over ``seconds`` (chunked): a request in flight all that time."""
    step = -(-len(body) // pieces)
    for start in range(0, len(body), step):
        yield body[start:start + step]
        time.sleep(seconds / pieces)


def test_sigterm_drains_then_closes_and_the_request_in_flight_completes(tmp_path):
    rng = np.random.default_rng(7)
    y_true, y_pred = rng.normal(size=(20, 50)), rng.normal(size=(20, 50))
    body = json.dumps({"y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "outputs": ["loss"]}).encode()
    with live_server(log_path=tmp_path / "server.log") as live:
        answers: list[httpx.Response | Exception] = []

        def post() -> None:
            try:
                answers.append(httpx.post(f"{live.url}/v1/losses/mse", content=slow_upload(body, UPLOAD_SECONDS),
                                          headers={"Content-Type": "application/json"}, timeout=GENEROUS))
            except Exception as exc:  # reported by the assertion below
                answers.append(exc)

        in_flight = threading.Thread(target=post)
        in_flight.start()
        time.sleep(0.5)  # the first pieces are in: the request is in flight
        os.kill(live.pid, signal.SIGTERM)

        draining = httpx.get(f"{live.url}/readyz", timeout=GENEROUS)
        assert draining.status_code == 503, draining.text
        assert draining.json()["status"] == "draining" and "shutting down" in draining.json()["reason"]
        oip_ready = httpx.get(f"{live.url}/v2/health/ready", timeout=GENEROUS)  # the same readiness for OIP clients
        assert oip_ready.status_code == 503 and oip_ready.json() == {"ready": False}, oip_ready.text
        assert httpx.get(f"{live.url}/healthz", timeout=GENEROUS).status_code == 200  # alive, just leaving

        refused_after = None
        deadline = time.monotonic() + GENEROUS
        while refused_after is None and time.monotonic() < deadline:
            try:
                assert httpx.get(f"{live.url}/readyz", timeout=GENEROUS).status_code == 503
                time.sleep(0.1)
            # the drain is over: uvicorn closed its listener (refused; or reset, for a connection that was
            # still waiting in the listen backlog when it closed)
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                refused_after = time.monotonic()
        assert refused_after is not None, "the listener never closed"
        assert in_flight.is_alive(), "the request should still be arriving when the listener closes"

        in_flight.join(GENEROUS)
        (answer,) = answers
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200, answer.text
        assert np.isclose(answer.json()["loss"], np.mean((y_true - y_pred) ** 2), rtol=1e-12, atol=0)

        code = psutil.Process(live.pid).wait(timeout=SHUTDOWN_SECONDS + GENEROUS)
        assert code == 0, (code, (tmp_path / "server.log").read_text(errors="replace")[-2000:])
    assert "draining" in (tmp_path / "server.log").read_text(errors="replace")
