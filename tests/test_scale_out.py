"""Scale-out: a real nginx (Debian's package; .ci/run installs it) runs deploy/nginx/nginx.conf, its
upstream servers, listen address and paths rewritten for loopback, in front of three live replicas.
Under a bounded load one replica is killed with SIGKILL while it computes and another is stopped
with SIGTERM; every request must still get its correct 200, because nginx sends a request whose
replica failed to another (``proxy_next_upstream ... non_idempotent``) and a SIGTERM drains.
No Docker is needed."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

from service.config import Settings
from service.engine import compute

from .conftest import free_port, live_server, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
REQUESTS = 200
CLIENT_THREADS = 4
GENEROUS = 60.0  # seconds: a bound for "answered", never a performance claim
BURST = 6  # long requests sent at once just before each signal: two in flight on each replica
IN_FLIGHT = 0.3  # seconds from a burst to the signal: its requests have reached the replicas, none has finished
CIRCLE_BATCH = 1300  # about 1,700,000 pairs: a computation of about half a second, so some are in flight


def directive(name: str) -> str:
    """The value of the one ``name`` directive in deploy/nginx/nginx.conf."""
    (value,) = re.findall(rf"^\s*{name}\s+([^;]*);", NGINX_CONF.read_text(encoding="utf-8"), re.MULTILINE)
    return value.strip()


def size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", text.lower()).groups()
    return int(number) * 1024 ** " kmg".index(unit or " ")


def test_nginx_config_matches_the_service_limits_and_retries_safely():
    settings = Settings()
    assert size(directive("client_max_body_size")) == settings.max_body_bytes  # nginx's 413 where the service's is
    assert directive("client_body_timeout") == f"{settings.body_timeout:g}s"
    retry_on = {"error", "timeout", "http_502", "http_503", "non_idempotent"}
    assert set(directive("proxy_next_upstream").split()) == retry_on
    assert int(directive("proxy_next_upstream_tries")) >= 2
    assert directive("proxy_request_buffering") == "on"  # a retry resends the whole body
    assert int(directive("keepalive")) > 0
    # upstream keepalive needs HTTP/1.1 without the client's "Connection: close" passed on
    assert directive("proxy_http_version") == "1.1" and directive('proxy_set_header Connection') == '""'
    assert directive("proxy_pass") == "http://loss_service"


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                           if os.access(p, os.X_OK)), None)
    assert found, ("nginx is missing: tests/test_scale_out.py runs Debian's nginx package "
                   "(`apt-get install nginx` as root; .ci/run installs it when it can)")
    return found


def substitute(text: str, pattern: str, replacement: str) -> str:
    """re.sub that insists on a match: if deploy/nginx/nginx.conf changes shape, this test says so."""
    changed, count = re.subn(pattern, lambda _: replacement, text, flags=re.MULTILINE)
    assert count, f"deploy/nginx/nginx.conf no longer has a line matching {pattern!r}"
    return changed


def loopback_config(directory: Path, replicas: list[int], port: int) -> str:
    """The shipped configuration with everything that names the container world moved to ``directory``
    and loopback: the replicas' ports, nginx's port, pid, logs and temporary files; in the foreground."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    text = substitute(text, r"^pid .*;$", f"pid {directory / 'nginx.pid'};")
    text = substitute(text, r"^error_log /dev/stderr (\w+);$", f"error_log {directory / 'error.log'} warn;")
    text = substitute(text, r"access_log /dev/stdout upstreams;", f"access_log {directory / 'access.log'} upstreams;")
    text = substitute(text, r"/tmp/nginx-", f"{directory}/nginx-")
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in replicas)
    text = substitute(text, r"^\s*server loss-replica:8000 max_fails=1 fail_timeout=5s;$", servers)
    text = substitute(text, r"^\s*listen 8080;$", f"        listen 127.0.0.1:{port};")
    head = "daemon off;\n"
    if os.geteuid() == 0:  # nginx's workers would drop to "nobody", who cannot write into this test's tmp_path
        head += f"user {pwd.getpwuid(0).pw_name};\n"
    return head + text


