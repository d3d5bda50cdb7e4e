"""The comparison endpoint for ``bench_http.py``: the same computation written the idiomatic FastAPI way.

Pydantic request model with ``list[list[float]]`` arrays (FastAPI reads the body with
``json.loads`` and validates the Python objects), a plain ``def`` endpoint (run in the threadpool)
that converts to NumPy and calls the same engine ``compute``, and a Pydantic response model filled
with ``.tolist()`` lists, serialized by FastAPI's default path (response-model validation, then
pydantic-core's ``dump_json``). This is what the tutorial style gives; it is a benchmark baseline,
not part of the service.

Run: ``uvicorn bench.idiomatic_app:app --host 127.0.0.1 --port 8001`` from the repository root.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from service.engine import LossServiceError, compute

Output = Literal["loss", "per_sample", "gradient", "hessian"]


class LossRequest(BaseModel):
    y_true: list[list[float]]
    y_pred: list[list[float]]
    sample_weight: list[float] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    reduction: Literal["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none"] = "sum_over_batch_size"
    outputs: list[Output] = Field(default_factory=lambda: ["loss", "per_sample", "gradient"])
    dtype: Literal["float64", "float32"] = "float64"


class LossResponse(BaseModel):
    loss: float | None = None
    per_sample: list[float] | None = None
    gradient: list[list[float]] | None = None
    hessian: list[list[float]] | None = None
    meta: dict[str, Any]


app = FastAPI(title="Loss service, idiomatic FastAPI baseline (benchmark only)")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/losses/{name}")
def compute_loss(name: str, request: LossRequest) -> LossResponse:
    try:
        result = compute(
            name, np.asarray(request.y_true, dtype=np.float64), np.asarray(request.y_pred, dtype=np.float64),
            params=request.params, reduction=request.reduction, outputs=request.outputs, dtype=request.dtype,
            sample_weight=None if request.sample_weight is None else np.asarray(request.sample_weight),
        )
    except LossServiceError as exc:
        raise HTTPException(status_code=exc.status, detail=exc.detail) from None
    return LossResponse(
        loss=None if result.loss is None else float(result.loss),
        per_sample=None if result.per_sample is None else result.per_sample.tolist(),
        gradient=None if result.gradient is None else result.gradient.tolist(),
        hessian=None if result.hessian is None else result.hessian.tolist(),
        meta=result.meta,
    )
