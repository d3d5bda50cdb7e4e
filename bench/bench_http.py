"""Issue 2 benchmark: a large JSON loss request end to end over loopback, beside its floor and the idiomatic way.

For each loss (default ``mean_squared_error`` and ``categorical_crossentropy``) one request body
``{"y_true": N x N, "y_pred": N x N, "outputs": ["loss", "per_sample", "gradient"]}`` (float64,
serialized once by orjson: shortest round-trip repr) is timed three ways, interleaved round-robin
(the order rotates each round; warm-up rounds first, not counted):

* floor      - in-process, no HTTP: ``orjson.loads(body)``, ``np.asarray`` on both arrays, the same
               engine ``compute``, ``orjson.dumps`` of the same response dict (``OPT_SERIALIZE_NUMPY``);
* service    - ``uvicorn service.app:app`` (one worker, a child process), ``POST /v1/losses/{name}``;
* idiomatic  - ``uvicorn bench.idiomatic_app:app``: Pydantic ``list[list[float]]`` body model,
               ``.tolist()`` into a Pydantic response model, FastAPI's default serialization.

HTTP times cover sending the whole body and reading the whole response on one keep-alive
connection (``http.client`` by default, ``--client httpx`` for httpx). The responses of the service and
the idiomatic app are checked against the floor's numbers (loss, per_sample, gradient) before timing.
Targets (issue 2): service <= 1.5x floor and idiomatic >= 3x service.

A small-payload run follows (2 x 1,000 floats by default, hundreds of requests alternating between
the two servers): p50/p95 latency of each, with the in-process floor for reference.

The OIP binary run follows: a 2 x SIZE x SIZE float64 request with all outputs (loss, per_sample,
gradient, hessian) as Triton binary tensors to ``/v2/models/mse/infer``, the same request as /v1 JSON,
the binary path's in-process floor (``np.frombuffer``, compute, ``tobytes``, with the service's runtime
settings; beside it the same under glibc's default malloc, the earlier floor), its socket floor
(``bench/raw_echo.py``: the same bytes over loopback with no ASGI server) and its HTTP echo floor
(``bench/echo_app.py`` under the same uvicorn command: the same body read, as many bytes answered,
nothing computed; binary / echo floor is the service's own cost beyond HTTP's), a binary row per service
configuration (``--binary-executors``: process: the defaults, binary in the server process; workers:
LOSS_SERVICE_BINARY_IN_PROCESS=false; thread) and tritonclient.http's own client (``--no-triton`` to
skip), all interleaved; every HTTP answer is checked against the floor's bytes first. ``--server granian``
(or hypercorn) serves the echo floor and the binary rows' services with another ASGI server. Targets
(issue 12): binary >= 10x faster than JSON end to end, binary within 1.5x of its floor (``--only-binary``
runs just this).

Prints Markdown tables and writes the raw samples to ``bench/results/http-*.json`` (gitignored).
Example: ``.venv/bin/python bench/bench_http.py --rounds 7 --size 1000``.

``--healthz`` measures issue 12's item 4 instead: ``/healthz`` latency (p50/p99/max), polled from a
separate client process, first on an idle server, then while ``--load`` (default 4) large requests
(2 x 1,000,000 float64, all outputs) run back to back against it, once per executor
(``LOSS_SERVICE_EXECUTOR``, ``--executors thread,process``). Target: p99 <= 50 ms under load.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np
import orjson

from bench._common import (
    CLIENTS,
    SERVERS,
    HttpClient,
    Server,
    describe_git,
    environment,
    fmt_ms,
    loadavg,
    relpath,
    sigterm_as_exit,
    summarize,
    write_results,
)
from service.engine import compute, get_loss

PATHS = ("floor", "service", "idiomatic")
DEFAULT_LOSSES = "mean_squared_error,categorical_crossentropy"
PACKAGES = ("fastapi", "starlette", "pydantic", "pydantic-core", "uvicorn", "uvloop", "httptools", "orjson", "numpy",
            "httpx")
DEFAULT_MAX_BODY = 64 * 1024 * 1024  # service defaults (service/config.py); raised only if --size needs it
DEFAULT_MAX_ELEMENTS = 5_000_000
# the binary run's service configurations (--binary-executors): their settings and how the table names them
BINARY_SERVICES = {
    "process": ({}, "process executor, binary in the server process (the defaults)"),
    "workers": ({"LOSS_SERVICE_BINARY_IN_PROCESS": "false"}, "process executor, LOSS_SERVICE_BINARY_IN_PROCESS=false"),
    "thread": ({"LOSS_SERVICE_EXECUTOR": "thread"}, "thread executor"),
}


# --- payloads and the floor -------------------------------------------------------------------------

def make_body(loss_name: str, shape: tuple[int, ...], seed: int, outputs: list[str]) -> bytes:
    loss = get_loss(loss_name)
    defaults = {p.name: p.default for p in loss.params}
    rng = np.random.Generator(np.random.PCG64(seed))
    arrays = loss.sample(rng, shape, defaults)
    body = {"y_true": np.ascontiguousarray(arrays["y_true"], dtype=np.float64),
            "y_pred": np.ascontiguousarray(arrays["y_pred"], dtype=np.float64), "outputs": outputs}
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def response_dict(result) -> dict[str, Any]:
    """The service's response layout (loss, per_sample, gradient, meta), NumPy arrays as they are."""
    out: dict[str, Any] = {}
    for name in ("loss", "per_sample", "gradient", "hessian"):
        value = getattr(result, name)
        if value is not None:
            value = np.asarray(value)
            out[name] = value[()] if value.ndim == 0 else np.ascontiguousarray(value)
    out["meta"] = result.meta
    return out


