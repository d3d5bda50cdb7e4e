"""Issue 9's hostile cases against the DEFAULT configuration: peak RSS, statuses and times.

    .venv/bin/python bench/hostile.py            # prints a Markdown table (README, "Limits under hostile load")
    .venv/bin/python bench/hostile.py --quick    # skips the 30 s body-timeout case

Each case runs on a fresh server (``python -m service``, one worker, every LOSS_SERVICE_* variable
of this shell removed), so the process's peak resident set (VmHWM) is that case's; RSS is also
sampled every 10 ms, and /healthz is polled every 50 ms throughout (its worst latency is reported).
All traffic stays on loopback; every loop is bounded.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import HOST, ROOT, describe_git, environment, free_port, loadavg, wait_healthy, write_results  # noqa: E402

from service.config import Settings  # noqa: E402
from service.server import memory_bound  # noqa: E402

OLD_LIMIT_B = 4472  # Circle at the old per-computation limit (20M pairs): the 180 KB requests
TIMEOUT = 600.0


class LiveServer:
    def __init__(self) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LOSS_SERVICE_")}
        self.port = free_port()
        self.env.update({"LOSS_SERVICE_HOST": HOST, "LOSS_SERVICE_PORT": str(self.port),
                         "LOSS_SERVICE_LOG_LEVEL": "warning"})
        self.url = f"http://{HOST}:{self.port}"

    def __enter__(self) -> LiveServer:
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            started = wait_healthy(self.proc, self.port, timeout=60)
        except RuntimeError:
            started = False
        if not started:
            raise RuntimeError(f"the server did not start:\n{self.log_text()[-2000:]}")
        self.process = psutil.Process(self.proc.pid)
        self.baseline = tree_rss(self.process)
        return self

    def log_text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def peak_rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def tree_rss(process: psutil.Process) -> int:
    """The RSS of the server and of its worker processes (LOSS_SERVICE_EXECUTOR=process, the default).

    tests/test_hostile.py has the same six lines on purpose: the benchmarks run without the tests tree
    (and the tests without bench/), and neither belongs in the service."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:  # a worker replaced meanwhile
            pass
    return total


class Watch:
    """RSS (the server's and its workers') sampled every 10 ms and /healthz polled every 50 ms while a case runs."""

    def __init__(self, live: LiveServer) -> None:
        self.live, self.peak, self.health, self.worst = live, 0, [], 0.0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._sample), threading.Thread(target=self._poll)]

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.live.process))
            time.sleep(0.01)

    def _poll(self) -> None:
        with httpx.Client(base_url=self.live.url, timeout=30) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    self.health.append(client.get("/healthz").status_code)
                except httpx.HTTPError as exc:
                    self.health.append(type(exc).__name__)
                self.worst = max(self.worst, time.perf_counter() - start)
                time.sleep(0.05)

    def __enter__(self) -> Watch:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def circle_body(batch: int, seed: int = 0) -> dict:
    y = np.random.default_rng(seed).normal(size=(batch, 2))
    return {"y_true": (np.arange(batch) // 2).tolist(),
            "y_pred": (y / np.linalg.norm(y, axis=1, keepdims=True)).round(6).tolist()}


def post_all(url: str, path: str, bodies: list[bytes]) -> list[tuple[int, float]]:
    def post(body: bytes) -> tuple[int, float]:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            start = time.perf_counter()
            status = client.post(path, content=body, headers={"content-type": "application/json"}).status_code
            return status, time.perf_counter() - start
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def statuses(answers: list[tuple[int, float]]) -> str:
    counts: dict[int, int] = {}
    for status, _ in answers:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} x {s}" for s, n in sorted(counts.items()))


