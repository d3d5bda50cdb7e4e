"""Reductions, sample weights and masks, written once per family: a ``Reducer`` for each.

A loss's family chooses its reducer (``Loss.reducer``), which says which reductions the loss
accepts, its default, and turns per-sample values into the loss and ``upstream``: the derivative
of the returned loss with respect to each unreduced per-sample value. A loss's vector-Jacobian
product turns ``upstream`` into the gradient with respect to ``y_pred``, so no loss reduces or
weighs anything itself.

Keras (``KERAS``): ``reduce`` follows ``keras/src/losses/loss.py`` (``reduce_weighted_values``, ``apply_mask``,
``reduce_values``) step for step.

PyTorch (``PYTORCH``): ``mean`` (default), ``sum``, ``none``, and ``batchmean`` for a loss that
declares it; no ``sample_weight`` (PyTorch's weights are loss parameters). An evaluation may hand
over the divisor PyTorch's ``mean`` uses instead of the element count (``Evaluation.normaliser``:
the summed class weights of the targets for weighted cross_entropy/nll_loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import NonFiniteResult, NotInFamily, ShapeError

REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none")  # Keras's
TORCH_REDUCTIONS = ("mean", "sum", "none")
ALL_REDUCTIONS = tuple(dict.fromkeys(REDUCTIONS + TORCH_REDUCTIONS + ("batchmean",)))


def squeeze_or_expand_to_same_rank(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keras's rank alignment: acts only when the ranks differ by one and the higher-rank
    array ends in a dimension of 1 (a rank-1 lower side is expanded, otherwise the 1 is squeezed)."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        return (a, b[..., None]) if b.ndim == 1 else (a[..., 0], b)
    if b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        return (a[..., None], b) if a.ndim == 1 else (a, b[..., 0])
    return a, b


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


@dataclass
class Reduced:
    loss: np.ndarray  # 0-d, or the weighted array itself for "none" and 0-d/empty inputs
    per_sample: np.ndarray  # the weighted, unreduced values (what Keras returns with reduction=None)
    upstream: np.ndarray  # d loss / d values, shaped like the unweighted per-sample values


def _broadcast(values: np.ndarray, weights: np.ndarray, what: str) -> tuple[int, ...]:
    hint = (f"send one weight per sample, shape {list(values.shape)}, a scalar, or a shape that broadcasts to "
            f"that of the {what} or is broadcast to by it")
    try:
        shape = np.broadcast_shapes(values.shape, weights.shape)
    except ValueError:
        raise ShapeError(f"sample_weight of shape {list(weights.shape)} does not broadcast against the {what} of "
                         f"shape {list(values.shape)}; {hint}.", ("sample_weight",)) from None
    # both sides growing (an outer product, e.g. (N,) against (N, 1, 1)) is never a weighting, and its
    # size would be the product of the two
    if math.prod(shape) > max(values.size, weights.size):
        raise ShapeError(f"sample_weight of shape {list(weights.shape)} and the {what} of shape "
                         f"{list(values.shape)} would broadcast to {list(shape)}, larger than either; {hint}.",
                         ("sample_weight",))
    return shape


def _masked(weights: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """``weights * mask`` with Keras's rank alignment (``apply_mask``), or the mask alone."""
    if weights is None:
        return mask
    mask, weights = squeeze_or_expand_to_same_rank(mask, weights)
    _broadcast(mask, weights, "per-sample loss")
    return weights * mask


