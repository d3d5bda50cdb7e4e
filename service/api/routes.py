"""Thin routes: read the body, hand it to the pipeline off the event loop, return the bytes."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from schemas import PROBLEM_RESPONSES, BatchRequest, BatchResponse, CatalogueDetail, CatalogueEntry, LossResponse

from .. import catalogue
from ..transport import json as json_transport
from ..transport.json import dumps
from .answer import respond
from .body import read_json_body

router = APIRouter(prefix="/v1")

LossName = Path(description="Canonical name or any alias, case-insensitive (e.g. `mse`, `CategoricalCrossentropy`, "
                            "`huber_loss`). Each loss has a page at `/catalogue/{name}` ([the catalogue](/catalogue)): "
                            "its formula, curves and a playground.", examples=["categorical_crossentropy"])


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def request_body_openapi(schema: str, examples: dict | None = None) -> dict:
    media = {"schema": {"$ref": f"#/components/schemas/{schema}"}}
    if examples:
        media["examples"] = examples
    return {"requestBody": {"required": True, "content": {"application/json": media}}}


@router.get("/losses", response_model=list[CatalogueEntry], summary="The loss catalogue", tags=["catalogue"])
async def list_losses() -> Response:
    """Every loss with its aliases, formula (LaTeX), parameters, domains and references."""
    return _json(dumps(catalogue.entries()))


@router.get("/losses/{name}", response_model=CatalogueDetail, responses={404: PROBLEM_RESPONSES[404]},
            summary="One loss, with runnable examples", tags=["catalogue"])
async def describe_loss(name: str = LossName) -> Response:
    """The catalogue entry plus `examples`: request bodies with the exact responses the service gives."""
    return _json(dumps(catalogue.detail(name)))


@router.post("/losses/{name}", response_model=LossResponse, responses=PROBLEM_RESPONSES,
             summary="Compute a loss, its per-sample values and gradient", tags=["losses"],
             openapi_extra=request_body_openapi("LossRequest"))
async def compute_loss(request: Request, name: str = LossName) -> Response:
    """Send `y_true` and `y_pred` (and optionally `sample_weight`, `params`, `reduction`, `outputs`,
    `dtype`); get back `loss`, `per_sample`, `gradient` (d loss / d y_pred) and, where offered,
    the diagonal `hessian`. There is an example per loss: picking one in the request body's Examples
    list sets `name` to match (and picking a `name` example picks its body)."""
    settings = request.app.state.settings
    body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout)
    return respond(await request.app.state.admission.run(request, json_transport.loss_response, name, body,
                                                       request.app.state.limits))


# no 404: an unknown loss in an item is that item's error, inside a 200
@router.post("/batch", response_model=BatchResponse, responses={k: v for k, v in PROBLEM_RESPONSES.items() if k != 404},
             summary="Several loss computations in one call", tags=["losses"],
             openapi_extra=request_body_openapi("BatchRequest", {"two losses": {"value": {"requests": [
                 {"loss": "mse", "y_true": [[0.0, 1.0]], "y_pred": [[1.0, 1.0]]},
                 {"loss": "huber", "y_true": [[0.0, 1.0]], "y_pred": [[0.6, 0.4]], "params": {"delta": 0.5}}]}}}))
async def compute_batch(request: Request) -> Response:
    """`{"requests": [...]}`, each item a loss request plus its `loss` name; results come back in
    order, and an invalid item becomes `{"error": problem}` without failing the others."""
    settings = request.app.state.settings
    body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout)
    return respond(await request.app.state.admission.run(request, json_transport.batch_response, body,
                                                       request.app.state.limits, request.url.path))


EXTRA_SCHEMAS = (BatchRequest,)