def floor_once(loss_name: str, body: bytes, outputs: list[str]) -> tuple[float, dict[str, float], bytes, Any]:
    t0 = time.perf_counter()
    obj = orjson.loads(body)
    t1 = time.perf_counter()
    y_true = np.asarray(obj["y_true"], dtype=np.float64)
    y_pred = np.asarray(obj["y_pred"], dtype=np.float64)
    t2 = time.perf_counter()
    result = compute(loss_name, y_true, y_pred, outputs=obj.get("outputs", outputs))
    t3 = time.perf_counter()
    out = orjson.dumps(response_dict(result), option=orjson.OPT_SERIALIZE_NUMPY)
    t4 = time.perf_counter()
    phases = {"orjson.loads": t1 - t0, "np.asarray": t2 - t1, "compute": t3 - t2, "orjson.dumps": t4 - t3}
    return t4 - t0, phases, out, result


# --- verification -------------------------------------------------------------------------------------

def compare(reference: Any, data: bytes, who: str) -> list[str]:
    """Differences between a JSON response and the floor's result (empty list: they agree)."""
    problems = []
    try:
        got = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return [f"{who}: response is not JSON ({exc}): {data[:200]!r}"]
    for name in ("loss", "per_sample", "gradient"):
        want = getattr(reference, name)
        if want is None:
            continue
        if got.get(name) is None:
            problems.append(f"{who}: no {name} in the response")
            continue
        a, b = np.asarray(got[name], dtype=np.float64), np.asarray(want, dtype=np.float64)
        if a.shape != b.shape:
            problems.append(f"{who}: {name} has shape {a.shape}, expected {b.shape}")
        elif not np.allclose(a, b, rtol=1e-12, atol=0.0):
            problems.append(f"{who}: {name} differs (max abs diff {float(np.max(np.abs(a - b))):.3g})")
    return problems


# --- the large-payload run ----------------------------------------------------------------------------

def run_large(loss_name: str, args, clients: dict[str, Any]) -> dict[str, Any]:
    outputs = ["loss", "per_sample", "gradient"]
    shape = (args.size, args.size)
    body = make_body(loss_name, shape, args.seed, outputs)
    path = f"/v1/losses/{loss_name}"
    print(f"\n## {loss_name}: 2 x {shape[0]} x {shape[1]} float64, request {len(body) / 1e6:.1f} MB", flush=True)

    samples: dict[str, list[float]] = {p: [] for p in PATHS}
    phases: list[dict[str, float]] = []
    sizes: dict[str, int] = {}
    checks: list[str] = []
    reference = None
    total = args.warmup + args.rounds
    for r in range(total):
        order = PATHS[r % 3:] + PATHS[:r % 3]  # rotate so no path always runs first/after another
        measured = r >= args.warmup
        line = []
        for which in order:
            gc.collect()
            if which == "floor":
                seconds, ph, out, result = floor_once(loss_name, body, outputs)
                reference = reference or result
                sizes["floor"] = len(out)
                if measured:
                    phases.append(ph)
            else:
                status, out, seconds = clients[which].post(path, body)
                sizes[which] = len(out)
                if status != 200:
                    raise RuntimeError(f"{which} answered {status}: {out[:500]!r}")
                if r == 0:  # correctness before any number is reported
                    checks.extend(compare(reference or floor_once(loss_name, body, outputs)[3], out, which))
            del out
            if measured:
                samples[which].append(seconds)
            line.append(f"{which} {seconds * 1e3:.0f}")
        tag = "warm-up" if not measured else f"round {r - args.warmup + 1}/{args.rounds}"
        print(f"  {tag:>12}: " + ", ".join(line) + " ms", flush=True)

    if checks:
        raise RuntimeError("responses disagree with the in-process computation:\n  " + "\n  ".join(checks))
    stats = {p: summarize(samples[p]) for p in PATHS}
    phase_median = {k: float(np.median([ph[k] for ph in phases]) * 1e3) for k in phases[0]} if phases else {}
    return {"loss": loss_name, "shape": list(shape), "request_bytes": len(body), "response_bytes": sizes,
            "samples_s": samples, "stats": stats, "floor_phases_median_ms": phase_median,
            "verified": "service and idiomatic responses equal the in-process loss, per_sample and gradient "
                        "(rtol 1e-12)",
            "loss_value": float(reference.loss)}


# --- the small-payload run ----------------------------------------------------------------------------

