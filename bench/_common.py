"""Shared helpers for the benchmark scripts: servers, HTTP client, statistics, environment, results.

Nothing here is imported by the service. Paths are derived from this file, never hard-coded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import importlib.metadata
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # the repository root
RESULTS = ROOT / "bench" / "results"  # gitignored
HOST = "127.0.0.1"  # all traffic stays on loopback


# --- statistics -----------------------------------------------------------------------------------

def summarize(samples_s: Sequence[float]) -> dict[str, float]:
    """Median, p90/p95 (linear interpolation), min, max and mean of durations in seconds, in milliseconds."""
    a = np.asarray(samples_s, dtype=float) * 1e3
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
            "p95_ms": float(np.percentile(a, 95)), "min_ms": float(a.min()), "max_ms": float(a.max()),
            "mean_ms": float(a.mean())}


def fmt_ms(ms: float) -> str:
    if math.isnan(ms):
        return "–"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


# --- environment and results ----------------------------------------------------------------------

def versions(*names: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def environment(*packages: str) -> dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover - not on Linux/macOS
        load = None
    return {"time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "machine": platform.machine(), "system": platform.system(), "cpu_count": os.cpu_count(),
            "loadavg": load, "versions": versions(*packages), "git": git_state()}


def git_state() -> dict[str, Any]:
    """The commit measured and whether the measured code had uncommitted changes."""
    def run(*cmd: str) -> str | None:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    changed = run("status", "--porcelain", "--", "service", "schemas")
    return {"commit": run("rev-parse", "--short", "HEAD"),
            "uncommitted_changes_in_service_or_schemas": None if changed is None else bool(changed)}


def describe_git(env: dict[str, Any]) -> str:
    g = env.get("git") or {}
    if not g.get("commit"):
        return "commit unknown"
    dirty = " + uncommitted changes in service/ or schemas/" if g.get("uncommitted_changes_in_service_or_schemas") else ""
    return f"commit {g['commit']}{dirty}"


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def write_results(prefix: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{prefix}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def relpath(path: Path) -> str:
    """A path relative to the repository root, for printing (no machine paths in output that gets pasted)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return path.name


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``finally`` blocks (server shutdown) run."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- servers --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _get(port: int, path: str, timeout: float) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def wait_healthy(proc: subprocess.Popen, port: int, path: str = "/healthz", timeout: float = 60.0) -> bool:
    """Poll ``path`` until it answers 200 (True), or the process exits (False); a RuntimeError once
    ``timeout`` seconds pass with neither (the caller adds the server's log to it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if _get(port, path, timeout=2.0) == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not healthy within {timeout:.0f} s")


def _uvicorn(app: str, port: int, keep_alive: int) -> list[str]:
    return ["uvicorn", app, "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
            "--timeout-keep-alive", str(keep_alive)]


def _granian(app: str, port: int, keep_alive: int) -> list[str]:
    # granian (Rust HTTP/1 parser and socket I/O, ASGI interface); keep-alive is on by default
    return ["granian", "--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", "1",
            "--log-level", "warning", app]


def _hypercorn(app: str, port: int, keep_alive: int) -> list[str]:
    return ["hypercorn", "--bind", f"{HOST}:{port}", "--workers", "1", "--keep-alive", str(keep_alive),
            "--log-level", "warning", app]


def _raw(app: str, port: int, keep_alive: int) -> list[str]:
    return [app, "--host", HOST, "--port", str(port)]  # a module of its own (bench.raw_echo), no ASGI app


# other ASGI servers than uvicorn, for comparing the HTTP layer's cost (bench_http.py --server); installed
# separately (not dependencies): pip install granian hypercorn. "raw": a plain socket server module.
SERVERS = {"uvicorn": _uvicorn, "granian": _granian, "hypercorn": _hypercorn, "raw": _raw}


class Server:
    """A uvicorn (or ``server``: another ASGI server of SERVERS) child process serving ``app``
    (``module:attribute``) on 127.0.0.1, one worker.

    Always use as a context manager: the process is terminated (then killed) on exit, whatever happens.
    """

    def __init__(self, app: str, *, env: dict[str, str] | None = None, health: str = "/healthz",
                 start_timeout: float = 60.0, keep_alive: int = 300, server: str = "uvicorn",
                 server_args: Sequence[str] = ()) -> None:
        if server not in SERVERS:
            raise ValueError(f"unknown ASGI server {server!r}; one of {sorted(SERVERS)}")
        self.app, self.health, self.start_timeout, self.keep_alive = app, health, start_timeout, keep_alive
        self.server, self.server_args = server, tuple(server_args)
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("LOSS_SERVICE_"):  # the service's defaults, not whatever this shell has set
                del self.env[key]
        self.env.update(env or {})
        self.env["PYTHONPATH"] = str(ROOT) + (os.pathsep + self.env["PYTHONPATH"] if self.env.get("PYTHONPATH") else "")
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._log = None

    def __enter__(self) -> Self:
        try:
            for attempt in range(3):  # a port taken between free_port() and uvicorn's bind: try another
                if self._start():
                    return self
            raise RuntimeError(f"{self.app} did not start after 3 attempts:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> bool:
        self.stop()
        self.port = free_port()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", *SERVERS[self.server](self.app, self.port, self.keep_alive), *self.server_args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        try:
            return wait_healthy(self.proc, self.port, self.health, self.start_timeout)
        except RuntimeError as err:
            raise RuntimeError(f"{self.app} was {err}:\n{self.log_tail()}") from None

    def log_tail(self, n: int = 4000) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def rss_mb(self) -> float | None:
        """Resident memory of the server process (Linux), for the record."""
        if self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):  # peak resident set size
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


# --- clients --------------------------------------------------------------------------------------

class HttpClient:
    """One keep-alive connection with the standard library's ``http.client`` (least client overhead).

    ``post`` returns ``(status, body bytes, seconds)``; the time covers sending the whole request
    and reading the whole response. A connection the server closed while idle is reopened and the
    request retried once (the retry is timed from its own start)."""

    name = "http.client (keep-alive)"

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.retries = 0

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        for attempt in range(2):
            t0 = time.perf_counter()
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, data, time.perf_counter() - t0
            except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest,
                    http.client.ResponseNotReady):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
                if attempt:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


class HttpxClient:
    """``httpx.Client`` with keep-alive (what a Python caller would typically use)."""

    name = "httpx.Client (keep-alive)"

    def __init__(self, port: int, timeout: float = 600.0) -> None:
        import httpx
        self.client = httpx.Client(base_url=f"http://{HOST}:{port}", timeout=timeout)
        self.retries = 0

    def post(self, path: str, body: bytes) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        resp = self.client.post(path, content=body, headers={"Content-Type": "application/json",
                                                              "Accept-Encoding": "identity"})  # as http.client
        data = resp.content
        return resp.status_code, data, time.perf_counter() - t0

    def close(self) -> None:
        self.client.close()


CLIENTS = {"http.client": HttpClient, "httpx": HttpxClient}
