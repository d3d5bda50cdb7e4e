"""Every error is rendered here, in one place, by transport: RFC 9457 problem+json for /v1 and the
rest of the API, the Open Inference Protocol's ``{"error": "<detail>"}`` for /v2."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..engine.errors import LossServiceError
from ..transport.json import dumps, validation_error
from ..problems import PROBLEM_CONTENT_TYPE, problem_body, simple_problem

log = logging.getLogger("service")

_HTTP = {
    404: ("not-found", "Not found", "There is no route {path}; see /docs for the routes."),
    405: ("method-not-allowed", "Method not allowed", "{method} is not allowed on {path}; see /docs."),
}


OIP_PREFIX = "/v2"


def problem_response(body: dict, headers: dict | None = None, request: Request | None = None) -> Response:
    """The problem as its transport renders it: an OIP client reads ``error`` (the same sentence as
    ``detail``), everyone else the whole problem."""
    if request is not None and (request.url.path == OIP_PREFIX or request.url.path.startswith(OIP_PREFIX + "/")):
        return Response(dumps({"error": body["detail"]}), status_code=body["status"], media_type="application/json",
                        headers=headers)
    return Response(dumps(body), status_code=body["status"], media_type=PROBLEM_CONTENT_TYPE, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route answers on this path. Starlette's 405 names only the methods of the
    first route whose path matched, and GET and POST on /v1/losses/{name} are two routes."""
    routes = request.app.router.routes
    allowed = [m for m in _METHODS
               if any(route.matches({**request.scope, "method": m})[0] is Match.FULL for route in routes)]
    return ", ".join(allowed)


def install(app: FastAPI) -> None:
    @app.exception_handler(LossServiceError)
    async def _engine_error(request: Request, exc: LossServiceError) -> Response:
        return problem_response(problem_body(exc, request.url.path), getattr(exc, "headers", None), request)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        return problem_response(problem_body(validation_error(list(exc.errors())), request.url.path), request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        slug, title, template = _HTTP.get(exc.status_code, ("http-error", "HTTP error", "{detail}"))
        detail = template.format(path=request.url.path, method=request.method, detail=exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return problem_response(simple_problem(exc.status_code, slug, title, detail, request.url.path), headers, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(simple_problem(
            500, "internal-error", "Internal error",
            "The service failed on this request; it has been logged. Please report it with the request.",
            request.url.path), request=request)
