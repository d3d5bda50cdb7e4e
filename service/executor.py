"""Where the body-in, body-out functions run: threads of this process, or worker processes.

Both executors run a pipeline function ``fn(*args) -> Plan`` in two phases, so that admission
(``service.api.compute``) learns a request's declared work before anything heavy runs:
``prepare(fn, *args)`` parses and validates and returns a ``Prepared`` with the work; ``run`` does
the heavy part once the work budget has room; ``discard`` forgets a prepared request that will not
run (its client left, or the queue was full).

* ``ThreadExecutor``: worker threads of the server process. Parsing JSON (orjson, pydantic-core)
  holds the GIL, so the event loop, and ``/healthz`` with it, waits ~100 ms per large body.
* ``ProcessExecutor``: ``workers`` processes (forkserver where the platform has it, spawn otherwise:
  forking after threads exist is unsafe), each importing the engine once at start. A plan's ``run``
  is a closure (not picklable), so the plan stays in the process that parsed it, under an id: only
  the arguments (bytes, str, ``Limits``) go in and the work (an int) and the response bytes come
  out. Each worker parses on one thread and computes on ``workers`` threads (so that whatever the
  budget admits starts at once). The event loop only hands messages to a sender thread and is
  woken by a reader thread per worker: it never parses, pickles or copies a body.
  Typed errors (``LossServiceError``) cross the boundary with every attribute (status, slug,
  errors, headers). A worker that dies (OOM-killed, segfault) fails the requests it was parsing or
  computing with a 503 ``WorkerCrashed`` (retry: the computation is pure) and is replaced; requests
  it was parsing are parsed once more in another worker, and requests it only held, parsed and
  waiting, are innocent and are parsed and computed again elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import multiprocessing
import os
import socket
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from queue import SimpleQueue
from typing import Any, Callable

import anyio

from .engine.errors import LossServiceError
from .transport.call import Answer

log = logging.getLogger("service")

WORKER_START_TIMEOUT = 120.0  # seconds for a worker to import the engine (emulated machines are slow)
CRASH_RETRY_AFTER_SECONDS = 1


class WorkerCrashed(LossServiceError):
    """The worker process computing the request died (killed for memory, or crashed); it has been replaced."""

    def __init__(self, exitcode: int | None = None) -> None:
        how = f" (exit code {exitcode})" if exitcode is not None else ""
        super().__init__(detail=f"The worker process computing this request died{how}, for example killed for "
                                f"using too much memory; it has been replaced. Retry after "
                                f"{CRASH_RETRY_AFTER_SECONDS} s, or lower the request's size.",
                         status=503, slug="worker-crashed", title="Worker crashed")
        self.headers = {"Retry-After": str(CRASH_RETRY_AFTER_SECONDS)}


@dataclass
class Prepared:
    """A parsed request with its declared work, ready to ``run`` once admitted."""

    work: int
    plan: Any = None  # ThreadExecutor: the Plan itself
    worker: Any = None  # ProcessExecutor: the _Worker holding the plan, and the plan's id there
    job: int = 0
    call: tuple = ()  # (fn, args): to parse again elsewhere if the holding worker dies meanwhile


# --- the thread executor ------------------------------------------------------------------------------

class ThreadExecutor:
    """``threads`` threads parsing and as many computing, in this process (Windows/macOS parity, tests)."""

    kind = "thread"

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._limiters: dict[str, anyio.CapacityLimiter] = {}

    async def _in_thread(self, pool: str, fn: Callable[..., Any], *args: Any) -> Any:
        if pool not in self._limiters:  # created lazily: they must belong to the running event loop
            self._limiters[pool] = anyio.CapacityLimiter(self._threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiters[pool])

    async def start(self) -> None:
        pass

    async def prepare(self, fn: Callable[..., Any], *args: Any) -> Prepared:
        plan = await self._in_thread("parse", fn, *args)  # a thread cannot be interrupted
        return Prepared(plan.work, plan=plan)

    async def run(self, prepared: Prepared) -> Answer:
        return await self._in_thread("compute", prepared.plan.run)

    def discard(self, prepared: Prepared) -> None:
        prepared.plan = None

    async def aclose(self) -> None:
        pass

    def pids(self) -> list[int]:
        return []


# --- errors across the process boundary -----------------------------------------------------------------

def _portable(exc: BaseException) -> tuple:
    """An exception as picklable parts: its class, args and attributes (LossServiceError subclasses
    have their own ``__init__`` signatures, which default exception pickling would call wrongly)."""
    text = "".join(traceback.format_exception(exc))
    try:
        import pickle
        pickle.dumps((type(exc), exc.args, exc.__dict__))
        return type(exc), exc.args, dict(exc.__dict__), text
    except Exception:  # an unpicklable exception: its text is what the log needs
        return RuntimeError, (f"{type(exc).__name__}: {exc}",), {}, text


def _rebuild(parts: tuple) -> BaseException:
    cls, args, state, text = parts
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    if not isinstance(exc, LossServiceError):  # a bug: keep the worker's traceback for the 500's log entry
        exc.add_note(f"in the worker process:\n{text}")
    return exc


# --- the worker process ---------------------------------------------------------------------------------

def _raw_socket(conn: Connection) -> socket.socket:
    """The pipe's socket (``Pipe()`` is a socket pair on Unix) for bulk bytes: ``sendall`` and
    ``recv_into`` move them without the intermediate copies of ``Connection`` and release the GIL."""
    return socket.socket(fileno=os.dup(conn.fileno()))


def _receive_exactly(raw: socket.socket, size: int) -> memoryview:
    view = memoryview(bytearray(size))
    got = 0
    while got < size:
        n = raw.recv_into(view[got:], size - got)
        if not n:
            raise EOFError("the worker's pipe closed in the middle of a response")
        got += n
    return view


class _Blob:
    """Stands in a message for a bytes argument sent after it."""


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker applies at start, as the server process does in ``create_app``."""

    reuse_memory: bool
    vector_math: str
    blas_threads: int
    compute_threads: int
    log_level: str = "WARNING"
    nice: int = 10


