"""GET /v1/losses/{name}/curve: thin; the query is read in ``service.transport.curves``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas import PROBLEM_RESPONSES
from schemas.curves import CurveResponse, VegaLiteSpec

from ..transport.curves import curve_plan
from .answer import respond
from .routes import LossName

router = APIRouter(prefix="/v1")

CURVE_RESPONSES = {
    200: {"description": "format=json: the curve data (CurveResponse); format=vega-lite: a Vega-Lite v6 spec "
                         "(VegaLiteSpec); format=svg: a static SVG picture.",
          "content": {"application/json": {"schema": {"anyOf": [{"$ref": "#/components/schemas/CurveResponse"},
                                                                 {"$ref": "#/components/schemas/VegaLiteSpec"}]}},
                      "image/svg+xml": {"schema": {"type": "string"}}}},
    404: {**PROBLEM_RESPONSES[404], "description": "Unknown loss in the path or in `with` (with suggestions)."},
    422: {**PROBLEM_RESPONSES[422], "description": (
        "A query value out of range (points), an unknown query key (the detail lists the accepted ones), a loss "
        "parameter refused as POST /v1/losses/{name} refuses it (at query.<name>), `with` naming a loss on another "
        "axis (`axis-mismatch`), or x_min/x_max outside the axis' domain or not increasing (`invalid-range`).")},
}


@router.get("/losses/{name}/curve", response_model=None, responses=CURVE_RESPONSES, tags=["catalogue"],
            summary="The loss, its gradient and Hessian along the loss's natural axis")
async def loss_curve(
    request: Request,
    name: str = LossName,
    format: Literal["json", "vega-lite", "svg"] = Query("json",
                                                        description="json data, a Vega-Lite v6 spec or an SVG."),
    points: int = Query(201, ge=2, le=2001, description="How many x values."),
    with_: str | None = Query(None, alias="with", description="Comma-separated losses (aliases accepted) to overlay "
                                                              "at their defaults; they must share the axis kind."),
    x_min: float | None = Query(None, description="Start of the range (inside the axis' domain)."),
    x_max: float | None = Query(None, description="End of the range (inside the axis' domain, above x_min)."),
) -> Response:
    """Per-sample value, d/dx and d2/dx2 of the loss along its natural axis (the error for regression, the
    probability or logit of the true class, the margin, the distance or similarity, the prediction),
    computed by the engine at inputs built from each x (the response's `axis.fixed` says how). Every
    scalar parameter of the loss is a query key of its own (`delta=2`, `from_logits=true`), validated as
    POST /v1/losses/{name} validates it; array parameters and `axis` are not curve parameters."""
    return respond(await request.app.state.admission.run(request, curve_plan, name,
                                                         list(request.query_params.multi_items()), format, points,
                                                         with_, x_min, x_max))


EXTRA_SCHEMAS = (CurveResponse, VegaLiteSpec)
