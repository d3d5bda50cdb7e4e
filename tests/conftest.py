"""Shared fixtures: the conformance files beside the repository and an in-process client."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOSS_SERVICE_SHARED_DIR", REPO.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


def load_conformance(name: str) -> list[dict]:
    path = CONFORMANCE / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the tests read the shared conformance cases from ../shared beside the "
            f"repository (or LOSS_SERVICE_SHARED_DIR).")
    return json.loads(path.read_text())["cases"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def vector_math_from_the_environment():
    """The suite runs under the exp/log backend LOSS_SERVICE_VECTOR_MATH names, as the service would
    (CI runs it twice: with the default and with numpy); tests that compare backends switch it and
    put it back."""
    from service.engine import vecmath

    chosen = vecmath.use(os.environ.get("LOSS_SERVICE_VECTOR_MATH", "auto") or "auto")
    yield chosen
    vecmath.use("auto")


def _vector_math_backends() -> tuple[str, ...]:
    from service.engine import vecmath
    return vecmath.available()


@pytest.fixture(params=_vector_math_backends())
def each_vector_math(request):
    """Runs a test once per exp/log backend this environment has (engine.vecmath), restoring the
    backend afterwards. Modules whose numbers depend on it use it for every test."""
    from service.engine import vecmath

    previous = vecmath.backend
    vecmath.use(request.param)
    yield request.param
    vecmath.use(previous)


def make_client(**settings):
    """An httpx client on an in-process app built with the given settings overrides. The executor is
    the thread one unless ``executor`` says otherwise: httpx's ASGI transport runs no lifespan, so
    worker processes would never be stopped (``executor_client`` runs both, with the lifespan)."""
    import httpx

    from service.app import create_app
    from service.config import Settings

    app = create_app(Settings(**{"executor": "thread", **settings}))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@contextlib.asynccontextmanager
async def executor_client(executor: str, **settings):
    """``make_client`` with the app's lifespan run around it: worker processes start and stop."""
    async with make_client(executor=executor, **settings) as client:
        app = client._transport.app
        async with app.router.lifespan_context(app):
            yield client


EXECUTORS = ("thread", "process")


@pytest.fixture
async def client():
    async with make_client() as c:
        yield c


REQUEST_FIELDS = {"body", "result", "y_true", "y_pred", "sample_weight", "params", "reduction", "outputs", "dtype", "requests",
                  "loss", "exercise", "submission", "tolerance", "shape", "seed"}


def loc_text(loc: list) -> str:
    """["y_pred", 0, 1] -> "y_pred[0][1]"; ["params", "delta"] -> "params.delta"."""
    text = str(loc[0]) if loc else ""
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def assert_problem(response, status: int, field: str | None = None) -> dict:
    """A problem+json response with ``status`` whose detail names ``field``; where ``field`` is a
    request field (optionally with indices), an error's loc must point at it too."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers["content-type"]
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "errors"} <= set(body)
    assert body["type"].startswith("/problems/")
    assert "Traceback" not in body["detail"]
    if field is not None:
        assert field in body["detail"], f"{field!r} not in detail: {body['detail']}"
        root = field.replace("[", ".").split(".")[0]
        if root in REQUEST_FIELDS:
            texts = [loc_text(e["loc"]) for e in body["errors"]]
            assert any(t.startswith(field) or field.startswith(t) for t in texts), (field, texts)
    return body


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(base: str, proc, timeout: float, failure: Callable[[], str]) -> None:
    """Poll ``base``/healthz until it answers 200; raise RuntimeError(``failure()``) if ``proc`` (a
    subprocess.Popen) exits first or ``timeout`` seconds pass. One loop for every process the tests start
    in front of a port (the service, nginx)."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(failure())
        time.sleep(0.1)


class LiveServer(NamedTuple):
    url: str
    port: int
    pid: int
    log: Path


@contextlib.contextmanager
def live_server(env: dict[str, str] | None = None, log_path: Path | None = None):
    """A real server process (``python -m service``, as dev.py serve and the image run it) on a free
    loopback port; yields a ``LiveServer``. Its output goes to ``log_path`` (a temporary file if None)."""
    import subprocess
    import sys
    import tempfile
    import time

    port = free_port()
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loss-service-log-"))) / "server.log"
        log = stack.enter_context(open(log_path, "wb"))
        settings = {"LOSS_SERVICE_HOST": "127.0.0.1", "LOSS_SERVICE_PORT": str(port), "LOSS_SERVICE_WORKERS": "1",
                    "LOSS_SERVICE_LOG_LEVEL": "warning"}
        proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=REPO,
                                env={**os.environ, **settings, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, proc, 30,
                               lambda: f"the server did not start: {log_path.read_text(errors='replace')[-2000:]}")
            yield LiveServer(base, port, proc.pid, log_path)
        finally:
            proc.terminate()
            time.sleep(0.05)
            proc.terminate()  # a second SIGTERM skips the drain (service.shutdown): no prober to wait for here
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
