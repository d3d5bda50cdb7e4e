"""The process executor (service.executor): the same answers as the thread executor, admission kept
across the process boundary, typed errors intact, a killed worker costing one 503, /healthz free
while a worker holds its GIL, and no process left behind."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import signal
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from service.api.compute import Admission, ClientGone, QueueFull
from service.engine import compute
from service.engine.errors import ErrorItem, LimitExceeded, LossServiceError
from service.executor import ProcessExecutor, WorkerCrashed, WorkerSetup, _portable, _rebuild
from service.transport.call import Plan

from .conftest import EXECUTORS, executor_client, live_server
from .test_admission import FakeRequest, _until

pytestmark = pytest.mark.anyio

SETUP = WorkerSetup(reuse_memory=True, vector_math="numpy", blas_threads=1, compute_threads=2)
GENEROUS = 60.0  # seconds: a bound for "answered", never a performance claim


# --- pipeline functions for the workers (module level: they are pickled by reference) --------------------

def _wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def gated(work: int, name: str, folder: str) -> Plan:
    """A plan that records its start (``<name>.ran``) and finishes once ``open`` exists in ``folder``."""
    def run() -> bytes:
        (Path(folder) / f"{name}.ran").write_text(str(time.time()))
        _wait_for(Path(folder) / "open")
        return name.encode()
    return Plan(work, run)


def dies_when_run(work: int, folder: str) -> Plan:
    def run() -> bytes:
        _wait_for(Path(folder) / "open")
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
        return b"unreachable"
    return Plan(work, run)


def refuses(header: str) -> Plan:
    err = LimitExceeded("y_pred: too many numbers; split the request.", ("y_pred",))
    err.headers = {"Retry-After": header}
    raise err


def holds_the_gil(folder: str) -> Plan:
    """Runs one regular expression that backtracks for seconds without releasing the GIL (as orjson and
    pydantic-core hold it while parsing a large body), once its length is calibrated to take >= 4 s."""
    def run() -> bytes:
        n = 16
        while True:
            start = time.perf_counter()
            re.match(r"(a+)+$", "a" * n + "b")
            if time.perf_counter() - start >= 0.25:
                break
            n += 1
        (Path(folder) / "holding").touch()
        re.match(r"(a+)+$", "a" * (n + 4) + "b")  # each character doubles the time: >= 4 s in one C call
        (Path(folder) / "done").touch()
        return b"{}"
    return Plan(1, run)


def digests(first: bytes, label: str, second: bytes) -> Plan:
    """A plan answering what arrived: each argument's type, length and SHA-256, and the label between them."""
    import hashlib
    seen = [f"{type(a).__name__}:{len(a)}:{hashlib.sha256(a).hexdigest()}" for a in (first, second)]
    return Plan(1, lambda: f"{seen[0]}|{label}|{seen[1]}".encode())


@pytest.fixture
async def process_executor():
    executor = ProcessExecutor(2, SETUP)
    await executor.start()
    yield executor
    await executor.aclose()


# --- the same answers -------------------------------------------------------------------------------------

CASES = [
    ("post", "/v1/losses/huber", {"y_true": [[0.0, 1.0], [1.0, 0.5]], "y_pred": [[0.3, 0.9], [2.0, -1.0]],
                                  "params": {"delta": 0.5}, "outputs": ["loss", "per_sample", "gradient", "hessian"]}),
    ("post", "/v1/losses/categorical_crossentropy", {"y_true": [[0, 1, 0]], "y_pred": [[0.2, 0.5, 0.3]],
                                                     "dtype": "float32", "reduction": "sum"}),
    ("post", "/v1/batch", {"requests": [{"loss": "mse", "y_true": [1.0, 2.0], "y_pred": [1.5, 2.5]},
                                        {"loss": "no_such_loss", "y_true": [1.0], "y_pred": [1.0]},
                                        {"loss": "mae", "y_true": [1.0, 2.0], "y_pred": [1.0]}]}),
    ("post", "/v1/exercises", {"loss": "huber", "params": {"delta": 0.5}, "shape": [3, 2], "seed": 7}),
    # errors: 422 shape, 422 field, 404 loss, 400 JSON, 413 work
    ("post", "/v1/losses/mse", {"y_true": [1.0, 2.0], "y_pred": [1.0]}),
    ("post", "/v1/losses/mse", {"y_true": [1.0], "y_pred": [1.0], "bogus": 1}),
    ("post", "/v1/losses/no_such_loss", {"y_true": [1.0], "y_pred": [1.0]}),
    ("raw", "/v1/losses/mse", b'{"y_true": [1.0,'),
    ("post", "/v1/losses/circle", {"y_true": list(range(40)), "y_pred": [[1.0, 0.0]] * 40}),
]


