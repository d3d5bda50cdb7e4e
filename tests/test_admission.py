"""The admission logic of service.api.compute, in-process: the work budget's accounting and order,
the bounded queue, and dropping work whose client has gone (the live cases are in test_hostile.py;
the process executor's own cases in test_executor.py). The HTTP cases run with both executors."""

from __future__ import annotations

import asyncio
import logging
import threading
from types import SimpleNamespace

import pytest

from service.api.compute import Admission, ClientGone, QueueFull, WorkBudget
from service.transport.call import Plan

from .conftest import EXECUTORS, assert_problem, executor_client

pytestmark = pytest.mark.anyio


async def _until(condition) -> None:
    for _ in range(1000):  # 10 s at most
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_budget_admits_what_fits_and_queues_the_rest_in_order():
    budget = WorkBudget(10)
    await budget.acquire(6)
    started = []

    async def wait(name: str, work: int) -> None:
        await budget.acquire(work)
        started.append(name)

    big = asyncio.ensure_future(wait("big", 8))
    await _settle()
    small = asyncio.ensure_future(wait("small", 1))  # would fit now, but the big one came first
    await _settle()
    assert started == [] and budget.waiting == 2 and budget.in_use == 6
    budget.release(6)
    await _settle()
    assert started == ["big", "small"] and budget.in_use == 9
    budget.release(8)
    budget.release(1)
    assert budget.in_use == 0 and big.done() and small.done()


async def test_budget_refuses_work_that_can_never_fit():
    with pytest.raises(ValueError):
        await WorkBudget(10).acquire(11)


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_start():
    budget = WorkBudget(10)
    await budget.acquire(5)
    blocked = asyncio.ensure_future(budget.acquire(9))
    await _settle()
    behind = asyncio.ensure_future(budget.acquire(5))
    await _settle()
    assert not behind.done()
    blocked.cancel()
    await _settle()
    assert blocked.cancelled() and behind.done() and budget.in_use == 10 and budget.waiting == 0


async def test_a_share_granted_as_its_waiter_is_cancelled_is_given_back():
    budget = WorkBudget(10)
    await budget.acquire(10)
    waiter = asyncio.ensure_future(budget.acquire(4))
    await _settle()
    budget.release(10)  # grants the waiter's future ...
    waiter.cancel()  # ... just before the waiter runs again
    await _settle()
    assert waiter.cancelled() and budget.in_use == 0


class FakeRequest:
    """What Admission.run reads of a Starlette request; ``hang_up`` makes ``receive`` say disconnect."""

    def __init__(self) -> None:
        self.method, self.url = "POST", SimpleNamespace(path="/v1/losses/circle")
        self._gone = asyncio.Event()

    def hang_up(self) -> None:
        self._gone.set()

    async def receive(self) -> dict:
        await self._gone.wait()
        return {"type": "http.disconnect"}


def _plan(work: int, ran: list, gate: threading.Event | None = None):
    def run() -> bytes:
        ran.append(work)
        if gate is not None:
            gate.wait(10)
        return b"{}"
    return lambda: Plan(work, run)


async def test_queued_work_whose_client_hangs_up_is_dropped_not_computed(caplog):
    admission = Admission(threads=2, work_budget=10, max_queue=4)
    ran: list[int] = []
    release = threading.Event()
    first = asyncio.ensure_future(admission.run(FakeRequest(), _plan(10, ran, release)))
    await _until(lambda: ran)
    leaving = FakeRequest()
    queued = asyncio.ensure_future(admission.run(leaving, _plan(3, ran)))
    await _until(lambda: admission.budget.waiting)
    with caplog.at_level(logging.WARNING, logger="service"):
        leaving.hang_up()
        with pytest.raises(ClientGone):
            await queued
    release.set()
    assert await first == b"{}"
    assert ran == [10] and admission.budget.in_use == 0 and admission.budget.waiting == 0
    assert "dropped POST /v1/losses/circle" in caplog.text and "disconnected while it was queued" in caplog.text