def _hang_up(port: int, body: bytes) -> None:
    with socket.create_connection((HOST, port)) as s:
        s.sendall(b"POST /v1/losses/circle HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        time.sleep(0.5)


def run_case(name: str, fn) -> dict:
    with LiveServer() as live:
        with Watch(live) as watch:
            start = time.perf_counter()
            outcome = fn(live)
            elapsed = time.perf_counter() - start
        peak = max(watch.peak, live.peak_rss())
    row = {"case": name, "outcome": outcome, "seconds": elapsed, "baseline_mb": live.baseline / 2**20,
           "peak_mb": peak / 2**20,
           "healthz": "all 200" if all(h == 200 for h in watch.health) else statuses([(h, 0) for h in watch.health]),
           "healthz_worst_ms": watch.worst * 1e3}
    print(f"  {name}: {outcome}; {elapsed:.1f} s; peak {row['peak_mb']:.0f} MB", file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip the body-timeout case (30 s by default)")
    args = parser.parse_args()
    # the defaults, whatever this shell sets (its LOSS_SERVICE_* variables are not passed to the server)
    s = Settings.model_construct(**{name: field.get_default(call_default_factory=True)
                                    for name, field in Settings.model_fields.items()})
    at_limit = int(np.sqrt(min(s.max_request_work, s.work_budget)))
    enc = lambda obj: json.dumps(obj).encode()  # noqa: E731

    def exercises(b: int):
        return lambda live: statuses(post_all(live.url, "/v1/exercises",
                                              [enc({"loss": "circle", "shape": [b, 2], "seed": i}) for i in range(4)]))

    def requests(b: int):
        bodies = [enc(circle_body(b, i)) for i in range(4)]
        return lambda live: statuses(post_all(live.url, "/v1/losses/circle", bodies))

    def batch(live):
        items = [{"loss": "circle", **circle_body(at_limit, i)} for i in range(64)]
        return statuses(post_all(live.url, "/v1/batch", [enc({"requests": items})]))

    def hung_up(live):
        body = enc(circle_body(at_limit))
        threads = [threading.Thread(target=_hang_up, args=(live.port, body)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        (status, seconds), = post_all(live.url, "/v1/losses/mse", [enc({"y_true": [1.0], "y_pred": [2.0]})])
        time.sleep(1)
        dropped = live.log_text().count("dropped POST")
        return f"{dropped} of 8 dropped (logged); the tiny request next: {status} in {seconds:.2f} s"

    def idle(live):
        conns = [socket.create_connection((HOST, live.port)) for _ in range(1100)]
        try:
            start = time.perf_counter()
            status = httpx.get(f"{live.url}/healthz", timeout=30, headers={"connection": "close"}).status_code
            return f"/healthz {status} in {time.perf_counter() - start:.2f} s with 1,100 idle connections open"
        finally:
            for c in conns:
                c.close()

    def lying(live):
        with socket.create_connection((HOST, live.port)) as c:
            c.sendall(b"POST /v1/losses/mse HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{\"y_true\":")
            c.settimeout(120)
            start = time.perf_counter()
            answer = b""
            while chunk := c.recv(65536):
                answer += chunk
            return f"{answer.split(b' ', 2)[1].decode()} then closed after {time.perf_counter() - start:.1f} s"

    cases = [
        (f"4 concurrent /v1/exercises, Circle shape [{OLD_LIMIT_B}, 2] (the issue's, old limit)",
         exercises(OLD_LIMIT_B)),
        (f"4 concurrent /v1/exercises, Circle shape [{at_limit}, 2] (at the new limit)", exercises(at_limit)),
        (f"4 concurrent /v1/losses/circle, B = {OLD_LIMIT_B} (the issue's 180 KB)", requests(OLD_LIMIT_B)),
        (f"4 concurrent /v1/losses/circle, B = {at_limit} (at the new limit)", requests(at_limit)),
        (f"a 64-item Circle batch, B = {at_limit} each", batch),
        (f"8 Circle requests (B = {at_limit}) whose clients hung up, then a tiny one", hung_up),
        ("1,100 idle connections, then /healthz", idle),
    ]
    if not args.quick:
        cases.append(("Content-Length: 1000, then 10 bytes", lying))
    print(f"running {len(cases)} cases on fresh servers with the default settings", file=sys.stderr)
    rows = [run_case(name, fn) for name, fn in cases]

    bound = memory_bound(s)
    env = environment("numpy", "fastapi", "uvicorn")
    lines = [f"Default settings: LOSS_SERVICE_WORK_BUDGET={s.work_budget:,}, MAX_REQUEST_WORK={s.max_request_work:,}, "
             f"MAX_QUEUE={s.max_queue}, MAX_CONCURRENCY={s.max_concurrency}, BODY_TIMEOUT={s.body_timeout:g} s, "
             f"MAX_CONNECTIONS={s.max_connections}; memory bound {bound['total'] / 2**30:.2f} GiB. "
             f"{describe_git(env)}, load average {loadavg()}.", "",
             "| case | outcome | time | peak RSS (idle RSS) | /healthz throughout (worst latency) |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['outcome']} | {r['seconds']:.1f} s | {r['peak_mb']:.0f} MB "
                     f"({r['baseline_mb']:.0f} MB) | {r['healthz']} ({r['healthz_worst_ms']:.0f} ms) |")
    table = "\n".join(lines)
    print(table)
    path = write_results("hostile", {"environment": env, "rows": rows, "table": table})
    print(f"\nraw results: {path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
