"""Issue 12 item 3: where gzip responses are compressed, measured by /healthz latency during one.

Three servers (``bench/gzip_apps.py``; one uvicorn worker each, service defaults, the same zlib level
LOSS_SERVICE_GZIP_LEVEL):

* threaded  - the service's ``GzipMiddleware``: bodies over 64 KiB are compressed in a worker thread;
* starlette - Starlette's ``GZipMiddleware`` in its place (1.10: bodies of 128 KiB or more in a thread);
* on-loop   - Starlette's with its thread cut beyond any body: compressed on the event loop.

Each round sends one request with ``Accept-Encoding: gzip`` while another connection polls ``/healthz``
every 5 ms; the table gives the request's time and /healthz's p50, p99 and worst latency during it.
Two requests: ``GET /bench/large`` (a prebuilt ~20 MB JSON body: compression and sending alone), and
``POST /v1/losses/mean_squared_error`` on 2 x N x N float64 with all outputs (end to end: parsing and
serializing hold the GIL in their threads, which stalls /healthz on both servers alike: issue 12 item 4).
In-process figures follow: zlib levels 1 and 6 on that response (time, ratio), and a thread hop beside
compressing 64 KiB (the service's cut between compressing inline and in a thread).

Example: ``.venv/bin/python bench/bench_compression.py --rounds 3 --size 1000``.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import sys
import threading
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import anyio
import numpy as np
import orjson

from bench._common import HOST, Server, describe_git, environment, fmt_ms, loadavg, sigterm_as_exit, write_results
from service.config import Settings

APPS = {"threaded": "bench.gzip_apps:threaded", "starlette": "bench.gzip_apps:starlette",
        "on-loop": "bench.gzip_apps:on_loop"}


def request_body(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return orjson.dumps({"y_true": rng.normal(size=(n, n)), "y_pred": rng.normal(size=(n, n)),
                         "outputs": ["loss", "per_sample", "gradient"]}, option=orjson.OPT_SERIALIZE_NUMPY)


def one_round(port: int, body: bytes | None) -> dict:
    latencies: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while not stop.is_set():
            t0 = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.005)
        conn.close()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=600)
        t0 = time.perf_counter()
        if body is None:
            conn.request("GET", "/bench/large", headers={"Accept-Encoding": "gzip"})
        else:
            conn.request("POST", "/v1/losses/mean_squared_error", body=body,
                         headers={"Content-Type": "application/json", "Accept-Encoding": "gzip"})
        response = conn.getresponse()
        packed = response.read()
        elapsed = time.perf_counter() - t0
        conn.close()
    finally:
        stop.set()
        poller.join()
    assert response.status == 200 and response.getheader("content-encoding") == "gzip", response.status
    plain = gzip.decompress(packed)
    ms = np.asarray(latencies) * 1e3
    return {"request_s": elapsed, "response_mb": len(plain) / 1e6, "gzipped_mb": len(packed) / 1e6,
            "healthz_p50_ms": float(np.percentile(ms, 50)), "healthz_p99_ms": float(np.percentile(ms, 99)),
            "healthz_max_ms": float(ms.max()), "healthz_n": int(ms.size)}


def in_process(response: bytes) -> list[str]:
    lines = []
    for level in (1, 6):
        t0 = time.perf_counter()
        packed = zlib.compress(response, level)
        dt = time.perf_counter() - t0
        lines.append(f"zlib level {level}: {dt * 1e3:.0f} ms for {len(response) / 1e6:.1f} MB "
                     f"({len(response) / dt / 1e6:.0f} MB/s), ratio {len(response) / len(packed):.2f}")
    piece = response[:64 * 1024]
    t0 = time.perf_counter()
    for _ in range(50):
        zlib.compress(piece, 1)
    per_piece = (time.perf_counter() - t0) / 50

    async def hops() -> float:
        t0 = time.perf_counter()
        for _ in range(200):
            await anyio.to_thread.run_sync(int)
        return (time.perf_counter() - t0) / 200

    hop = anyio.run(hops)
    lines.append(f"64 KiB at level 1: {per_piece * 1e3:.2f} ms; a thread hop (anyio.to_thread): {hop * 1e3:.2f} ms")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()
    body = request_body(args.size)
    env = environment("starlette", "uvicorn", "numpy")
    requests = {"GET /bench/large": None, f"POST MSE {args.size} x {args.size}": body}
    results: dict[str, list[dict]] = {}
    with sigterm_as_exit():
        for name, app in APPS.items():
            with Server(app) as server:
                one_round(server.port, request_body(10))  # warm-up
                for what, content in requests.items():
                    results[f"{what}, {name}"] = [one_round(server.port, content) for _ in range(args.rounds)]
    print(f"Accept-Encoding: gzip, level {Settings().gzip_level}; {args.rounds} rounds; {describe_git(env)}; "
          f"load average {loadavg()}\n")
    print("| request, where gzip runs | request (median) | response, gzipped | /healthz p50 | p99 | worst |")
    print("|---|---|---|---|---|---|")
    for name, rows in sorted(results.items()):
        med = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
        worst = max(r["healthz_max_ms"] for r in rows)
        print(f"| {name} | {med['request_s']:.2f} s | {med['response_mb']:.1f} MB, {med['gzipped_mb']:.1f} MB | "
              f"{fmt_ms(med['healthz_p50_ms'])} ms | {fmt_ms(med['healthz_p99_ms'])} ms | {fmt_ms(worst)} ms |")
    print()
    for line in in_process(orjson.dumps({"gradient": np.random.default_rng(1).normal(size=(1000, 1000))},
                                        option=orjson.OPT_SERIALIZE_NUMPY)):
        print("*", line)
    path = write_results("compression", {"environment": env, "results": results})
    print(f"\nraw: {path.name}")


if __name__ == "__main__":
    main()
