"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas import Health, Readiness

from .. import __version__
from ..engine import all_losses, get_loss, vecmath
from ..engine.errors import UnknownLoss

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok", version=__version__)


def readiness(app: FastAPI) -> tuple[bool, Readiness]:
    """Whether this replica should be sent computations, and why: not while it drains (SIGTERM received,
    service.shutdown) nor while the computation queue is full (LOSS_SERVICE_MAX_QUEUE). Every readiness
    endpoint answers from here."""
    if app.state.drain.draining:
        status, reason = "draining", "shutting down: finishing the requests in flight; send new ones elsewhere"
    elif app.state.admission.full:
        status, reason = "busy", "the computation queue is full (LOSS_SERVICE_MAX_QUEUE); send elsewhere for now"
    else:
        status, reason = "ready", "taking computations"
    body = Readiness(status=status, reason=reason, version=__version__, losses=len(all_losses()),
                     vector_math=vecmath.backend)
    return status == "ready", body


@router.get("/readyz", response_model=Readiness, summary="Readiness",
            responses={503: {"model": Readiness,
                             "description": "Draining (shutting down) or the queue is full: send elsewhere."}})
async def readyz(request: Request) -> Response:
    """Ready unless draining after SIGTERM or the computation queue is full: then 503, so that a load
    balancer routes around this replica. /healthz stays a pure liveness check."""
    ready, body = readiness(request.app)
    return Response(body.model_dump_json(), status_code=200 if ready else 503, media_type="application/json")


class Metrics:
    """Request counts, latencies and sizes by route and status; computations by loss."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("loss_service_requests", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("loss_service_request_seconds", "Request latency", ["route", "method"],
                                 registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        size_buckets = (1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)
        self.request_bytes = Histogram("loss_service_request_bytes", "Request body size", ["route"],
                                       registry=self.registry, buckets=size_buckets)
        self.response_bytes = Histogram("loss_service_response_bytes", "Response body size", ["route"],
                                        registry=self.registry, buckets=size_buckets)
        self.computations = Counter("loss_service_computations", "Loss computations", ["loss", "outcome"],
                                    registry=self.registry)

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


_OUTCOMES = {499: "dropped", 503: "shed"}
"""Computations that never ran: the client hung up while queued, or the queue was full (load shedding)."""


def route_template(scope: Scope, original: Scope) -> str:
    """The route template a request matched, for a bounded set of metric labels: FastAPI's own routes
    put themselves in the scope; plain Starlette routes (/openapi.json, /docs) and mounts
    (/static/docs/{path}) do not, so they are matched here again, against the ``original`` scope (a
    mount rewrites root_path in the live one); anything else is "unmatched"."""
    route = scope.get("route")
    if getattr(route, "path", None):
        return route.path
    partial = None
    for candidate in getattr(getattr(scope.get("app"), "router", None), "routes", ()):
        path = getattr(candidate, "path", None)  # included routers have none; their routes set scope["route"]
        if path is None:
            continue
        match, _ = candidate.matches(original)
        if match is Match.NONE:
            continue
        template = path + ("/{path}" if isinstance(candidate, Mount) else "")
        if match is Match.FULL:
            return template
        partial = partial or template  # the path matched, the method did not (a 405)
    return partial or "unmatched"


class MetricsMiddleware:
    """Pure ASGI middleware (no response buffering): counts every HTTP request by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        original = dict(scope)
        status = [500]
        sent = [0]
        received = [0]

        async def counting_receive() -> Message:
            message = await receive()
            received[0] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                sent[0] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            template = route_template(scope, original)
            method = scope["method"]
            m = self.metrics
            m.requests.labels(template, method, str(status[0])).inc()
            m.latency.labels(template, method).observe(time.perf_counter() - start)
            m.request_bytes.labels(template).observe(received[0])
            m.response_bytes.labels(template).observe(sent[0])
            # a 401 is refused before any computation: it is no computation's outcome
            if template == "/v1/losses/{name}" and method == "POST" and status[0] != 401:
                name = scope.get("path_params", {}).get("name", "?")
                outcome = _OUTCOMES.get(status[0], "ok" if status[0] < 400 else "error")
                try:
                    name = get_loss(name).name
                except UnknownLoss:  # counted under "unknown", never as one label per typo
                    name = "unknown"
                m.computations.labels(name, outcome).inc()


def install(app: FastAPI, metrics: Metrics) -> None:
    @app.get("/metrics", include_in_schema=True, tags=["operations"], summary="Prometheus metrics",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def prometheus() -> Response:
        return metrics.render()
