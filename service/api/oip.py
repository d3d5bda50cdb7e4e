"""Thin /v2 routes: the Open Inference Protocol over HTTP/REST (service.transport.oip does the work).
Errors are rendered as OIP's ``{"error": ...}`` by service.api.problems, which decides by path."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from schemas.oip import (INFER_REQUEST_SCHEMA, InferResponse, ModelMetadata, ModelReady, OipError, ServerLive,
                         ServerMetadata, ServerReady)

from ..engine import get_loss
from ..transport import oip
from ..transport.json import dumps
from .answer import respond
from .body import read_json_body
from .ops import readiness

router = APIRouter(prefix="/v2", tags=["oip"])

ModelName = Path(description="A loss: canonical name or any alias, case-insensitive.", examples=["mse"])

_ERRORS = {status: {"model": OipError, "description": description} for status, description in {
    400: "Bad framing: a header that is not JSON or lies about its length, binary sizes that disagree with shape and "
         "datatype, an unknown datatype, a truncated body.",
    404: "Unknown model (loss).", 408: "The body did not arrive in time.", 413: "Over a configured limit.",
    415: "Content type is neither application/json nor application/octet-stream.",
    422: "Tensors or parameters invalid for the loss (shape, domain, parameter, non-finite number).",
    503: "The computation queue is full; retry after Retry-After seconds."}.items()}


def _json(obj, status: int = 200) -> Response:
    return Response(dumps(obj), status_code=status, media_type="application/json")


@router.get("", response_model=ServerMetadata, summary="Server metadata")
async def server_metadata() -> Response:
    return _json(oip.server_metadata())


@router.get("/health/live", response_model=ServerLive, summary="Server liveness")
async def server_live() -> Response:
    return _json({"live": True})


@router.get("/health/ready", response_model=ServerReady, summary="Server readiness (as /readyz)",
            responses={503: {"model": ServerReady,
                             "description": "Draining after SIGTERM, or the queue is full: send elsewhere for now."}})
async def server_ready(request: Request) -> Response:
    ready, _ = readiness(request.app)  # the one readiness of /readyz: draining or a full queue is not ready
    return _json({"ready": ready}, 200 if ready else 503)


@router.get("/models/{loss}", response_model=ModelMetadata, responses={404: _ERRORS[404]}, summary="Model metadata")
async def model_metadata(loss: str = ModelName) -> Response:
    return _json(oip.model_metadata(loss))


@router.get("/models/{loss}/ready", response_model=ModelReady, responses={404: _ERRORS[404]}, summary="Model readiness")
async def model_ready(loss: str = ModelName) -> Response:
    return _json({"name": get_loss(loss).name, "ready": True})


_BINARY = {"schema": {"type": "string", "format": "binary"}}


_INFER = {"response_model": InferResponse,
          "responses": {200: {"description": "The outputs: JSON, or (binary outputs asked) the JSON header followed by "
                                             "their bytes, its length in Inference-Header-Content-Length.",
                              "content": {"application/octet-stream": _BINARY}}, **_ERRORS},
          "openapi_extra": {
              "parameters": [{"name": oip.HEADER_LENGTH, "in": "header", "required": False,
                              "description": "The JSON header's length in bytes when binary tensors follow it.",
                              "schema": {"type": "integer", "minimum": 0}}],
              "requestBody": {"required": True, "content": {"application/json": {"schema": INFER_REQUEST_SCHEMA},
                                                            "application/octet-stream": _BINARY}}}}


@router.post("/models/{loss}/infer", summary="Compute a loss (infer)", **_INFER)
async def infer(request: Request, loss: str = ModelName) -> Response:
    """JSON tensors, or Triton's binary tensor extension: the JSON header, then the inputs' raw bytes
    (`Inference-Header-Content-Length` gives the header's length). Binary outputs come back the same way,
    as `application/octet-stream` with `Inference-Header-Content-Length`."""
    settings = request.app.state.settings
    body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout, ("application/octet-stream",))
    header_length = request.headers.get(oip.HEADER_LENGTH)
    # binary tensors (a header length) may stay in this process (LOSS_SERVICE_BINARY_IN_PROCESS): no JSON parse
    answer = await request.app.state.admission.run(request, oip.infer_response, loss, body, header_length,
                                                   request.app.state.limits, in_process=header_length is not None)
    return respond(answer)


# --- the versioned paths: OIP clients that name a version (tritonclient's model_version="1") ----------------

Version = Path(description=f"The model version: {', '.join(oip.VERSIONS)} (every loss has one).",
               examples=list(oip.VERSIONS))
_VERSION_404 = {404: {"model": OipError, "description": "Unknown model (loss), or a version it does not have."}}


@router.get("/models/{loss}/versions/{version}", response_model=ModelMetadata, responses=_VERSION_404,
            summary="Model metadata (versioned path)")
async def model_version_metadata(loss: str = ModelName, version: str = Version) -> Response:
    oip.check_version(loss, version)
    return await model_metadata(loss)


@router.get("/models/{loss}/versions/{version}/ready", response_model=ModelReady, responses=_VERSION_404,
            summary="Model readiness (versioned path)")
async def model_version_ready(loss: str = ModelName, version: str = Version) -> Response:
    oip.check_version(loss, version)
    return await model_ready(loss)


@router.post("/models/{loss}/versions/{version}/infer", summary="Compute a loss (infer, versioned path)",
             **{**_INFER, "responses": {**_INFER["responses"], **_VERSION_404}})
async def infer_version(request: Request, loss: str = ModelName, version: str = Version) -> Response:
    """As `POST /v2/models/{loss}/infer`; the version is checked before the body is read."""
    oip.check_version(loss, version)
    return await infer(request, loss)