async def _answers(executor: str) -> list[tuple[int, str, bytes]]:
    out = []
    async with executor_client(executor, max_request_work=1000, work_budget=1000) as client:
        for kind, path, body in CASES:
            if kind == "raw":
                r = await client.post(path, content=body, headers={"content-type": "application/json"})
            else:
                r = await client.post(path, json=body)
            out.append((r.status_code, r.headers["content-type"], r.content))
        grade = await client.post("/v1/grade", json={"loss": "huber", "params": {"delta": 0.5},
                                                     "exercise": {"seed": 3, "shape": [3, 2]},
                                                     "submission": {"loss": 0.25, "gradient": [[0.0, 0.1]] * 3}})
        out.append((grade.status_code, grade.headers["content-type"], grade.content))
    return out


async def test_both_executors_give_the_same_bytes_for_answers_and_errors():
    thread, process = await _answers("thread"), await _answers("process")
    statuses = [status for status, _, _ in thread]
    assert statuses == [200, 200, 200, 200, 422, 422, 404, 400, 413, 200], statuses
    for i, (a, b) in enumerate(zip(thread, process, strict=True)):
        assert a == b, (i, a[:2], b[:2], a[2][:300], b[2][:300])


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_large_response_arrives_whole(executor):
    y = np.linspace(-3, 3, 200_000)
    async with executor_client(executor) as client:
        r = await client.post("/v1/losses/mse", json={"y_true": y.tolist(), "y_pred": (y * 0.5).tolist(),
                                                      "outputs": ["gradient"]})
    assert r.status_code == 200
    expected = compute("mean_squared_error", y, y * 0.5, outputs=("gradient",)).gradient
    np.testing.assert_array_equal(np.asarray(r.json()["gradient"]), expected)  # float64 JSON round-trips exactly


async def test_large_bodies_arrive_in_the_worker_whole_as_bytes_in_their_places(process_executor):
    # bodies far larger than the pipe's buffer, several to a message and two messages at once: each must arrive
    # whole, as bytes, in its own argument, with the non-bytes argument between them untouched
    rng = np.random.default_rng(5)
    bodies = [rng.bytes(n) for n in (9_000_001, 3, 0, 6_500_000)]

    def expected(first: bytes, label: str, second: bytes) -> bytes:
        import hashlib
        seen = [f"bytes:{len(a)}:{hashlib.sha256(a).hexdigest()}" for a in (first, second)]
        return f"{seen[0]}|{label}|{seen[1]}".encode()

    async def one(first: bytes, label: str, second: bytes) -> bytes:
        prepared = await process_executor.prepare(digests, first, label, second)
        return bytes(await process_executor.run(prepared))

    got = await asyncio.gather(one(bodies[0], "a", bodies[1]), one(bodies[2], "b", bodies[3]))
    assert got == [expected(bodies[0], "a", bodies[1]), expected(bodies[2], "b", bodies[3])]


# --- admission across the process boundary ------------------------------------------------------------------

async def test_a_plan_runs_in_its_worker_only_once_the_budget_admits_it(process_executor, tmp_path):
    admission = Admission(threads=2, work_budget=10, max_queue=4, executor=process_executor)
    first = asyncio.ensure_future(admission.run(FakeRequest(), gated, 8, "first", str(tmp_path)))
    await _until(lambda: (tmp_path / "first.ran").exists())
    second = asyncio.ensure_future(admission.run(FakeRequest(), gated, 5, "second", str(tmp_path)))
    await _until(lambda: admission.budget.waiting == 1)  # parsed in a worker: its work is known
    await asyncio.sleep(0.5)
    assert not (tmp_path / "second.ran").exists(), "the plan ran before the budget had room"
    assert admission.budget.in_use == 8
    (tmp_path / "open").touch()
    assert bytes(await first) == b"first" and bytes(await second) == b"second"
    assert admission.budget.in_use == 0