def _worker_main(conn: Connection, setup: WorkerSetup) -> None:
    """A worker's life: apply the runtime settings, import the engine, then serve messages until
    ``None`` or the server's end of the pipe closes."""
    from .engine import vecmath
    from .runtime import limit_math_threads, return_freed_memory, reuse_freed_memory

    logging.basicConfig(level=setup.log_level.upper())
    if setup.nice and hasattr(os, "nice"):
        os.nice(setup.nice)  # the server process (the event loop: health checks, I/O) gets the CPU first
    if setup.reuse_memory:
        reuse_freed_memory()
    return_freed_memory()  # loads the C library now, while the heap is small (see runtime._libc)
    vecmath.use(setup.vector_math)
    limit_math_threads(setup.blas_threads)
    from .transport import json, oip  # noqa: F401 - the engine and the codecs are imported once, before any request

    plans: dict[int, Any] = {}
    raw = _raw_socket(conn)
    send_lock = threading.Lock()
    parsing = ThreadPoolExecutor(1, thread_name_prefix="parse")
    computing = ThreadPoolExecutor(setup.compute_threads, thread_name_prefix="compute")

    def reply(job: int, ok: bool, payload: Any) -> None:
        with send_lock:
            # an Answer: its body follows raw, read straight into one buffer, and its media type and
            # headers travel in the message; anything else (a declared work, an error) is pickled
            if isinstance(payload, Answer):
                conn.send((job, ok, len(payload.body), (payload.media_type, dict(payload.headers))))
                raw.sendall(payload.body)
            else:
                conn.send((job, ok, payload, None))

    def guarded(job: int, work: Callable[[], Any]) -> None:
        try:
            result = work()
        except BaseException as exc:  # noqa: BLE001 - every failure is the request's answer
            reply(job, False, _portable(exc))
        else:
            reply(job, True, result)

    def prepare(job: int, fn: Callable[..., Any], args: tuple) -> int:
        plan = fn(*args)
        plans[job] = plan
        return plan.work

    def run(job: int) -> Answer:
        try:
            return plans.pop(job).run()
        finally:
            return_freed_memory()  # the work budget bounds all workers' computations together, not each one's

    def call(fn: Callable[..., Any], args: tuple) -> Answer:
        try:
            return fn(*args).run()
        finally:
            return_freed_memory()

    reply(0, True, os.getpid())  # ready
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the server went away
            break
        if message is None:
            break
        kind, job, *rest = message
        if kind in ("prepare", "call"):
            fn, shell, count = rest
            blobs = iter([conn.recv_bytes() for _ in range(count)])
            rest = [fn, tuple(next(blobs) if a is _Blob else a for a in shell)]
        if kind == "prepare":
            parsing.submit(guarded, job, lambda job=job, rest=rest: prepare(job, *rest))
        elif kind == "run":
            computing.submit(guarded, job, lambda job=job: run(job))
        elif kind == "call":
            computing.submit(guarded, job, lambda rest=rest: call(*rest))
        elif kind == "drop":
            plans.pop(job, None)
    parsing.shutdown(cancel_futures=True)
    computing.shutdown(cancel_futures=True)