def _weigh(values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(values and weights aligned to the same rank, values * weights)."""
    if weights is None:
        return values, None, values
    shaped, weights = squeeze_or_expand_to_same_rank(values, weights)
    _broadcast(shaped, weights, "per-sample loss")
    return shaped, weights, shaped * weights


def reduce(values: np.ndarray, sample_weight: np.ndarray | None, mask: np.ndarray | None,
           reduction: str) -> Reduced:
    dt = values.dtype.type
    weights = sample_weight
    per_sample = None
    if mask is not None:
        fm = mask.astype(values.dtype)
        if reduction in ("mean", "sum_over_batch_size"):
            # per_sample is what Keras returns with reduction=None, whatever reduction was asked for:
            # the values times the weights and the 0/1 mask, before this rescaling; only the loss and
            # its gradient see valid entries weigh total/valid, so that the mean runs over them only
            per_sample = _weigh(values, _masked(weights, fm))[2]
            valid = fm.sum()
            fm = fm * (dt(fm.size) / valid if valid else dt(0))
        weights = _masked(weights, fm)

    shaped, weights, weighted = _weigh(values, weights)
    if per_sample is None:
        per_sample = weighted

    if reduction == "none" or weighted.ndim == 0 or weighted.shape == (0,):
        loss = weighted
        scale = np.ones_like(weighted)  # d(sum of returned values)/d(weighted)
    else:
        total = weighted.sum(dtype=values.dtype)
        if reduction == "sum":
            divisor = dt(1)
        elif reduction == "mean_with_sample_weight" and weights is not None:
            divisor = weights.sum(dtype=values.dtype)
        else:
            divisor = dt(weighted.size)
        # divide_no_nan: a zero divisor (all weights 0, all masked) gives 0, never NaN
        loss = total / divisor if divisor else dt(0) * total
        scale = np.full(weighted.shape, dt(1) / divisor if divisor else dt(0), dtype=values.dtype)

    upstream = scale if weights is None else scale * weights
    upstream = unbroadcast(np.asarray(upstream, dtype=values.dtype), shaped.shape).reshape(values.shape)
    return Reduced(loss=np.asarray(loss, dtype=values.dtype), per_sample=np.asarray(per_sample), upstream=upstream)


class Reducer:
    """The reduction rules of one family."""

    family: str
    names: tuple[str, ...]  # the reductions every loss of the family accepts
    default: str
    sample_weight: bool  # whether the family takes a sample_weight

    def check_sample_weight(self, sample_weight: np.ndarray | None) -> None:
        """Refuse a ``sample_weight`` where the family has no such thing (before anything is computed)."""

    def accepted(self, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
        return self.names + tuple(r for r in extra if r not in self.names)

    def reduce(self, values: np.ndarray, sample_weight: np.ndarray | None, mask: np.ndarray | None,
               reduction: str, normaliser: float | None = None) -> Reduced:
        raise NotImplementedError


class KerasReducer(Reducer):
    family, names, default, sample_weight = "keras", REDUCTIONS, "sum_over_batch_size", True

    def reduce(self, values, sample_weight, mask, reduction, normaliser=None) -> Reduced:
        return reduce(values, sample_weight, mask, reduction)


class TorchReducer(Reducer):
    """PyTorch's ``reduction``: ``mean`` divides the sum by the number of per-sample values (or by
    the evaluation's ``normaliser``: a number divides the sum, an array shaped like the values
    divides each value before the mean), ``batchmean`` by the size of the first axis."""

    family, names, default, sample_weight = "pytorch", TORCH_REDUCTIONS, "mean", False

    def check_sample_weight(self, sample_weight: np.ndarray | None) -> None:
        if sample_weight is not None:
            raise NotInFamily("sample_weight is not a PyTorch concept and torch.* losses do not take it; drop it "
                               "and use the loss's own weight parameters (params.weight, params.pos_weight) where "
                               "the loss has them.", ("sample_weight",))

    def reduce(self, values, sample_weight, mask, reduction, normaliser=None) -> Reduced:
        self.check_sample_weight(sample_weight)
        dt = values.dtype.type
        if reduction == "none":
            return Reduced(loss=values, per_sample=values, upstream=np.broadcast_to(np.ones((), values.dtype),
                                                                                   values.shape))
        if reduction == "sum":
            divisor = dt(1)
        elif reduction == "batchmean":
            divisor = dt(values.shape[0] if values.ndim else 1)
        elif isinstance(normaliser, np.ndarray):
            # one divisor per value, then the mean over them (CTC: each sequence by its target length)
            scaled = values / normaliser
            size = dt(values.size)
            upstream = dt(1) / size / normaliser
            return Reduced(loss=np.asarray(scaled.sum(dtype=values.dtype) / size, dtype=values.dtype),
                           per_sample=values, upstream=upstream.astype(values.dtype, copy=False))
        elif normaliser is not None and not normaliser:
            raise NonFiniteResult("PyTorch returns NaN for this request: reduction mean divides by the summed class "
                                  "weights of the targets that are not ignore_index, and they sum to 0 (every target "
                                  "is ignored or weighs 0); use reduction sum or none, or send a target that counts.",
                                  ("reduction",))
        else:
            divisor = dt(values.size if normaliser is None else normaliser)
        loss = values.sum(dtype=values.dtype) / divisor
        # one number for every value, not an array of them (read-only): elementwise losses scale by it directly
        upstream = np.broadcast_to(np.asarray(dt(1) / divisor, dtype=values.dtype), values.shape)
        return Reduced(loss=np.asarray(loss, dtype=values.dtype), per_sample=values, upstream=upstream)


KERAS = KerasReducer()
PYTORCH = TorchReducer()