async def test_queued_work_whose_client_hangs_up_is_dropped_in_the_worker(process_executor, tmp_path):
    admission = Admission(threads=2, work_budget=10, max_queue=1, executor=process_executor)
    running = asyncio.ensure_future(admission.run(FakeRequest(), gated, 10, "running", str(tmp_path)))
    await _until(lambda: (tmp_path / "running.ran").exists())
    leaving = FakeRequest()
    queued = asyncio.ensure_future(admission.run(leaving, gated, 3, "queued", str(tmp_path)))
    await _until(lambda: admission.budget.waiting == 1)
    with pytest.raises(QueueFull) as shed:  # the queue (one) is full: shed at once
        await admission.run(FakeRequest(), gated, 1, "shed", str(tmp_path))
    assert shed.value.headers["Retry-After"] == "1"
    leaving.hang_up()
    with pytest.raises(ClientGone):
        await queued
    assert not any(w.held for w in process_executor._workers), "the dropped plan is still held by a worker"
    (tmp_path / "open").touch()
    assert bytes(await running) == b"running"
    assert not (tmp_path / "queued.ran").exists() and not (tmp_path / "shed.ran").exists()


async def test_typed_errors_cross_the_process_boundary_intact(process_executor):
    with pytest.raises(LimitExceeded) as raised:
        await process_executor.prepare(refuses, "7")
    err = raised.value
    assert (err.status, err.slug, err.detail) == (413, "limit-exceeded", "y_pred: too many numbers; split the request.")
    assert err.errors == [ErrorItem(("y_pred",), "y_pred: too many numbers; split the request.")]
    assert err.headers == {"Retry-After": "7"}


def test_an_error_rebuilt_from_its_parts_equals_the_original():
    err = WorkerCrashed(-9)
    again = _rebuild(pickle.loads(pickle.dumps(_portable(err))))
    assert type(again) is WorkerCrashed and isinstance(again, LossServiceError)
    assert (again.status, again.slug, again.detail, again.headers) == (503, "worker-crashed", err.detail,
                                                                       {"Retry-After": "1"})
    bug = _rebuild(_portable(ZeroDivisionError("division by zero")))
    assert type(bug) is ZeroDivisionError and "in the worker process" in bug.__notes__[0]


# --- a worker that dies -------------------------------------------------------------------------------------

async def test_a_worker_that_dies_fails_its_request_with_a_503_and_is_replaced(tmp_path):
    executor = ProcessExecutor(1, SETUP)  # one worker: the queued request is held by the one that dies
    await executor.start()
    try:
        admission = Admission(threads=1, work_budget=10, max_queue=4, executor=executor)
        first_pid = executor.pids()
        dying = asyncio.ensure_future(admission.run(FakeRequest(), dies_when_run, 10, str(tmp_path)))
        await _until(lambda: admission.budget.in_use == 10)
        innocent = asyncio.ensure_future(admission.run(FakeRequest(), gated, 4, "innocent", str(tmp_path)))
        await _until(lambda: admission.budget.waiting == 1)  # parsed, held by the worker that will die
        (tmp_path / "open").touch()
        with pytest.raises(WorkerCrashed) as crashed:
            await dying
        assert crashed.value.status == 503 and crashed.value.headers["Retry-After"] == "1"
        assert bytes(await innocent) == b"innocent"  # parsed again and computed in the new worker
        await _until(lambda: len(executor.pids()) == 1)
        assert executor.pids() != first_pid and admission.budget.in_use == 0
    finally:
        await executor.aclose()


async def test_a_killed_worker_gives_one_503_problem_and_the_next_request_succeeds():
    body = {"y_true": [1.0, 2.0], "y_pred": [1.5, 2.5]}
    async with executor_client("process") as client:
        executor = client._transport.app.state.admission.executor
        pids = executor.pids()
        for pid in pids:  # as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            await _until(lambda pid=pid: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
        answers = [await client.post("/v1/losses/mse", json=body) for _ in range(3)]
        statuses = [r.status_code for r in answers]
        assert 500 not in statuses and statuses.count(200) >= 2, statuses
        for r in answers:
            if r.status_code == 503:
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["type"] == "/problems/worker-crashed" and r.headers["retry-after"] == "1"
        await _until(lambda: len(executor.pids()) == 2)
        assert not set(executor.pids()) & set(pids)


# --- the event loop stays free ----------------------------------------------------------------------------

async def test_healthz_answers_while_a_worker_holds_its_gil_for_seconds(tmp_path):
    async with executor_client("process") as client:
        admission = client._transport.app.state.admission
        busy = asyncio.ensure_future(admission.run(FakeRequest(), holds_the_gil, str(tmp_path)))
        await _until(lambda: (tmp_path / "holding").exists())
        health = await asyncio.wait_for(client.get("/healthz"), 2.0)  # generous: it takes milliseconds
        assert health.status_code == 200
        assert not (tmp_path / "done").exists(), "the computation ended before /healthz was asked"
        assert bytes(await asyncio.wait_for(busy, GENEROUS)) == b"{}"