# --- the process executor (server side) -------------------------------------------------------------------

@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["service.transport.json", "service.transport.oip"])  # the fork server imports the engine once for all workers
        return ctx
    return multiprocessing.get_context("spawn")


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    pid: int = 0
    alive: bool = True
    pending: dict[int, tuple[asyncio.Future, str]] = field(default_factory=dict)  # job -> (future, phase)
    held: set[int] = field(default_factory=set)  # jobs parsed here, waiting to run
    outbox: SimpleQueue = field(default_factory=SimpleQueue)

    @property
    def parsing(self) -> int:
        return sum(1 for _, phase in self.pending.values() if phase == "prepare")


class ProcessExecutor:
    """``workers`` worker processes, each parsing one request at a time and computing what is admitted."""

    kind = "process"

    def __init__(self, workers: int, setup: WorkerSetup) -> None:
        self.size = workers
        self.setup = setup
        self._workers: list[_Worker] = []
        self._jobs = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started: asyncio.Lock | None = None
        self._closing = False

    # start and stop

    def _spawn(self) -> _Worker:
        """Starts one worker and waits for its ready message (in a thread: it takes a while)."""
        ours, theirs = _context().Pipe()
        process = _context().Process(target=_worker_main, args=(theirs, self.setup), daemon=True,
                                     name="loss-service-worker")
        process.start()
        theirs.close()
        if not ours.poll(WORKER_START_TIMEOUT):
            process.kill()
            raise RuntimeError(f"a worker process did not start within {WORKER_START_TIMEOUT:.0f} s")
        _, _, pid, _ = ours.recv()
        worker = _Worker(process, ours, pid)
        threading.Thread(target=self._read, args=(worker,), daemon=True, name=f"worker-{pid}-reader").start()
        threading.Thread(target=self._write, args=(worker,), daemon=True, name=f"worker-{pid}-writer").start()
        return worker

    async def start(self) -> None:
        if self._started is None:
            self._started = asyncio.Lock()
        async with self._started:
            if self._loop is not None or self._closing:  # started once: dead workers are replaced one by one
                return
            self._loop = asyncio.get_running_loop()
            try:
                workers = await anyio.to_thread.run_sync(lambda: [self._spawn() for _ in range(self.size)])
            except BaseException:
                self._loop = None
                raise
            self._workers.extend(workers)
            log.info("%d worker processes started (pids %s)", self.size, ", ".join(str(w.pid) for w in workers))

    async def aclose(self) -> None:
        """Asks every worker to stop and waits for it (killing it after a few seconds)."""
        self._closing = True
        workers, self._workers = self._workers, []

        def stop() -> None:
            for w in workers:
                w.outbox.put(None)
            for w in workers:
                w.process.join(10)
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join(5)
        await anyio.to_thread.run_sync(stop)

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    # the pipes

    def _write(self, worker: _Worker) -> None:
        """Sends the worker its messages in order, here and never on the event loop. A message's bytes
        arguments (request bodies) follow it unpickled: written from the body itself, without a copy
        and with the GIL released."""
        while True:
            message = worker.outbox.get()
            try:
                if message is not None and message[0] in ("prepare", "call"):
                    kind, job, fn, args = message
                    blobs = [a for a in args if isinstance(a, bytes)]
                    shell = tuple(_Blob if isinstance(a, bytes) else a for a in args)
                    worker.conn.send((kind, job, fn, shell, len(blobs)))
                    for blob in blobs:
                        worker.conn.send_bytes(blob)
                else:
                    worker.conn.send(message)
            except (OSError, ValueError):  # the worker died: the reader fails its requests
                return
            if message is None:
                return

    def _read(self, worker: _Worker) -> None:
        raw = _raw_socket(worker.conn)
        while True:
            try:
                job, ok, payload, answer = worker.conn.recv()
                if answer is not None:  # an Answer: its body straight into the buffer Starlette sends from
                    media_type, headers = answer
                    payload = Answer(_receive_exactly(raw, payload), media_type, headers)
            except (EOFError, OSError):
                break
            self._loop.call_soon_threadsafe(self._settle, worker, job, ok, payload)
        worker.process.join(5)
        try:
            self._loop.call_soon_threadsafe(self._died, worker, worker.process.exitcode)
        except RuntimeError:  # the event loop has closed (shut down): nobody waits for this worker
            pass

    def _settle(self, worker: _Worker, job: int, ok: bool, payload: Any) -> None:
        future, phase = worker.pending.pop(job, (None, ""))
        if phase == "prepare" and ok:
            worker.held.add(job)
        if future is None or future.done():
            if phase == "prepare" and ok:  # its request was cancelled while parsing: forget the plan
                self._drop(worker, job)
            return
        if ok:
            future.set_result(payload)
        else:
            future.set_exception(_rebuild(payload))

    def _died(self, worker: _Worker, exitcode: int | None) -> None:
        worker.alive = False
        worker.conn.close()
        pending, worker.pending = worker.pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(WorkerCrashed(exitcode))
        if worker in self._workers:
            self._workers.remove(worker)
            if not self._closing:
                log.error("worker process %d died (exit code %s); %d request(s) failed with a 503, starting another",
                          worker.pid, exitcode, len(pending))
                asyncio.ensure_future(self._replace())

    async def _replace(self) -> None:
        worker = await anyio.to_thread.run_sync(self._spawn)
        if self._closing:
            worker.outbox.put(None)
        else:
            self._workers.append(worker)

    async def _send(self, worker: _Worker, phase: str, message: tuple) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # answers are settled on the loop that started the workers: another would wait forever
            raise RuntimeError("the process executor serves the event loop that started it; use one loop per app "
                               "(or LOSS_SERVICE_EXECUTOR=thread)")
        future = loop.create_future()
        job = message[1]
        worker.pending[job] = (future, phase)
        worker.outbox.put(message)
        return await future

    def _drop(self, worker: _Worker, job: int) -> None:
        if job in worker.held:
            worker.held.discard(job)
            if worker.alive:
                worker.outbox.put(("drop", job))

    async def _worker(self) -> _Worker:
        await self.start()
        while not self._workers:  # all being replaced: wait for one
            if self._closing:
                raise WorkerCrashed()
            await asyncio.sleep(0.05)
        return min(self._workers, key=lambda w: (w.parsing, len(w.pending) + len(w.held)))

    # the two phases

    async def prepare(self, fn: Callable[..., Any], *args: Any) -> Prepared:
        """Parses in the least busy worker; if that worker dies meanwhile, once more in another (the
        crash was more likely another request's computation; a body that kills two workers gets the 503).
        A cancelled request's plan, if it comes, is dropped on arrival (``_settle``)."""
        for attempt in (1, 2):
            worker = await self._worker()
            job = next(self._jobs)
            try:
                work = await self._send(worker, "prepare", ("prepare", job, fn, args))
            except WorkerCrashed:
                if attempt == 2:
                    raise
                continue
            return Prepared(work, worker=worker, job=job, call=(fn, args))
        raise AssertionError("unreachable")

    async def run(self, prepared: Prepared) -> Answer:
        worker, job = prepared.worker, prepared.job
        if not worker.alive or job not in worker.held:  # its worker died while it waited: it did nothing wrong
            fn, args = prepared.call
            worker = await self._worker()
            job = next(self._jobs)
            return await self._send(worker, "run", ("call", job, fn, args))
        worker.held.discard(job)
        return await self._send(worker, "run", ("run", job))

    def discard(self, prepared: Prepared) -> None:
        if prepared.worker is not None:
            self._drop(prepared.worker, prepared.job)


def make_executor(kind: str, size: int, setup: WorkerSetup) -> ThreadExecutor | ProcessExecutor:
    return ProcessExecutor(size, setup) if kind == "process" else ThreadExecutor(size)
