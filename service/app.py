"""The ASGI application: ``uvicorn service.app:app`` (or ``create_app()`` for a custom one)."""

from __future__ import annotations

import hmac
import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

from . import __version__
from .api import curves, doc_examples, docs, grading, oip, ops, problems, routes, site
from .api import openapi as openapi_document
from .api.compression import GzipMiddleware
from .api.compute import Admission
from .config import Settings, get_settings
from .engine import vecmath
from .engine.errors import LossServiceError
from .executor import WorkerSetup, make_executor
from .runtime import limit_math_threads, reuse_freed_memory
from .shutdown import Drain, lifespan
from .transport.call import Limits

DESCRIPTION = """
Machine-learning losses and their gradients over HTTP: every Keras 3 loss exactly as Keras
computes it (float64 or float32), with the per-sample values and the analytic gradient with
respect to the predictions.

* `POST /v1/losses/{name}` computes one loss; `GET /v1/losses` lists them all with formulas.
* `POST /v1/batch` runs several computations in one call.
* `POST /v1/grade` grades a student's loss, per-sample values and gradient (also as Gradescope
  `results.json` with `?format=gradescope`); `POST /v1/exercises` gives seeded inputs for any loss.
* `/v2` speaks the Open Inference Protocol (KServe v2, with Triton's binary tensor extension):
  `tritonclient` and other inference clients call each loss as a model.
* Errors are RFC 9457 `application/problem+json` naming the field and the fix.

[The catalogue](/catalogue) has a page per loss: the formula rendered, the parameters, curves of the
loss and its derivatives, and a playground (`/catalogue/{name}`).
"""


class Unauthorized(LossServiceError):
    def __init__(self) -> None:
        super().__init__(detail="This service requires an API key: send it in the X-API-Key header.",
                         status=401, slug="unauthorized", title="Unauthorized")


def _api_key_guard(settings: Settings):
    async def guard(request: Request) -> None:
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise Unauthorized()
    return guard


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.getLogger("service").setLevel(settings.log_level.upper())
    if settings.reuse_memory:
        reuse_freed_memory()
    vecmath.use(settings.vector_math)
    limit_math_threads(settings.blas_threads)
    logging.getLogger("service").info("vector math: %s", vecmath.backend)
    executor = make_executor(settings.executor, settings.max_concurrency, WorkerSetup(
        reuse_memory=settings.reuse_memory, vector_math=settings.vector_math, blas_threads=settings.blas_threads,
        compute_threads=settings.max_concurrency, log_level=settings.log_level))

    draining_on_sigterm = lifespan()

    @asynccontextmanager
    async def start_and_stop(app: FastAPI):
        await executor.start()  # worker processes are ready before the first request
        try:
            async with draining_on_sigterm(app):
                yield
        finally:
            await executor.aclose()

    app = FastAPI(
        lifespan=start_and_stop,
        title="Loss service", version=__version__, description=DESCRIPTION,
        docs_url=None, redoc_url=None,
        openapi_tags=[{"name": "losses", "description": "Compute losses, per-sample values and gradients."},
                      {"name": "catalogue", "description": "What each loss computes, with runnable examples."},
                      {"name": "grading", "description": "Grade a student's loss and gradient; seeded exercises."},
                      {"name": "operations", "description": "Health, readiness and metrics."},
                      {"name": "oip", "description": "The Open Inference Protocol v2 (KServe, Triton's binary "
                                                     "tensor extension): each loss is a model."}],
    )
    app.state.settings = settings
    app.state.drain = Drain()  # SIGTERM starts it: readiness turns false before the listener closes
    app.state.limits = Limits.from_settings(settings)
    app.state.admission = Admission(threads=settings.max_concurrency, work_budget=settings.work_budget,
                                    max_queue=settings.max_queue, executor=executor,
                                    in_process=settings.binary_in_process)
    metrics = ops.Metrics()
    app.state.metrics = metrics

    problems.install(app)
    dependencies = [Depends(_api_key_guard(settings))] if settings.api_key else []
    app.include_router(routes.router, dependencies=dependencies)
    app.include_router(curves.router, dependencies=dependencies)
    app.include_router(grading.router, dependencies=dependencies)
    app.include_router(oip.router, dependencies=dependencies)
    app.include_router(ops.router)
    ops.install(app, metrics)
    docs.install(app)
    site.install(app)

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Content-Type", "X-API-Key"])
    # inside the metrics middleware, which then counts the bytes sent; outside CORS, which adds its Vary first
    app.add_middleware(GzipMiddleware, min_bytes=settings.gzip_min_bytes, level=settings.gzip_level,
                       threads=settings.max_concurrency)
    app.add_middleware(ops.MetricsMiddleware, metrics=metrics)

    def openapi() -> dict:
        if app.openapi_schema is None:
            spec = openapi_document.build(app, settings)
            doc_examples.add_examples(spec, settings)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi
    return app


app = create_app()