def run_small(args, clients: dict[str, Any]) -> dict[str, Any]:
    loss_name = args.losses[0]
    shape = tuple(int(x) for x in args.small_shape.lower().split("x"))
    outputs = ["loss", "per_sample", "gradient"]
    body = make_body(loss_name, shape, args.seed, outputs)
    path = f"/v1/losses/{loss_name}"
    n = int(np.prod(shape))
    print(f"\n## small payload: {loss_name}, 2 x {n:,} floats (shape {shape[0]}x{shape[1]}), "
          f"{len(body):,} B, {args.small_requests} requests per path after {args.small_warmup} warm-up", flush=True)
    ref = floor_once(loss_name, body, outputs)[3]
    for which in ("service", "idiomatic"):
        status, out, _ = clients[which].post(path, body)
        if status != 200:
            raise RuntimeError(f"{which} answered {status}: {out[:500]!r}")
        problems = compare(ref, out, which)
        if problems:
            raise RuntimeError("small payload: " + "; ".join(problems))
    samples: dict[str, list[float]] = {p: [] for p in PATHS}
    for i in range(args.small_warmup + args.small_requests):
        order = PATHS if i % 2 == 0 else PATHS[::-1]
        for which in order:
            if which == "floor":
                seconds = floor_once(loss_name, body, outputs)[0]
            else:
                status, _, seconds = clients[which].post(path, body)
                if status != 200:
                    raise RuntimeError(f"{which} answered {status}")
            if i >= args.small_warmup:
                samples[which].append(seconds)
    return {"loss": loss_name, "shape": list(shape), "request_bytes": len(body), "samples_s": samples,
            "stats": {p: summarize(samples[p]) for p in PATHS}}


# --- the OIP binary run ---------------------------------------------------------------------------------

ALL_OUTPUTS = ["loss", "per_sample", "gradient", "hessian"]


def make_binary_body(y_true: np.ndarray, y_pred: np.ndarray, outputs: list[str]) -> tuple[bytes, int]:
    """An OIP request with Triton's binary extension: the JSON header, then both tensors' raw bytes."""
    header = orjson.dumps({
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP64", "parameters": {"binary_data_size": a.nbytes}}
                   for n, a in (("y_true", y_true), ("y_pred", y_pred))],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in outputs]})
    return header + y_true.astype("<f8").tobytes() + y_pred.astype("<f8").tobytes(), len(header)


def binary_floor_once(loss_name: str, body: bytes, header_length: int, shape: tuple[int, ...],
                      outputs: list[str]) -> tuple[float, bytes]:
    """The binary path's in-process floor: np.frombuffer on the body, the same compute, tobytes of the outputs."""
    t0 = time.perf_counter()
    n = int(np.prod(shape))
    y_true = np.frombuffer(body, dtype="<f8", count=n, offset=header_length).reshape(shape)
    y_pred = np.frombuffer(body, dtype="<f8", count=n, offset=header_length + 8 * n).reshape(shape)
    result = compute(loss_name, y_true, y_pred, outputs=outputs)
    out = b"".join(np.asarray(getattr(result, name)).tobytes() for name in outputs)
    return time.perf_counter() - t0, out


class BinaryClient:
    """One keep-alive http.client connection posting OIP binary requests (the header length in its header)."""

    def __init__(self, port: int, timeout: float = 600.0, label: str = "") -> None:
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.label = label  # how the report names the server behind it
        self.last_received: str | None = None

    def post(self, path: str, body: bytes, header_length: int) -> tuple[int, int, bytes, float]:
        t0 = time.perf_counter()
        self.conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream",
                                                            "Inference-Header-Content-Length": str(header_length)})
        resp = self.conn.getresponse()
        data = resp.read()
        seconds = time.perf_counter() - t0
        length = int(resp.getheader("Inference-Header-Content-Length") or len(data))
        self.last_received = resp.getheader("X-Echo-Received")  # the echo floor's count of the body it read
        return resp.status, length, data, seconds

    def close(self) -> None:
        self.conn.close()


def service_runtime() -> None:
    """This process's runtime as the service's (service.app.create_app, default settings): glibc keeps freed
    large blocks, BLAS and OpenMP on one thread each, the default vector math. Without it the binary floor paid
    page faults the service does not (every 16 MB output a fresh mmap) and measured slower than the service
    over HTTP. Applied from the binary run on (process-wide): the JSON runs before it keep their floor as it was."""
    from service.config import Settings
    from service.engine import vecmath
    from service.runtime import limit_math_threads, reuse_freed_memory

    settings = Settings()
    if settings.reuse_memory:
        reuse_freed_memory()
    vecmath.use(settings.vector_math)
    limit_math_threads(settings.blas_threads)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (service/runtime.py)
_GLIBC_DEFAULT_THRESHOLD = 128 * 1024  # both parameters' defaults


