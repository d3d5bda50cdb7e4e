"""What every transport shares: the decoded ``LossCall``, its preparation under the limits, the ``Plan``."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import Settings
from ..engine import PreparedCall, get_loss, prepare_call
from ..engine.compute import DEFAULT_OUTPUTS
from ..engine.errors import InvalidInput, LimitExceeded
from ..engine.registry import Loss

ARRAY_FIELDS = ("y_true", "y_pred", "sample_weight")
RESULT_FIELDS = ("loss", "per_sample", "gradient", "hessian")


@dataclass(frozen=True)
class Limits:
    max_elements: int
    max_rank: int
    max_batch_items: int
    max_work: int  # the most declared work one request may have: more could never be admitted

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(max_elements=s.max_elements, max_rank=s.max_rank, max_batch_items=s.max_batch_items,
                   max_work=min(s.max_request_work, s.work_budget))


@dataclass(frozen=True)
class Answer:
    """What a plan answers, whichever transport and executor: the body, its media type and the headers
    that go with it (an OIP binary response's Inference-Header-Content-Length). The process executor
    sends ``body`` raw and the rest in its message; the routes render it with ``service.api.answer``."""

    body: bytes | memoryview
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A request parsed and validated, with its declared work (``Loss.work``, a batch's items summed):
    ``run`` does the heavy part and gives the ``Answer``, once the process's work budget has room for
    it (``service.api.compute``)."""

    work: int
    run: Callable[[], Answer]


@dataclass
class LossCall:
    """One loss computation as a transport decoded it, before the engine has looked at it.

    ``params`` are the loss parameters as sent (JSON keeps array parameters there, as lists);
    ``array_params`` are array parameters that arrived as tensors (OIP), counted with the inputs
    against the element limit."""

    loss: str | Loss
    y_true: np.ndarray | None
    y_pred: np.ndarray | None
    sample_weight: np.ndarray | None = None
    params: Mapping[str, Any] | None = None
    array_params: dict[str, np.ndarray] = field(default_factory=dict)
    reduction: str | None = None
    outputs: tuple[str, ...] = DEFAULT_OUTPUTS
    dtype: str = "float64"

    @property
    def arrays(self) -> list[np.ndarray | None]:
        return [self.y_true, self.y_pred, self.sample_weight, *self.array_params.values()]


def check_elements(arrays, limit: int, where: str = "the request") -> int:
    total = sum(a.size for a in arrays if a is not None)
    if total > limit:
        raise LimitExceeded(f"{where} holds {total:,} numbers, over the limit of {limit:,} "
                            f"(LOSS_SERVICE_MAX_ELEMENTS); split it into smaller requests.", ("body",))
    return total


def prepare(call: LossCall, limits: Limits, budget: list[int] | None = None) -> PreparedCall:
    """The engine's prepared call for ``call``: the element limit (``budget`` is what is left of it when
    several calls share one request, as a batch's items do), then shapes, domains, parameters and
    the work limit (``prepare_call``)."""
    spec = get_loss(call.loss) if isinstance(call.loss, str) else call.loss
    used = check_elements(call.arrays, limits.max_elements)
    if budget is not None:
        budget[0] -= used
        if budget[0] < 0:
            raise LimitExceeded(f"The request holds more than {limits.max_elements:,} numbers in all "
                                f"(LOSS_SERVICE_MAX_ELEMENTS); split it into smaller requests.", ("body",))
    params = {**call.params, **call.array_params} if call.array_params else call.params
    return prepare_call(spec, call.y_true, call.y_pred, params=params, sample_weight=call.sample_weight,
                        reduction=call.reduction, outputs=call.outputs, dtype=call.dtype, max_work=limits.max_work)


def where(field_name: str, path) -> str:
    return field_name + "".join(f"[{i}]" for i in path)


def check_finite(arr: np.ndarray, field_name: str) -> None:
    """A 422 naming the first NaN or infinity of an input array (row-major)."""
    if np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr)
    index = [int(i) for i in np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), arr.shape)]
    shown = {math.inf: "Infinity", -math.inf: "-Infinity"}.get(float(arr[tuple(index)]), "NaN")
    raise InvalidInput(f"{field_name} must hold finite numbers; {where(field_name, index)} is {shown} "
                       f"(NaN, Infinity and numbers beyond float64 are rejected).", (field_name, *index),
                       slug="non-finite-input", title="Non-finite input")