# --- start and stop -----------------------------------------------------------------------------------------

def test_a_live_server_stops_its_worker_processes_with_it():
    with live_server({"LOSS_SERVICE_EXECUTOR": "process", "LOSS_SERVICE_MAX_CONCURRENCY": "2"}) as live:
        r = httpx.post(f"{live.url}/v1/losses/mse", json={"y_true": [1.0], "y_pred": [2.0]}, timeout=GENEROUS)
        assert r.status_code == 200 and r.json()["loss"] == 1.0
        server = psutil.Process(live.pid)
        children = server.children(recursive=True)
        assert len(children) >= 2, [c.cmdline() for c in children]  # the workers (and the fork server)
    _, alive = psutil.wait_procs(children, timeout=GENEROUS)
    assert not alive, [p.pid for p in alive]


async def test_a_second_event_loop_is_refused_not_left_waiting():
    """Answers are settled on the loop that started the workers: a request from another loop would wait
    forever (tests/helpers.py once reused one app across asyncio.run calls and hung), so it is an error."""
    import asyncio
    import threading

    executor = ProcessExecutor(1, SETUP)
    await executor.start()
    try:
        errors = []

        def other_loop() -> None:
            try:
                asyncio.run(asyncio.wait_for(executor.prepare(refuses, "x"), 10))
            except BaseException as exc:  # noqa: BLE001 - the assertion below reads it
                errors.append(exc)

        thread = threading.Thread(target=other_loop)
        thread.start()
        thread.join(30)
        assert errors and isinstance(errors[0], RuntimeError), errors
        assert "event loop that started it" in str(errors[0])
    finally:
        await executor.aclose()


# --- LOSS_SERVICE_BINARY_IN_PROCESS -------------------------------------------------------------------------

def _binary_infer(rng: np.random.Generator) -> tuple[bytes, dict[str, str]]:
    """An OIP binary request (Triton's framing): mse on 2 x 300 x 200 float64, every output binary."""
    y_true, y_pred = rng.normal(size=(300, 200)), rng.normal(size=(300, 200))
    header = json.dumps({
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP64", "parameters": {"binary_data_size": a.nbytes}}
                   for n, a in (("y_true", y_true), ("y_pred", y_pred))],
        "outputs": [{"name": n, "parameters": {"binary_data": True}}
                    for n in ("loss", "per_sample", "gradient", "hessian")]}).encode()
    return header + y_true.tobytes() + y_pred.tobytes(), {"content-type": "application/octet-stream",
                                                          "inference-header-content-length": str(len(header))}


async def test_binary_in_process_answers_what_the_workers_answer_and_keeps_json_in_them():
    body, headers = _binary_infer(np.random.default_rng(11))
    tensors = {"inputs": [{"name": n, "shape": [2], "datatype": "FP64", "data": [0.5, 1.5]}
                          for n in ("y_true", "y_pred")]}
    answers = {}
    for in_process in (False, True):
        async with executor_client("process", binary_in_process=in_process) as client:
            admission = client._transport.app.state.admission
            assert (admission.local is admission.executor) is not in_process
            where: list[str] = []

            def record(executor, name: str) -> None:
                original = executor.prepare

                async def recording(fn, *args):
                    where.append(name)
                    return await original(fn, *args)
                executor.prepare = recording
            record(admission.executor, "workers")
            if in_process:
                record(admission.local, "local")
            binary = await client.post("/v2/models/mse/infer", content=body, headers=headers)
            plain = await client.post("/v2/models/mse/infer", json=tensors)
            assert binary.status_code == plain.status_code == 200, (binary.content[:300], plain.content[:300])
            assert where == (["local", "workers"] if in_process else ["workers", "workers"]), where
            answers[in_process] = (binary.headers["inference-header-content-length"], binary.content, plain.content)
    assert answers[True] == answers[False]  # byte for byte: header, every output, and the JSON path's answer


def test_binary_in_process_adds_its_bodies_to_the_memory_bound_only_with_worker_processes():
    from service.config import Settings
    from service.server import memory_bound

    for executor in ("process", "thread"):
        plain = memory_bound(Settings(executor=executor, binary_in_process=False))
        opted = memory_bound(Settings(executor=executor, binary_in_process=True))
        extra = opted["total"] - plain["total"]
        assert extra == (Settings().max_concurrency * Settings().max_body_bytes if executor == "process" else 0)
