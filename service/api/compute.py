"""Admission of computations: a bounded queue, a process-wide work budget, and work off the event loop.

Every route that computes hands its pipeline function to ``Admission.run``. The function parses and
validates the body in the executor (``service.executor``: worker threads, or worker processes with
LOSS_SERVICE_EXECUTOR=process) and returns a ``Plan`` with the request's declared work
(``Loss.work``); the plan's heavy part runs only once the work of everything running at once fits in
the budget, so the memory of computations stays under ``work_budget x BYTES_PER_WORK[dtype]``
whatever the load. Parsed requests waiting for room in the budget are bounded by ``max_queue``:
beyond it the answer is a 503 with ``Retry-After`` (load shedding), at once when the queue is
already full, and ``/readyz`` says not ready. A request whose client hangs up while it waits is
dropped, not computed. Parsing and computing have their own threads, so that a long computation
never keeps a small request from being parsed (and found to fit).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from ..engine.errors import LimitExceeded, LossServiceError
from ..executor import Prepared, ThreadExecutor
from ..transport.call import Answer

log = logging.getLogger("service")

RETRY_AFTER_SECONDS = 1  # a queued computation takes from milliseconds to a few seconds


class QueueFull(LossServiceError):
    def __init__(self, max_queue: int) -> None:
        super().__init__(
            detail=f"The service is at capacity: {max_queue} requests are already waiting for the work budget "
                   f"(LOSS_SERVICE_MAX_QUEUE); retry after {RETRY_AFTER_SECONDS} s or send to another replica.",
            status=503, slug="overloaded", title="Service overloaded")
        self.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}


class ClientGone(LossServiceError):
    """The client disconnected while its request waited: nobody reads the answer (499, as nginx logs it)."""

    def __init__(self) -> None:
        super().__init__(detail="The client closed the connection before the computation started; it was dropped.",
                         status=499, slug="client-closed-request", title="Client closed request")


class WorkBudget:
    """The declared work of the computations holding a share never exceeds ``capacity``. Waiters are
    served first come, first served, so a large request is not starved by a stream of small ones."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def fits_now(self, work: int) -> bool:
        return not self._waiters and self.in_use + work <= self.capacity

    async def acquire(self, work: int) -> None:
        """Waits until ``work`` fits beside what runs (and everyone queued before it has started)."""
        if work > self.capacity:
            raise ValueError(f"work {work} can never fit in a budget of {self.capacity}")
        if self.fits_now(work):
            self.in_use += work
            return
        entry = (work, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        except BaseException:
            if entry[1].done() and not entry[1].cancelled():
                self.release(work)  # granted just as the waiter was cancelled: give the share back
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._grant()  # a large waiter leaving may let the ones behind it start
            raise

    def release(self, work: int) -> None:
        self.in_use -= work
        self._grant()

    def _grant(self) -> None:
        while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
            work, future = self._waiters.popleft()
            if future.done():  # its waiter was cancelled and has not run its cleanup yet
                continue
            self.in_use += work
            future.set_result(None)


async def _wait_for_disconnect(receive: Callable[[], Any], gone: asyncio.Event) -> None:
    # the body has been read: the next ASGI message is the disconnect (or a spurious empty body)
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


class Admission:
    """The work budget with a bounded queue in front, and an executor parsing and computing off the
    event loop (``threads`` worker threads for parsing plus as many for computing unless ``executor``
    says otherwise)."""

    def __init__(self, *, threads: int, work_budget: int, max_queue: int, executor: Any = None,
                 in_process: bool = False) -> None:
        self.budget = WorkBudget(work_budget)
        self.max_queue = max_queue
        self.executor = executor or ThreadExecutor(threads)
        # LOSS_SERVICE_BINARY_IN_PROCESS: threads of this process for the requests run with in_process=True,
        # beside the process executor and under the same budget and queue
        self.local = ThreadExecutor(threads) if in_process and self.executor.kind != "thread" else self.executor

    @property
    def full(self) -> bool:
        """No room left to wait: a request that does not fit at once is shed."""
        return self.budget.waiting >= self.max_queue

    async def run(self, request: Any, fn: Callable[..., Any], *args: Any,
                  in_process: bool = False) -> Answer:
        """``fn(*args)`` (a pipeline function returning a ``Plan``) in the executor, then its plan once
        the budget has room (``in_process``: in threads of this process if LOSS_SERVICE_BINARY_IN_PROCESS
        asked for it, else in the executor). ``request`` is the Starlette request: its ``receive`` tells
        when the client hangs up. The plan's ``Answer``: its body is ``bytes``, or a ``memoryview`` of the buffer
        it was read into from a worker process (Starlette's ``Response`` sends either as it is)."""
        if self.full:  # it would have to wait behind the queue (first come, first served): shed it now
            raise QueueFull(self.max_queue)
        executor = self.local if in_process else self.executor
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(_wait_for_disconnect(request.receive, gone))
        plan: Prepared | None = None
        try:
            plan = await executor.prepare(fn, *args)
            if plan.work > self.budget.capacity:  # callers refuse this first, naming the field; a safety net
                raise LimitExceeded(f"The request's work of {plan.work:,} can never fit in the work budget of "
                                    f"{self.budget.capacity:,} (LOSS_SERVICE_WORK_BUDGET).", ("body",))
            if not self.budget.fits_now(plan.work) and self.full:
                raise QueueFull(self.max_queue)
            admitted = not gone.is_set() and await self._admit(plan.work, gone)
        except BaseException:
            if plan is not None:
                executor.discard(plan)
            raise
        finally:
            watcher.cancel()
        if not admitted:
            executor.discard(plan)
            log.warning("dropped %s %s (declared work %d): the client disconnected while it was queued",
                        request.method, request.url.path, plan.work)
            raise ClientGone()
        try:
            return await executor.run(plan)
        finally:
            self.budget.release(plan.work)

    async def _admit(self, work: int, gone: asyncio.Event) -> bool:
        """Waits for ``work`` to fit in the budget unless the client goes first; True once admitted
        (the caller then owns the share and releases it)."""
        acquired = asyncio.ensure_future(self.budget.acquire(work))
        hung_up = asyncio.ensure_future(gone.wait())
        finished = False
        try:
            await asyncio.wait({acquired, hung_up}, return_when=asyncio.FIRST_COMPLETED)
            finished = True
        finally:
            hung_up.cancel()
            acquired.cancel()  # nothing if it already has its share
            await asyncio.wait({acquired})
            holds = not acquired.cancelled() and acquired.exception() is None
            if holds and (gone.is_set() or not finished):
                self.budget.release(work)
                holds = False
        return holds
