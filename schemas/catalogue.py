"""The loss catalogue: ``GET /v1/losses`` and ``GET /v1/losses/{name}``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ParamInfo(BaseModel):
    name: str
    type: str = Field(description="JSON type: number, integer, boolean, or a union.")
    default: Any
    constraints: str | None = Field(description="Allowed values, e.g. '> 0' or 'in [0, 1]'.")
    description: str


class CatalogueEntry(BaseModel):
    name: str = Field(description="Canonical snake_case name.")
    aliases: list[str] = Field(description="Other names accepted in the path (matched case-insensitively).")
    family: str = Field(description="keras, pytorch, gradient-boosting (sklearn.*) or other: whose semantics the loss follows.")
    group: str = Field(description="The engine module: regression, probabilistic, hinge, ...")
    summary: str
    formula: str = Field(description="The per-sample formula in LaTeX.")
    params: list[ParamInfo]
    reductions: list[str] = Field(description="The values `reduction` may take for this loss.")
    default_reduction: str = Field(description="The reduction used when a request leaves it out.")
    y_true: str = Field(description="Shape and domain of y_true, in words.")
    y_pred: str = Field(description="Shape and domain of y_pred, in words.")
    per_sample: str = Field(description="Which axis is reduced to give per_sample.")
    differentiable: bool
    hessian: bool = Field(description="Whether outputs may include `hessian`.")
    without_hessian: str | None = Field(description="Why the loss offers no `hessian` (null where it does).")
    notes: str = Field(description="Conventions and deliberate differences from the framework.")
    work: str = Field(description=(
        "How many values the evaluation's largest array holds: the request's declared work. Work over "
        "LOSS_SERVICE_MAX_REQUEST_WORK is refused with a 413 before any computation; the rest waits until it fits "
        "in the process's work budget (LOSS_SERVICE_WORK_BUDGET)."))
    references: dict[str, str | None] = Field(description="Equivalents: keras, pytorch, optax, sklearn...")


class Example(BaseModel):
    request: dict[str, Any] = Field(description="A body for POST /v1/losses/{name}.")
    response: dict[str, Any] = Field(description="The response the service gives to it.")


class CatalogueDetail(CatalogueEntry):
    examples: list[Example]