@contextlib.contextmanager
def glibc_default_malloc():
    """glibc's default large-block policy for the duration (every block over 128 KiB a fresh mmap), as the
    earlier binary floor ran: its row beside the floor under the service's settings, for comparison."""
    from service.runtime import _libc
    libc = _libc()
    libc.mallopt(_M_MMAP_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
    libc.mallopt(_M_TRIM_THRESHOLD, _GLIBC_DEFAULT_THRESHOLD)
    try:
        yield
    finally:
        service_runtime()


class TritonClient:
    """tritonclient's own ``InferenceServerClient`` (geventhttpclient underneath), binary inputs and outputs: what
    a Triton user's code does, NumPy arrays in (``set_data_from_numpy``) and out (``as_numpy``), timed whole."""

    def __init__(self, port: int) -> None:
        import tritonclient.http as triton
        self.triton = triton
        self.client = triton.InferenceServerClient(f"127.0.0.1:{port}", network_timeout=600.0,
                                                   connection_timeout=600.0)

    def infer(self, model: str, arrays: dict[str, np.ndarray], outputs: list[str]) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        inputs = []
        for name, value in arrays.items():
            tensor = self.triton.InferInput(name, list(value.shape), "FP64")
            tensor.set_data_from_numpy(value, binary_data=True)
            inputs.append(tensor)
        result = self.client.infer(model, inputs, outputs=[self.triton.InferRequestedOutput(n, binary_data=True)
                                                           for n in outputs])
        got = [result.as_numpy(n) for n in outputs]
        seconds = time.perf_counter() - t0
        return seconds, b"".join(np.ascontiguousarray(a).tobytes() for a in got)

    def close(self) -> None:
        self.client.close()


def run_binary(args, json_client: Any, binary_clients: dict[str, BinaryClient], echo_client: BinaryClient,
               raw_client: BinaryClient, triton_client: TritonClient | None = None) -> dict[str, Any]:
    """A 2 x SIZE x SIZE float64 mse request with all outputs: OIP binary (one row per client of
    ``binary_clients``: a service per executor), /v1 JSON, the binary floor and the HTTP echo floor
    (bench/echo_app.py: the same body in, a body of the binary response's size out, nothing computed), and
    tritonclient's own client if given, interleaved; every HTTP path's outputs are checked bit for bit against
    the floor first."""
    loss_name, outputs, shape = "mean_squared_error", ALL_OUTPUTS, (args.size, args.size)
    model = f"/v2/models/{loss_name}/infer"
    service_runtime()
    rng = np.random.Generator(np.random.PCG64(args.seed))
    arrays = get_loss(loss_name).sample(rng, shape, {})
    y_true, y_pred = (np.ascontiguousarray(arrays[k], dtype=np.float64) for k in ("y_true", "y_pred"))
    binary_body, header_length = make_binary_body(y_true, y_pred, outputs)
    json_body = orjson.dumps({"y_true": y_true, "y_pred": y_pred, "outputs": outputs},
                             option=orjson.OPT_SERIALIZE_NUMPY)
    print(f"\n## OIP binary: {loss_name} 2 x {shape[0]} x {shape[1]} float64, all outputs; binary request "
          f"{len(binary_body) / 1e6:.1f} MB, JSON request {len(json_body) / 1e6:.1f} MB", flush=True)
    _, floor_out = binary_floor_once(loss_name, binary_body, header_length, shape, outputs)
    response_bytes = 0
    for key, client in binary_clients.items():
        status, length, data, _ = client.post(model, binary_body, header_length)
        if status != 200 or data[length:] != floor_out:
            raise RuntimeError(f"{key} answered {status}, outputs equal to the floor: {data[length:] == floor_out}")
        response_bytes = len(data)
    echo_path = f"/echo?bytes={response_bytes}"  # the echo floor answers as many bytes as the service does
    status, _, echoed, _ = echo_client.post(echo_path, binary_body, header_length)
    if status != 200 or len(echoed) != response_bytes or echo_client.last_received != str(len(binary_body)):
        raise RuntimeError(f"the echo floor answered {status}, {len(echoed)} bytes of {response_bytes}, having "
                           f"received {echo_client.last_received} of {len(binary_body)}")
    status, _, echoed, _ = raw_client.post(echo_path, binary_body, header_length)
    if status != 200 or len(echoed) != response_bytes:
        raise RuntimeError(f"the socket floor answered {status}, {len(echoed)} bytes of {response_bytes}")
    del echoed
    if triton_client is not None and triton_client.infer(loss_name, {"y_true": y_true, "y_pred": y_pred},
                                                         outputs)[1] != floor_out:
        raise RuntimeError("tritonclient's outputs differ from the floor")
    status, data, _ = json_client.post(f"/v1/losses/{loss_name}", json_body)
    got = orjson.loads(data)
    if status != 200 or b"".join(np.asarray(got[n], dtype=np.float64).tobytes() for n in outputs) != floor_out:
        raise RuntimeError(f"/v1 JSON answered {status} with outputs different from the floor")
    sizes = {"json": (len(json_body), len(data)), "echo": (len(binary_body), response_bytes),
             "socket": (len(binary_body), response_bytes),
             **{key: (len(binary_body), response_bytes) for key in binary_clients}}
    del data, got

    def timed(which: str) -> float:
        if which == "floor":
            return binary_floor_once(loss_name, binary_body, header_length, shape, outputs)[0]
        if which == "floor-default-malloc":
            with glibc_default_malloc():
                return binary_floor_once(loss_name, binary_body, header_length, shape, outputs)[0]
        if which == "triton":
            return triton_client.infer(loss_name, {"y_true": y_true, "y_pred": y_pred}, outputs)[0]
        if which == "json":
            status, out, seconds = json_client.post(f"/v1/losses/{loss_name}", json_body)
        else:
            client = {"echo": echo_client, "socket": raw_client}.get(which) or binary_clients[which]
            status, _, out, seconds = client.post(model if which in binary_clients else echo_path, binary_body,
                                                  header_length)
        if status != 200:
            raise RuntimeError(f"{which} answered {status}")
        return seconds

    paths = ("floor", "floor-default-malloc", "socket", "echo", *binary_clients,
             *(("triton",) if triton_client is not None else ()), "json")
    if triton_client is not None:
        sizes["triton"] = (len(binary_body), response_bytes)
    samples: dict[str, list[float]] = {p: [] for p in paths}
    for r in range(args.warmup + args.rounds):
        k = r % len(paths)
        order = paths[k:] + paths[:k]  # rotate so no path always runs first/after another
        line = []
        for which in order:
            gc.collect()
            seconds = timed(which)
            if r >= args.warmup:
                samples[which].append(seconds)
            line.append(f"{which} {seconds * 1e3:.0f}")
        tag = "warm-up" if r < args.warmup else f"round {r - args.warmup + 1}/{args.rounds}"
        print(f"  {tag:>12}: " + ", ".join(line) + " ms", flush=True)
    stats = {p: summarize(samples[p]) for p in paths}
    floor, echo = stats["floor"]["median_ms"], stats["echo"]["median_ms"]
    ratios = {"json_over_binary": stats["json"]["median_ms"] / stats["binary"]["median_ms"],
              "echo_over_floor": echo / floor, "socket_over_floor": stats["socket"]["median_ms"] / floor,
              "floor_default_malloc_over_floor": stats["floor-default-malloc"]["median_ms"] / floor}
    for p in paths:
        if p.startswith("binary") or p == "triton":
            ratios[f"{p}_over_floor"] = stats[p]["median_ms"] / floor
            ratios[f"{p}_over_echo"] = stats[p]["median_ms"] / echo
    return {"loss": loss_name, "shape": list(shape), "outputs": outputs, "paths": list(paths), "sizes": sizes,
            "samples_s": samples, "stats": stats, "ratios": ratios,
            "labels": {k: c.label for k, c in binary_clients.items()},
            "verified": "every HTTP path's outputs equal the floor's bytes"}


def binary_report(res: dict, env: dict | None = None) -> str:
    s, r = res["stats"], res["ratios"]
    head = (f"OIP binary vs /v1 JSON ({res['loss']} 2 x {res['shape'][0]}x{res['shape'][1]} float64, outputs "
            f"{', '.join(res['outputs'])}; medians of {s['floor']['n']} interleaved rounds")
    if env is not None:
        head += f"; load average {env['load_start']} at start, {env['load_end']} at end; {describe_git(env)}"
    lines = [head + "):", "", "| path | request | response | median | p90 | ratio |", "|---|---|---|---|---|---|"]
    rows = [("floor (in-process: np.frombuffer, compute, tobytes; the service's runtime settings)", "floor", "1.00x"),
            ("floor with glibc's default malloc (every large block a fresh mmap: the earlier floor)",
             "floor-default-malloc", f"{r['floor_default_malloc_over_floor']:.2f}x floor"),
            ("socket floor (`bench/raw_echo.py`: the same exchange, recv_into and one sendall, no ASGI server)",
             "socket", f"{r['socket_over_floor']:.2f}x floor"),
            ("HTTP echo floor (`bench/echo_app.py`: body in, as many bytes out, nothing computed)", "echo",
             f"{r['echo_over_floor']:.2f}x floor")]
    for p in res["paths"]:
        if p.startswith("binary") or p == "triton":
            name = (f"OIP binary (`/v2/models/mse/infer`, {res['labels'][p]})" if p != "triton"
                    else "OIP binary via tritonclient.http (NumPy in and out)")
            rows.append((name, p, f"**{r[p + '_over_floor']:.2f}x** floor ({verdict(r[p + '_over_floor'] <= 1.5)} "
                                  f"<= 1.5x); **{r[p + '_over_echo']:.2f}x** echo floor"))
    rows.append(("/v1 JSON (`/v1/losses/mse`)", "json",
                 f"**{r['json_over_binary']:.1f}x** binary ({verdict(r['json_over_binary'] >= 10)} >= 10x)"))
    for name, p, ratio in rows:
        req, resp = (f"{res['sizes'][p][0] / 1e6:.1f} MB", f"{res['sizes'][p][1] / 1e6:.1f} MB") \
            if not p.startswith("floor") else ("", "")
        lines.append(f"| {name} | {req} | {resp} | {fmt_ms(s[p]['median_ms'])} ms | {fmt_ms(s[p]['p90_ms'])} ms "
                     f"| {ratio} |")
    text = "\n".join(lines)
    print("\n" + text)
    return text


# --- /healthz under load (issue 12, item 4) -----------------------------------------------------------

HEALTHZ_TARGET_P99_MS = 50.0


def poll_healthz(port: int, seconds: float, interval: float) -> list[float]:
    """``GET /healthz`` every ``interval`` seconds for ``seconds`` on one keep-alive connection; the
    latencies in seconds. Runs in its own process (``--poll-healthz``), so that the load generator's
    threads and GIL cannot delay it."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        latencies.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise RuntimeError(f"/healthz answered {resp.status}")
        time.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    conn.close()
    return latencies


def poll_in_child(port: int, seconds: float, interval: float) -> list[float]:
    out = subprocess.run([sys.executable, __file__, "--poll-healthz", str(port), str(seconds), str(interval)],
                         capture_output=True, text=True, check=True, timeout=seconds + 120)
    return json.loads(out.stdout)


class Poster:
    """One keep-alive connection posting one large body, JSON (``header_length`` None) or OIP binary."""

    def __init__(self, port: int, path: str, body: bytes, header_length: int | None = None) -> None:
        self.path, self.body, self.header_length = path, body, header_length
        self.client = HttpClient(port) if header_length is None else BinaryClient(port)

    def post(self) -> tuple[int, float]:
        """The status and the seconds taken."""
        if self.header_length is None:
            status, _, seconds = self.client.post(self.path, self.body)
        else:
            status, _, _, seconds = self.client.post(self.path, self.body, self.header_length)
        return status, seconds

    def close(self) -> None:
        self.client.close()


class Load:
    """``n`` client threads, each posting ``body`` back to back on its own connection until stopped."""

    def __init__(self, port: int, path: str, body: bytes, n: int, header_length: int | None = None) -> None:
        self.port, self.path, self.body = port, path, body
        self.header_length = header_length  # an OIP binary body: its JSON header's length (None: JSON)
        self.statuses: list[int] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(n)]

    def _loop(self) -> None:
        poster = Poster(self.port, self.path, self.body, self.header_length)
        try:
            while not self._stop.is_set():
                status, seconds = poster.post()
                self.statuses.append(status)
                self.seconds.append(seconds)
        finally:
            poster.close()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=600)


def run_healthz(args) -> dict[str, Any]:
    loss_name = "mean_squared_error"
    outputs = ["loss", "per_sample", "gradient", "hessian"]
    header_length = None
    if args.binary_load:  # OIP binary requests, one service per --binary-executors configuration
        rng = np.random.default_rng(args.seed)
        body, header_length = make_binary_body(rng.standard_normal((1000, 1000)), rng.standard_normal((1000, 1000)),
                                               outputs)
        path, configs = "/v2/models/mse/infer", {c: BINARY_SERVICES[c][0] for c in args.binary_executors}
    else:
        body = make_body(loss_name, (1000, 1000), args.seed, outputs)
        path, configs = f"/v1/losses/{loss_name}", {e: {"LOSS_SERVICE_EXECUTOR": e} for e in args.executors}
    print(f"## /healthz under load: {args.load} x {loss_name} 2 x 1,000,000 float64 ({len(body) / 1e6:.1f} MB, "
          f"all outputs, {'OIP binary' if header_length else 'JSON'}), polled every {args.interval * 1e3:.0f} ms for "
          f"{args.seconds:.0f} s", flush=True)
    results = []
    for executor, server_env in configs.items():
        with Server("service.app:app", env=server_env) as server:
            warm = Poster(server.port, path, body, header_length)
            status = warm.post()[0]
            warm.close()
            if status != 200:
                raise RuntimeError(f"the large request answered {status}")
            idle = poll_in_child(server.port, args.seconds, args.interval)
            with Load(server.port, path, body, args.load, header_length) as load:
                time.sleep(2.0)  # every load thread has its request in flight
                loaded = poll_in_child(server.port, args.seconds, args.interval)
            bad = [s for s in load.statuses if s != 200]
            if bad:
                raise RuntimeError(f"{executor}: large requests answered {sorted(set(bad))}")
            rss = server.rss_mb()
        row = {"executor": executor, "idle": summarize(idle), "loaded": summarize(loaded),
               "idle_p99_ms": float(np.percentile(np.asarray(idle) * 1e3, 99)),
               "loaded_p99_ms": float(np.percentile(np.asarray(loaded) * 1e3, 99)),
               "large_requests": len(load.seconds), "large_median_ms": summarize(load.seconds).get("median_ms"),
               "server_peak_rss_mb": rss}
        print(f"  {executor}: idle p50 {row['idle']['median_ms']:.1f} p99 {row['idle_p99_ms']:.1f} ms; under load "
              f"p50 {row['loaded']['median_ms']:.1f} p99 {row['loaded_p99_ms']:.1f} max {row['loaded']['max_ms']:.0f} ms; "
              f"{row['large_requests']} large requests done", flush=True)
        results.append(row)
    return {"loss": loss_name, "request_bytes": len(body), "load": args.load, "rows": results,
            "transport": "OIP binary" if header_length else "JSON"}


def print_healthz_report(env: dict, args, res: dict) -> str:
    lines = [f"{env['cpu_count']} CPUs; uvicorn, 1 worker, service defaults except the configuration named; "
             f"load transport {res['transport']}; "
             f"/healthz polled every {args.interval * 1e3:.0f} ms for {args.seconds:.0f} s from a separate process; "
             f"load: {res['load']} clients posting {res['loss']} 2 x 1,000,000 float64 "
             f"({res['request_bytes'] / 1e6:.1f} MB, all outputs) back to back; load average {env['load_start']} "
             f"at start, {env['load_end']} at end; {describe_git(env)}.", "",
             "| executor | idle p50 | idle p99 | loaded p50 | loaded p99 | loaded max | large requests (median) "
             "| p99 <= 50 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['executor']} | {fmt_ms(r['idle']['median_ms'])} ms | {fmt_ms(r['idle_p99_ms'])} ms "
                     f"| {fmt_ms(r['loaded']['median_ms'])} ms | **{fmt_ms(r['loaded_p99_ms'])} ms** "
                     f"| {fmt_ms(r['loaded']['max_ms'])} ms | {r['large_requests']} ({fmt_ms(r['large_median_ms'])} ms) "
                     f"| {verdict(r['loaded_p99_ms'] <= HEALTHZ_TARGET_P99_MS)} |")
    text = "\n".join(lines)
    print("\n" + text)
    return text


# --- report -------------------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "meets" if ok else "misses"


def print_report(env: dict, args, large: list[dict], small: dict | None, client_name: str) -> str:
    lines = []
    v = env["versions"]
    lines.append(f"Python {v['python']}, FastAPI {v['fastapi']}, Starlette {v['starlette']}, Pydantic {v['pydantic']}, "
                 f"uvicorn {v['uvicorn']}, orjson {v['orjson']}, NumPy {v['numpy']}; {env['cpu_count']} CPUs; "
                 f"client: {client_name}; servers: uvicorn, 1 worker each, on 127.0.0.1; "
                 f"{args.rounds} rounds after {args.warmup} warm-up, round-robin with rotating order; "
                 f"load average {env['load_start']} at start, {env['load_end']} at end; {describe_git(env)}.")
    lines.append("")
    lines.append("| loss | request | response | floor (in-process) | service | idiomatic FastAPI | service / floor "
                 "| idiomatic / service |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for res in large:
        s = res["stats"]
        sf = s["service"]["median_ms"] / s["floor"]["median_ms"]
        isv = s["idiomatic"]["median_ms"] / s["service"]["median_ms"]
        res["ratios"] = {"service_over_floor": sf, "idiomatic_over_service": isv,
                         "meets_service_target": sf <= 1.5, "meets_idiomatic_target": isv >= 3.0}
        def cell(p: str, s: dict = s) -> str:
            return f"{fmt_ms(s[p]['median_ms'])} ms (p90 {fmt_ms(s[p]['p90_ms'])})"
        rb = res["response_bytes"]
        lines.append(
            f"| {res['loss']} {res['shape'][0]}x{res['shape'][1]} | {res['request_bytes'] / 1e6:.1f} MB "
            f"| {rb['service'] / 1e6:.1f} MB (idiomatic {rb['idiomatic'] / 1e6:.1f} MB) "
            f"| {cell('floor')} | {cell('service')} | {cell('idiomatic')} "
            f"| **{sf:.2f}x** ({verdict(sf <= 1.5)} <= 1.5x) | **{isv:.2f}x** ({verdict(isv >= 3.0)} >= 3x) |")
    lines.append("")
    lines.append("Floor breakdown (medians, ms): " + "; ".join(
        f"{res['loss']}: " + ", ".join(f"{k} {fmt_ms(ms)}" for k, ms in res["floor_phases_median_ms"].items())
        for res in large))
    if small:
        s = small["stats"]
        lines.append("")
        n = small["shape"][0] * small["shape"][1]
        lines.append(f"Small payload ({small['loss']}, 2 x {n:,} floats, shape {small['shape'][0]}x{small['shape'][1]}, "
                     f"{small['request_bytes']:,} B, {s['service']['n']} requests per path, alternating):")
        lines.append("")
        lines.append("| path | p50 | p95 | mean |")
        lines.append("|---|---|---|---|")
        for p in PATHS:
            name = {"floor": "floor (in-process)", "service": "service", "idiomatic": "idiomatic FastAPI"}[p]
            lines.append(f"| {name} | {fmt_ms(s[p]['median_ms'])} ms | {fmt_ms(s[p]['p95_ms'])} ms "
                         f"| {fmt_ms(s[p]['mean_ms'])} ms |")
        lines.append("")
        lines.append(f"idiomatic / service at p50: {s['idiomatic']['median_ms'] / s['service']['median_ms']:.2f}x")
    text = "\n".join(lines)
    print("\n" + text)
    return text


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up rounds, not counted (default 2, min 1)")
    ap.add_argument("--size", type=int, default=1000, help="arrays are SIZE x SIZE (default 1000)")
    ap.add_argument("--losses", default=DEFAULT_LOSSES, help=f"comma-separated (default {DEFAULT_LOSSES})")
    ap.add_argument("--client", choices=sorted(CLIENTS), default="http.client", help="HTTP client (default http.client)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--small-shape", default="10x100", help="small-payload array shape (default 10x100)")
    ap.add_argument("--small-requests", type=int, default=300, help="small-payload requests per path (default 300)")
    ap.add_argument("--small-warmup", type=int, default=20)
    ap.add_argument("--no-small", action="store_true", help="skip the small-payload run")
    ap.add_argument("--no-binary", action="store_true", help="skip the OIP binary run")
    ap.add_argument("--only-binary", action="store_true", help="only the OIP binary run (no idiomatic app)")
    ap.add_argument("--binary-executors", default="process,workers,thread",
                    help="binary run: a service per configuration, a row each: process (the defaults: binary in the "
                         "server process), workers (LOSS_SERVICE_BINARY_IN_PROCESS=false), thread "
                         "(LOSS_SERVICE_EXECUTOR=thread); the first is the one JSON is compared with "
                         "(default process,workers,thread)")
    ap.add_argument("--server", choices=sorted(set(SERVERS) - {"raw"}), default="uvicorn",
                    help="binary run: the ASGI server of the echo floor and the binary rows' services (default "
                         "uvicorn; granian and hypercorn are separate installs; hypercorn runs only the thread "
                         "executor: its worker is a daemonic process, which cannot start the worker processes)")
    ap.add_argument("--triton", action=argparse.BooleanOptionalAction, default=True,
                    help="binary run: a row timing tritonclient.http's own client (default on)")
    ap.add_argument("--healthz", action="store_true", help="measure /healthz under large requests instead (issue 12)")
    ap.add_argument("--executors", default="thread,process", help="--healthz: LOSS_SERVICE_EXECUTOR values to compare")
    ap.add_argument("--binary-load", action="store_true",
                    help="--healthz: the load is OIP binary requests, one service per --binary-executors configuration")
    ap.add_argument("--load", type=int, default=4, help="--healthz: large requests running at once (default 4)")
    ap.add_argument("--seconds", type=float, default=20.0, help="--healthz: polling time per phase (default 20)")
    ap.add_argument("--interval", type=float, default=0.02, help="--healthz: polling interval in s (default 0.02)")
    args = ap.parse_args(argv)
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    args.binary_executors = [e.strip() for e in args.binary_executors.split(",") if e.strip()]
    if not args.binary_executors or not set(args.binary_executors) <= set(BINARY_SERVICES):
        ap.error(f"--binary-executors: a comma-separated list of {', '.join(BINARY_SERVICES)}")
    args.losses = [name.strip() for name in args.losses.split(",") if name.strip()]
    if args.rounds < 1 or args.warmup < 1 or args.size < 1 or args.small_requests < 1 or args.small_warmup < 0:
        ap.error("--rounds, --warmup, --size and --small-requests must be >= 1")
    args.losses = [get_loss(name).name for name in args.losses]  # canonical names; unknown ones fail here
    return args


def healthz_main(args) -> int:
    env = environment(*PACKAGES)
    env["load_start"] = loadavg()
    with sigterm_as_exit():
        res = run_healthz(args)
    env["load_end"] = loadavg()
    table = print_healthz_report(env, args, res)
    path = write_results("healthz", {"environment": env, "args": vars(args), "result": res, "table_markdown": table})
    print(f"\nraw results: {relpath(path)}")
    return 0


def binary_run(args, server_env: dict[str, str], json_client: Any, service: Server) -> dict[str, Any]:
    """The binary run's servers and clients: the echo floor, and one service per ``--binary-executors`` entry
    (the first, keyed ``binary``, is the one /v1 JSON is compared with), all under ``--server``."""
    with contextlib.ExitStack() as stack:
        def serve(app: str, env: dict[str, str]) -> Server:
            if args.server == "uvicorn" and app == "service.app:app" and env == server_env:
                return service  # the default service already running
            return stack.enter_context(Server(app, env=env, server=args.server))
        echo = serve("bench.echo_app:app", {})
        binary_clients: dict[str, BinaryClient] = {}
        for i, name in enumerate(args.binary_executors):
            settings, label = BINARY_SERVICES[name]
            server = serve("service.app:app", {**server_env, **settings})
            key = "binary" if i == 0 else f"binary-{name}"
            binary_clients[key] = stack.enter_context(contextlib.closing(
                BinaryClient(server.port, label=f"{label}, {args.server}")))
        echo_client = stack.enter_context(contextlib.closing(BinaryClient(echo.port)))
        raw = stack.enter_context(Server("bench.raw_echo", server="raw"))
        raw_client = stack.enter_context(contextlib.closing(BinaryClient(raw.port)))
        triton = None
        if args.triton:
            triton = stack.enter_context(contextlib.closing(TritonClient(service.port)))
        return run_binary(args, json_client, binary_clients, echo_client, raw_client, triton)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--poll-healthz"]:  # the client process of --healthz
        print(json.dumps(poll_healthz(int(argv[1]), float(argv[2]), float(argv[3]))))
        return 0
    args = parse_args(argv)
    if args.healthz:
        return healthz_main(args)
    env = environment(*PACKAGES)
    env["load_start"] = loadavg()
    elements = 2 * args.size * args.size
    approx_body = elements * 20 + 1024  # ~19 B per float64 in JSON
    server_env = {}
    if approx_body > DEFAULT_MAX_BODY or elements > DEFAULT_MAX_ELEMENTS:  # the benchmark measures speed, not limits
        server_env = {"LOSS_SERVICE_MAX_BODY_BYTES": str(max(DEFAULT_MAX_BODY, 2 * approx_body)),
                      "LOSS_SERVICE_MAX_ELEMENTS": str(max(DEFAULT_MAX_ELEMENTS, elements))}
        print(f"note: --size {args.size} is over the service's default limits; the service runs with {server_env}")
    client_cls = CLIENTS[args.client]
    large: list[dict] = []
    small = binary = None
    clients: dict[str, Any] = {}
    with sigterm_as_exit(), Server("service.app:app", env=server_env) as service, \
            Server("bench.idiomatic_app:app") as idiomatic:
        try:
            clients = {"service": client_cls(service.port), "idiomatic": client_cls(idiomatic.port)}
            print(f"servers up (service :{service.port}, idiomatic :{idiomatic.port}); client {client_cls.name}; "
                  f"load average {env['load_start']}", flush=True)
            for name in ([] if args.only_binary else args.losses):
                large.append(run_large(name, args, clients))
            if not args.no_small and not args.only_binary:
                small = run_small(args, clients)
            if not args.no_binary:
                binary = binary_run(args, server_env, clients["service"], service)
            env["server_peak_rss_mb"] = {"service": service.rss_mb(), "idiomatic": idiomatic.rss_mb()}
            env["client_retries"] = {k: c.retries for k, c in clients.items()}
        finally:
            for c in clients.values():
                c.close()
    env["load_end"] = loadavg()
    table = print_report(env, args, large, small, client_cls.name) if large else ""
    binary_table = binary_report(binary, env) if binary else ""
    path = write_results("http", {"environment": env, "args": vars(args), "client": client_cls.name,
                                  "large": large, "small": small, "binary": binary, "table_markdown": table,
                                  "binary_table_markdown": binary_table})
    print(f"\nraw results: {relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
