"""The loss curves: ``GET /v1/losses/{name}/curve``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CurveAxis(BaseModel):
    kind: str = Field(description="The axis kind: error, probability, logit, margin, distance, similarity, prediction "
                                  "or raw_prediction. Only losses with the same kind overlay (`with`).")
    name: str = Field(description="The axis' short name (its kind).")
    label: str = Field(description="What x is, in words (the plots' axis title).")
    fixed: str = Field(description="How x becomes the loss's inputs, and what is held fixed.")


class CurveSeries(BaseModel):
    loss: str = Field(description="Canonical name of the loss of this series.")
    params: dict[str, Any] = Field(description="Its effective scalar parameters (defaults filled in).")
    x: list[float] = Field(description="Increasing points strictly inside the axis' domain.")
    loss_values: list[float] = Field(description="The per-sample value the service returns (reduction none) at the "
                                                 "inputs built from each x.")
    gradient: list[float] | None = Field(description="d loss / d x from the engine's analytic gradient (chain rule); "
                                                     "null where the loss is not differentiable.")
    gradient_note: str | None = Field(description="Why gradient is null (null otherwise).")
    hessian: list[float] | None = Field(description="d2 loss / d x2 from the engine's analytic Hessian diagonal, "
                                                    "where x moves one element of y_pred; null otherwise.")
    hessian_note: str | None = Field(description="Why hessian is null (null otherwise).")


class CurveResponse(BaseModel):
    loss: str = Field(description="Canonical name of the main loss.")
    axis: CurveAxis
    params: dict[str, Any] = Field(description="Effective scalar parameters of the main loss (defaults filled in).")
    series: list[CurveSeries] = Field(description="The main loss first, then each loss of `with` at its defaults.")


class VegaLiteSpec(BaseModel):
    """A complete Vega-Lite v6 specification with its data inline (format=vega-lite)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    schema_: str = Field(alias="$schema", description="https://vega.github.io/schema/vega-lite/v6.json")
    data: dict[str, Any] = Field(description="`values`: rows {loss, quantity, x, y}; quantity is loss, gradient or "
                                             "hessian.")