@contextlib.contextmanager
def nginx(directory: Path, replicas: list[int]):
    """nginx on a free loopback port in front of ``replicas``; yields its base URL."""
    binary = nginx_binary()
    port = free_port()
    conf = directory / "nginx.conf"
    conf.write_text(loopback_config(directory, replicas, port), encoding="utf-8")
    startup_log = str(directory / "startup.log")
    command = [binary, "-p", str(directory), "-c", str(conf), "-e", startup_log]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=GENEROUS)
    assert check.returncode == 0, f"nginx -t: {check.stderr}"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(base, proc, GENEROUS, lambda: "nginx did not answer /healthz (or exited): " + "".join(
            log.read_text(errors="replace") for log in (directory / "startup.log", directory / "error.log") if log.exists()))
        yield base
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def workload(count: int, seed: int = 0) -> list[tuple[str, dict, float]]:
    """(loss, body, expected loss): mostly MSE of mixed sizes, every eighth a Circle computation of a few
    tenths of a second. The expected values are computed here, in-process, by the engine."""
    rng = np.random.default_rng(seed)
    circles = []
    for batch in (CIRCLE_BATCH, CIRCLE_BATCH + 50, CIRCLE_BATCH + 100):  # a few, cycled: each costs as much here
        y = rng.normal(size=(batch, 2))
        body = {"y_true": (np.arange(batch) // 2).tolist(),
                "y_pred": (y / np.linalg.norm(y, axis=1, keepdims=True)).tolist(), "outputs": ["loss"]}
        expected = compute("circle", body["y_true"], body["y_pred"], outputs=["loss"]).loss
        circles.append(("circle", body, float(expected)))
    items = []
    for i in range(count):
        if i % 8 == 2:
            items.append(circles[i % len(circles)])
            continue
        rows, cols = int(rng.integers(1, 50)), int(rng.integers(1, 200))
        y_true, y_pred = rng.normal(size=(rows, cols)), rng.normal(size=(rows, cols))
        body = {"y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "outputs": ["loss"]}
        items.append(("mse", body, float(compute("mse", y_true, y_pred, outputs=["loss"]).loss)))
    return items


def post(client: httpx.Client, item) -> tuple[int, float | str]:
    name, body, _ = item
    try:
        response = client.post(f"/v1/losses/{name}", content=json.dumps(body),
                               headers={"Content-Type": "application/json"})
        return response.status_code, response.json()["loss"] if response.status_code == 200 else response.text
    except httpx.HTTPError as exc:
        return 0, repr(exc)


class Load:
    """Sends the items from CLIENT_THREADS threads through nginx, and bursts of long requests on demand."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.done = 0
        self.lock = threading.Lock()
        self.local = threading.local()
        self.bursts: list[concurrent.futures.Future] = []
        self.burst_pool = concurrent.futures.ThreadPoolExecutor(BURST)
        # every burst thread up, with its connection to nginx open, before any burst: a burst then reaches
        # the replicas at once
        ready = threading.Barrier(BURST)
        warm = [self.burst_pool.submit(lambda: (self.client().get("/healthz"), ready.wait(GENEROUS)))
                for _ in range(BURST)]
        for future in warm:
            future.result()

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.base, timeout=GENEROUS)
        return self.local.client

    def send(self, item) -> tuple[int, float | str]:
        result = post(self.client(), item)
        with self.lock:
            self.done += 1
        return result

    def burst(self, item) -> None:
        """BURST copies of a long request at once: nginx's round robin puts some on every replica."""
        self.bursts += [self.burst_pool.submit(lambda: post(self.client(), item)) for _ in range(BURST)]

    def run(self, items: list, controller) -> list[tuple[int, float | str]]:
        stop = threading.Event()
        control = threading.Thread(target=controller, args=(stop,))
        control.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool:
                return list(pool.map(self.send, items))
        finally:
            stop.set()
            control.join(GENEROUS)
            self.burst_pool.shutdown(wait=True)


def test_nginx_retries_every_request_of_a_killed_or_stopped_replica(tmp_path):
    items = workload(REQUESTS)
    with contextlib.ExitStack() as stack:
        replicas = [stack.enter_context(live_server(log_path=tmp_path / f"replica-{i}.log")) for i in range(3)]
        base = stack.enter_context(nginx(tmp_path, [r.port for r in replicas]))
        killed, stopped = replicas[0], replicas[1]
        started = time.monotonic()  # the load, bounded below; the servers' start-up is live_server's to bound
        load = Load(base)
        circle = next(item for item in items if item[0] == "circle")
        events: dict[str, int] = {}

        def kill_two(stop: threading.Event) -> None:
            for fraction, victim, signum in ((4, killed, signal.SIGKILL), (2, stopped, signal.SIGTERM)):
                while load.done < REQUESTS // fraction and not stop.is_set():
                    time.sleep(0.02)
                load.burst(circle)
                time.sleep(IN_FLIGHT)  # the burst's computations have begun and are far from done
                os.kill(victim.pid, signum)
                events[signal.Signals(signum).name] = load.done

        results = load.run(items, kill_two)
        results += [burst.result() for burst in load.bursts]
        items = items + [circle] * len(load.bursts)
        assert psutil.Process(stopped.pid).wait(timeout=GENEROUS) == 0  # drained and exited cleanly
        assert psutil.Process(killed.pid).wait(timeout=GENEROUS) == -signal.SIGKILL

    assert set(events) == {"SIGKILL", "SIGTERM"}, events
    assert len(results) == REQUESTS + 2 * BURST
    failed = [(i, r) for i, r in enumerate(results) if r[0] != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:3]}"
    for (name, _, expected), (_, loss) in zip(items, results):
        assert np.isclose(loss, expected, rtol=1e-9, atol=0), (name, loss, expected)

    access = (tmp_path / "access.log").read_text(errors="replace").splitlines()
    posts = [line for line in access if '"POST /v1/losses/' in line]
    assert len(posts) == len(results)
    retried = [line for line in posts if re.search(r"upstream=\S+, ", line)]
    assert retried, "nginx retried nothing: no replica died under the load?"
    errors = (tmp_path / "error.log").read_text(errors="replace")
    cut_off = re.findall(r"upstream prematurely closed|Connection reset by peer", errors)
    assert cut_off, f"no request was in flight on the killed replica: {errors[-2000:]}"
    print(f"\n{len(results)} requests, {len(retried)} retried on another replica ({len(cut_off)} cut off in flight), "
          f"0 failed; SIGKILL after {events['SIGKILL']}, SIGTERM after {events['SIGTERM']}; "
          f"{time.monotonic() - started:.1f} s")
    assert time.monotonic() - started < GENEROUS
