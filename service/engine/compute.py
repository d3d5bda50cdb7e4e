"""``compute``: one loss evaluation, from arrays to loss, per-sample values and derivatives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import registry
from ._math import all_finite
from .errors import InvalidInput, NonFiniteResult, NotInFamily, UnsupportedOutput, WorkLimitExceeded
from .params import bind, check_arrays

OUTPUTS = ("loss", "per_sample", "gradient", "hessian")
DEFAULT_OUTPUTS = ("loss", "per_sample", "gradient")
DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass
class Result:
    loss: Any = None  # NumPy 0-d array, or an array for reduction "none"
    per_sample: np.ndarray | None = None
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


BYTES_PER_WORK = {"float64": 128, "float32": 64}
"""The most bytes any loss allocates per value of declared work (``Loss.work``) while computing its
value and gradient, by dtype: Circle, the largest, keeps about 16 arrays of ``work`` values alive
(123 B/work in float64, 63 in float32; CTC's float32 lattice 42-50). tests/test_work_limit.py holds
every loss to it, so ``work x BYTES_PER_WORK[dtype]`` bounds a computation's memory."""


@dataclass
class PreparedCall:
    """A validated loss call whose declared ``work`` is known before anything heavy is evaluated,
    so that a caller can wait for room (or refuse it) first; ``evaluate`` computes it."""

    spec: registry.Loss
    params: dict
    y_true: Any
    y_pred: np.ndarray  # as sent (its shape is reported)
    y_pred_used: np.ndarray  # as the loss computes on it
    weights: np.ndarray | None
    reduction: str
    outputs: tuple[str, ...]
    dtype: str
    work: int

    def evaluate(self) -> Result:
        with np.errstate(all="ignore"):  # overflow and 0/0 are reported by _check_finite as a 422
            return _run(self)


def compute(loss: str | registry.Loss, y_true: Any, y_pred: Any, *, params: Mapping[str, Any] | None = None,
            sample_weight: Any = None, reduction: str | None = None,
            outputs: Iterable[str] = DEFAULT_OUTPUTS, dtype: str = "float64", max_work: int | None = None) -> Result:
    """Evaluate ``loss`` on the inputs. Raises a typed ``LossServiceError`` on bad input.

    Every step runs in ``dtype`` (epsilons included), as Keras does with its loss dtype. With
    ``max_work``, inputs on which the loss would build an array of more values than that (see
    ``Loss.work``) are refused with ``WorkLimitExceeded`` (a 413) before anything is computed.
    ``prepare_call`` is the first half: validation and the declared work, without evaluating.
    """
    return prepare_call(loss, y_true, y_pred, params=params, sample_weight=sample_weight, reduction=reduction,
                        outputs=outputs, dtype=dtype, max_work=max_work).evaluate()


def prepare_call(loss: str | registry.Loss, y_true: Any, y_pred: Any, *, params: Mapping[str, Any] | None = None,
                 sample_weight: Any = None, reduction: str | None = None,
                 outputs: Iterable[str] = DEFAULT_OUTPUTS, dtype: str = "float64",
                 max_work: int | None = None) -> PreparedCall:
    """``compute``'s arguments checked (shapes, domains, parameters, ``max_work``) and the loss's
    declared work measured, with nothing evaluated yet."""
    spec = registry.get_loss(loss) if isinstance(loss, str) else loss
    outputs = tuple(dict.fromkeys(outputs))
    if reduction is None:
        reduction = spec.default_reduction
    if reduction not in spec.reductions:
        raise NotInFamily(f"reduction must be one of {', '.join(spec.reductions)} for {spec.name} (a "
                           f"{spec.reducer.family} loss); got {reduction!r}.", ("reduction",))
    if dtype not in DTYPES:
        raise InvalidInput(f"dtype must be float64 or float32; got {dtype!r}.", ("dtype",))
    for name in outputs:
        if name not in OUTPUTS:
            raise InvalidInput(f"outputs may only name {', '.join(OUTPUTS)}; got {name!r}.", ("outputs",))
    if "hessian" in outputs and not spec.hessian:
        raise UnsupportedOutput(
            f"{spec.name} does not offer a Hessian ({spec.without_hessian}); drop \"hessian\" from outputs.",
            ("outputs",))
    p = bind(spec.params, params)
    dt = DTYPES[dtype]

    y_pred = np.asarray(y_pred, dtype=dt)
    if y_true is None:
        if spec.y_true_required:
            raise InvalidInput("y_true is required for this loss.", ("y_true",), slug="y-true-required",
                               title="y_true is required")
        y_true = np.zeros_like(y_pred)
    else:
        y_true = np.asarray(y_true, dtype=dt)
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size == 0:
            raise InvalidInput(f"{name} is empty; send at least one value.", (name,))
    weights = None if sample_weight is None else np.asarray(sample_weight, dtype=dt)
    spec.reducer.check_sample_weight(weights)

    with np.errstate(all="ignore"):
        y_true, y_pred_used = spec.prepare(y_true, y_pred, p)
        check_arrays(spec.params, p, y_pred_used)
        work = spec.work(y_true, y_pred_used, p)
    if max_work is not None and work > max_work:
        raise WorkLimitExceeded(
            f"{spec.name} would build an array of {work:,} values for this y_pred of shape {list(y_pred.shape)} "
            f"({spec.work_doc}), over the limit of {max_work:,}; send smaller inputs (split the batch).", ("y_pred",))
    return PreparedCall(spec, p, y_true, y_pred, y_pred_used, weights, reduction, outputs, dtype, work)


def _run(call: PreparedCall) -> Result:
    spec, p, y_pred, outputs = call.spec, call.params, call.y_pred, call.outputs
    derivatives = frozenset(name for name in ("gradient", "hessian") if name in outputs)
    evaluation = spec.evaluate_for(call.y_true, call.y_pred_used, p, derivatives)
    reduced = spec.reducer.reduce(evaluation.per_sample, call.weights, evaluation.mask, call.reduction,
                                  evaluation.normaliser)

    result = Result(meta={
        "loss": spec.name, "reduction": call.reduction, "params": p, "dtype": call.dtype,
        "y_pred_shape": list(y_pred.shape), "per_sample_shape": list(reduced.per_sample.shape),
    })
    if "loss" in outputs:
        result.loss = reduced.loss
    if "per_sample" in outputs:
        result.per_sample = reduced.per_sample
    if "gradient" in outputs:
        if evaluation.vjp is None:
            result.meta["gradient"] = f"{spec.name} is not differentiable; gradient is null"
        else:
            result.gradient = evaluation.vjp(reduced.upstream).reshape(y_pred.shape)
    if "hessian" in outputs and evaluation.hess is not None:
        result.hessian = evaluation.hess(reduced.upstream).reshape(y_pred.shape)
    _check_finite(result, call.dtype)
    return result


def _check_finite(result: Result, dtype: str) -> None:
    for name in ("loss", "per_sample", "gradient", "hessian"):
        value = getattr(result, name)
        if value is None:
            continue
        arr = np.asarray(value)
        if all_finite(arr):
            continue
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        index = [int(i) for i in np.unravel_index(bad, arr.shape)] if arr.ndim else []
        where = "".join(f"[{i}]" for i in index)
        hint = ("; try dtype float64 or smaller inputs" if dtype == "float32"
                else "; check the inputs' scale and domain")
        raise NonFiniteResult(
            f"result.{name}{where} is not a finite {dtype} number (it overflows or is undefined){hint}.",
            ("result", name, *index))