async def test_beyond_the_queue_the_answer_is_503_with_retry_after():
    admission = Admission(threads=1, work_budget=10, max_queue=1)
    ran: list[int] = []
    release = threading.Event()
    running = asyncio.ensure_future(admission.run(FakeRequest(), _plan(10, ran, release)))
    await _until(lambda: ran)
    # one thread computes; parsing has its own, so the next request is parsed and queued meanwhile
    waiting = asyncio.ensure_future(admission.run(FakeRequest(), _plan(1, ran)))
    await _until(lambda: admission.budget.waiting)
    assert admission.full
    with pytest.raises(QueueFull) as shed:
        await admission.run(FakeRequest(), _plan(1, ran))
    assert shed.value.status == 503 and shed.value.headers["Retry-After"].isdigit()
    release.set()
    assert await running == b"{}" and await waiting == b"{}"
    assert ran == [10, 1] and not admission.full and admission.budget.in_use == 0


async def test_small_requests_that_fit_never_queue():
    admission = Admission(threads=2, work_budget=100, max_queue=1)
    ran: list[int] = []
    release = threading.Event()
    running = asyncio.ensure_future(admission.run(FakeRequest(), _plan(80, ran, release)))
    await _until(lambda: ran)
    # sixteen at once, more than the queue and the threads: each fits beside the large one, none waits
    small = await asyncio.gather(*(admission.run(FakeRequest(), _plan(1, ran)) for _ in range(16)))
    assert small == [b"{}"] * 16 and admission.budget.waiting == 0
    release.set()
    assert await running == b"{}" and admission.budget.in_use == 0


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_readyz_is_503_while_the_queue_is_full_and_healthz_stays_200(executor):
    async with executor_client(executor, work_budget=10, max_queue=2) as client:
        budget = client._transport.app.state.admission.budget
        assert (await client.get("/readyz")).status_code == 200
        await budget.acquire(10)
        waiters = [asyncio.ensure_future(budget.acquire(5)) for _ in range(2)]
        await _settle()
        busy = await client.get("/readyz")
        assert busy.status_code == 503 and busy.json()["status"] == "busy"
        assert (await client.get("/healthz")).status_code == 200
        shed = assert_problem(await client.post("/v1/losses/mse", json={"y_true": [1], "y_pred": [2]}), 503)
        assert "LOSS_SERVICE_MAX_QUEUE" in shed["detail"]
        budget.release(10)
        await asyncio.gather(*waiters)
        budget.release(5)
        budget.release(5)
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_a_batch_counts_its_items_work_together(executor):
    item = {"loss": "circle", "y_true": list(range(20)), "y_pred": [[1.0, 0.0]] * 20}  # 400 each
    async with executor_client(executor, max_request_work=1000) as client:
        two = await client.post("/v1/batch", json={"requests": [item, item]})
        assert two.status_code == 200 and all("error" not in r for r in two.json()["results"])
        three = await client.post("/v1/batch", json={"requests": [item, item, item]})
        problem = assert_problem(three, 413, "requests")
        assert "1,200" in problem["detail"] and "split the batch" in problem["detail"]


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_work_over_the_budget_is_413_even_under_a_larger_request_limit(executor):
    body = {"y_true": list(range(40)), "y_pred": [[1.0, 0.0]] * 40}  # 1,600
    async with executor_client(executor, max_request_work=10_000, work_budget=1000) as client:
        problem = assert_problem(await client.post("/v1/losses/circle", json=body), 413, "y_pred")
        assert "1,600" in problem["detail"] and "1,000" in problem["detail"]


@pytest.mark.parametrize("executor", EXECUTORS)
async def test_shed_requests_are_counted_as_shed_not_as_computation_errors(executor):
    async with executor_client(executor, work_budget=10, max_queue=1) as client:
        budget = client._transport.app.state.admission.budget
        await budget.acquire(10)
        waiter = asyncio.ensure_future(budget.acquire(5))
        await _settle()
        assert (await client.post("/v1/losses/mse", json={"y_true": [1], "y_pred": [2]})).status_code == 503
        budget.release(10)
        await waiter
        budget.release(5)
        text = (await client.get("/metrics")).text
    assert 'loss_service_computations_total{loss="mean_squared_error",outcome="shed"} 1.0' in text
    assert 'outcome="error"' not in text
