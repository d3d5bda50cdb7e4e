"""Requests and responses of ``POST /v1/losses/{name}`` and ``POST /v1/batch``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.engine.reduction import ALL_REDUCTIONS

from .arrays import NDArray, OptionalNDArray
from .problems import Problem

# every reduction name of every family; which ones a loss accepts, and its default, are the loss's own
# (its catalogue entry's `reductions` and `default_reduction`), checked by the engine
Reduction = Literal[ALL_REDUCTIONS]  # type: ignore[valid-type]
OutputName = Literal["loss", "per_sample", "gradient", "hessian"]
DType = Literal["float64", "float32"]


class LossOptions(BaseModel):
    """Everything of a loss request except its arrays (shared by single and batch requests)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    params: dict[str, Any] = Field(default_factory=dict, description=(
        "The loss's own parameters (see GET /v1/losses/{name}); defaults are the framework's. Unknown names, "
        "wrong types and out-of-range values are a 422 that lists the valid parameters."))
    reduction: Reduction | None = Field(None, description=(
        "How per-sample values become `loss`, by the loss's family; left out, the loss's `default_reduction` "
        "(see GET /v1/losses/{name}, which lists its `reductions`). Keras and other losses (default "
        "`sum_over_batch_size`, Keras 3 rules): `sum_over_batch_size`/`mean` divide the weighted sum by the "
        "number of per-sample elements, `sum` sums, `mean_with_sample_weight` divides by the sum of the weights, "
        "`none` returns the weighted per-sample array. torch.* losses (default `mean`, PyTorch's rules): `mean`, "
        "`sum`, `none`, and `batchmean` for torch.kl_div; they take no sample_weight."))
    outputs: list[OutputName] = Field(default_factory=lambda: ["loss", "per_sample", "gradient"], min_length=1,
                                      description="What to compute and return; only these are computed.")
    dtype: DType = Field("float64", description=(
        "`float64` (default) or `float32`: every step, epsilons included, in that precision, as the frameworks "
        "compute by default."))


class LossRequest(LossOptions):
    """A loss evaluation. Arrays are nested JSON lists, row-major."""

    y_true: OptionalNDArray = Field(None, description="Targets: shape and domain per loss (see the catalogue).")
    y_pred: NDArray = Field(description="Predictions (probabilities, logits, scores, embeddings...) per loss.")
    sample_weight: OptionalNDArray = Field(None, description=(
        "A number or an array broadcast against the per-sample loss (Keras 3 rules: a rank differing by one "
        "with a trailing 1 is squeezed/expanded, then NumPy broadcasting). Not for torch.* losses (a 422): "
        "PyTorch's weights are the loss's own parameters."))

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "y_true": [[0, 1, 0], [0, 0, 1]], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
        "sample_weight": [1.0, 0.5], "params": {"from_logits": False, "label_smoothing": 0.0},
        "reduction": "sum_over_batch_size", "outputs": ["loss", "per_sample", "gradient"], "dtype": "float64"}]})


class Meta(BaseModel):
    loss: str = Field(description="The canonical name of the loss computed.")
    reduction: Reduction
    params: dict[str, Any] = Field(description="Every parameter with the value used, defaults included.")
    dtype: DType
    y_pred_shape: list[int]
    per_sample_shape: list[int]
    gradient: str | None = Field(None, description="Set when the loss is not differentiable.")


class LossResponse(BaseModel):
    loss: float | list[Any] | None = Field(None, description=(
        "The reduced loss; with reduction `none`, the weighted per-sample array (same as `per_sample`)."))
    per_sample: float | list[Any] | None = Field(None, description=(
        "The unreduced loss with sample_weight applied (what Keras returns with reduction=None)."))
    gradient: list[Any] | float | None = Field(None, description=(
        "d loss / d y_pred, same shape as y_pred (for `none`: of the sum of per_sample)."))
    hessian: list[Any] | float | None = Field(None, description=(
        "Diagonal of the second derivative of the same scalar, same shape as y_pred."))
    meta: Meta


class BatchItem(LossRequest):
    loss: str = Field(description="Loss name or alias, as in the path of POST /v1/losses/{name}.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[BatchItem] = Field(min_length=1, description="Evaluated in order; one bad item fails alone.")


class BatchError(BaseModel):
    error: Problem


class BatchResponse(BaseModel):
    results: list[LossResponse | BatchError] = Field(description="One result or error per request, in order.")
