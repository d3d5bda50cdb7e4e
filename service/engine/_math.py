"""Numerically careful elementwise helpers, dtype-preserving (float32 stays float32)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import vecmath as vm
from .params import normalize_axes
from .registry import Evaluation, Loss

EPSILON = 1e-7  # keras.backend.epsilon()


def eps_like(x: np.ndarray) -> Any:
    """Keras's epsilon in the array's dtype (float32 rounds it as Keras does)."""
    return x.dtype.type(EPSILON)


def log1p_nonneg(u: np.ndarray) -> np.ndarray:
    """``log(1 + u)`` for ``u >= 0``, accurate to a few ulps, at the cost of one ``log``."""
    return log1p_and_reciprocal(u)[0]


def log1p_and_reciprocal(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log(1 + u)`` and ``1 / (1 + u)`` for ``u >= 0``, sharing ``1 + u`` and writing into two new
    arrays only (the correction term reuses ``1 + u``'s buffer).

    ``np.log1p`` costs 5-6x ``np.log``. With ``w = fl(1 + u)``, ``log(w) - ((w - 1) - u) / w``
    corrects the rounding of ``1 + u`` to first order (exact when ``w == 1``)."""
    w = u + 1
    r = np.reciprocal(w)
    out = vm.log(w)
    np.subtract(w, 1, out=w)
    np.subtract(w, u, out=w)
    np.multiply(w, r, out=w)  # ((1 + u) - 1 - u) / (1 + u): the rounding of 1 + u, to first order
    return np.subtract(out, w, out=out), r


def exp_neg_abs(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """``exp(-scale |x|)`` in (0, 1], in one new array."""
    u = np.abs(x)
    np.multiply(u, x.dtype.type(-scale), out=u)
    return vm.exp(u, out=u)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for x < -709 (float64) and gives exactly 0, the correctly rounded value
    with np.errstate(over="ignore"):
        return 1 / (1 + vm.exp(-x))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + e^x)`` without overflow: ``max(x, 0) + log1p(e^-|x|)``."""
    return np.maximum(x, x.dtype.type(0)) + log1p_nonneg(vm.exp(-np.abs(x)))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - vm.log(vm.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = vm.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def axis_sum(a: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """``a.sum(axis=axis)``; over a contiguous last axis it is a BLAS matrix-vector product with
    ones, several times faster than NumPy's reduction over short rows (see bench/)."""
    axis = axis % a.ndim
    if axis == a.ndim - 1 and a.size and a.dtype in _BLAS_FLOATS and a.flags.c_contiguous:
        n = a.shape[-1]
        if n == 1:  # (N, 1) columns (scikit-learn's metrics): no product, the same numbers (+ 0 makes -0 +0, as it)
            out = np.add(a.reshape(a.shape[:-1]), a.dtype.type(0))
            return out[..., None] if keepdims else out
        out = (a.reshape(-1, n) @ np.ones(n, dtype=a.dtype)).reshape(a.shape[:-1])
        return out[..., None] if keepdims else out
    return a.sum(axis=axis, keepdims=keepdims)


def axis_dot(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
    """``(a * b).sum(axis=axis)`` in one read of each array, without the elementwise product."""
    dims = list(range(a.ndim))
    return np.einsum(a, dims, b, dims, [d for d in dims if d != axis % a.ndim])


@dataclass(frozen=True)
class AxisSums:
    """What ``MeanOverAxis.terms`` returns instead of the elementwise value when it can sum over
    the axis directly (row dot products), which saves writing an array of y_pred's size."""

    sums: np.ndarray


def all_finite(a: np.ndarray) -> bool:
    """Whether every element is finite, in one read of the array and without a temporary: a sum
    is finite whenever every term is; only a non-finite (or overflowing) sum needs the scan."""
    if a.size >= _CHUNK and a.dtype in _BLAS_FLOATS and a.flags.c_contiguous:
        flat = a.reshape(-1)
        whole = flat.size - flat.size % _CHUNK
        total = (flat[:whole].reshape(-1, _CHUNK) @ np.ones(_CHUNK, dtype=a.dtype)).sum() + flat[whole:].sum()
    else:
        total = a.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(a).all())


_BLAS_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_CHUNK = 4096


def scaled_in_place(a: np.ndarray, factor: np.ndarray, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    """``a * factor``, written into ``a`` when ``a`` is a temporary of the result's shape and dtype
    (an input array is never overwritten)."""
    if (isinstance(a, np.ndarray) and a.flags.writeable and a.dtype == factor.dtype
            and a.shape == np.broadcast_shapes(a.shape, factor.shape)
            and not any(np.may_share_memory(a, x) for x in inputs)):
        return np.multiply(a, factor, out=a)
    return a * factor


def constant_of(a: np.ndarray) -> Any:
    """The one number an array broadcasts (every stride 0, as ``np.broadcast_to`` makes PyTorch's
    ``mean`` and ``sum`` upstreams), or None: scaling by the number skips reading a second array."""
    return a[(0,) * a.ndim] if a.size and not any(a.strides) else None


def sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = 0: the TensorFlow/PyTorch subgradient of |x| at 0."""
    return np.sign(x)



Terms = tuple[np.ndarray | AxisSums, Callable[[], np.ndarray], Callable[[], np.ndarray] | None]


def _summed(value: np.ndarray | AxisSums, axis: int) -> np.ndarray:
    """The sum over ``axis`` of a ``terms`` value, or the sums it already holds."""
    return value.sums if isinstance(value, AxisSums) else axis_sum(value, axis)


class Elementwise(Loss):
    """A loss built from an elementwise term of ``y_true`` and ``y_pred``, with the reduction of an
    axis a choice (``axis_reduction``): ``"none"`` (PyTorch: ``per_sample`` is the term itself, of
    y_pred's shape), ``"mean"`` (Keras: the mean over one axis, ``MeanOverAxis``) or ``"sum"``.

    Subclasses implement ``terms(y_true, y_pred, p) -> (value, d1, d2)``: the elementwise value
    (or, when an axis is reduced, its ``AxisSums``) and zero-argument callables for its first and
    second derivatives with respect to y_pred (``d2`` is ``None`` where no Hessian is offered).
    The reduction, its gradient and its Hessian diagonal are derived here once. ``d1`` and ``d2``
    are called at most once each and their results are scaled in place, so they may hand over an
    intermediate of ``terms`` that nothing reads afterwards.

    Fast paths are opt-in (tests/test_blocking.py holds each to the plain path). With ``blocked``,
    large inputs (reduced over their last axis, or not reduced) are computed in blocks of rows of about
    ``BLOCK_ELEMENTS`` numbers, the derivatives a request asks for included: a block's dozen
    temporaries stay in the CPU cache instead of each making a round trip through memory, and the
    peak memory is a few blocks rather than a dozen arrays of y_pred's size. It pays for the
    longer formulas (logs, exponentials: 10-30% in bench/bench_losses.py) and costs the short ones
    their per-block overhead, so losses opt in.
    """

    hessian = True
    axis_reduction: ClassVar[str] = "none"  # none | mean | sum
    per_sample_doc = "elementwise: the shape of y_pred"
    grad_factor = 1.0  # a constant factor of d1, applied to the (small) upstream array instead
    blocked = False
    BLOCK_ELEMENTS = 1 << 16  # 512 KiB per float64 temporary: within a core's L2 cache

    def reduce_axis(self, x: np.ndarray, p: dict) -> int:
        if x.ndim == 0:
            return -1
        return normalize_axes(p.get("axis", -1), x.ndim)[0]

    def terms(self, y: np.ndarray, x: np.ndarray, p: dict) -> Terms:
        raise NotImplementedError

    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict) -> Evaluation:
        return self.evaluate_for(y_true, y_pred, p, frozenset({"gradient", "hessian"}))

    def evaluate_for(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict, derivatives: frozenset[str]) -> Evaluation:
        if self.axis_reduction == "none":
            return self._unreduced(y_true, y_pred, p, derivatives)
        if y_pred.ndim == 0:  # a single number: treat it as one sample with one value
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        axis = self.reduce_axis(y_pred, p)
        want_d2 = "hessian" in derivatives and self.hessian
        blocked = (self.blocked and y_pred.size > 2 * self.BLOCK_ELEMENTS and axis == y_pred.ndim - 1
                   and y_true.shape == y_pred.shape and y_pred.flags.c_contiguous and y_true.flags.c_contiguous)
        if blocked:
            per_sample, d1, d2 = self._blocks(y_true, y_pred, p, "gradient" in derivatives, want_d2)
        else:
            value, lazy_d1, lazy_d2 = self.terms(y_true, y_pred, p)
            per_sample = _summed(value, axis)
            d1 = lazy_d1() if "gradient" in derivatives else None
            d2 = lazy_d2() if want_d2 and lazy_d2 is not None else None
        summed = self.axis_reduction == "sum"
        n = y_pred.dtype.type(1 if summed else y_pred.shape[axis])
        if not summed:
            per_sample /= n
        factor = y_pred.dtype.type(self.grad_factor)
        inputs = (y_true, y_pred)

        def vjp(up: np.ndarray) -> np.ndarray:
            scale = up / n if self.grad_factor == 1.0 else up * (factor / n)
            return scaled_in_place(d1, np.expand_dims(scale, axis), inputs)

        def hess(up: np.ndarray) -> np.ndarray:
            return scaled_in_place(d2, np.expand_dims(up / n, axis), inputs)

        return Evaluation(per_sample, vjp if d1 is not None else None, hess if d2 is not None else None)

    def _unreduced(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict, derivatives: frozenset[str]) -> Evaluation:
        """``per_sample`` is the elementwise term; the upstream scales its derivatives entry by entry."""
        shape = y_pred.shape
        y_true, y_pred = y_true.reshape(y_true.shape or (1,)), y_pred.reshape(shape or (1,))  # ufuncs keep arrays
        want_d2 = "hessian" in derivatives and self.hessian
        # blocks of rows need every array parameter to broadcast along the last axis only (pos_weight (C,))
        blocked = (self.blocked and y_pred.size > 2 * self.BLOCK_ELEMENTS and y_true.shape == y_pred.shape
                   and y_pred.flags.c_contiguous and y_true.flags.c_contiguous
                   and all(np.ndim(v) <= 1 for v in p.values() if isinstance(v, np.ndarray)))
        if blocked:
            value, d1, d2 = self._blocks(y_true, y_pred, p, "gradient" in derivatives, want_d2, reduce_rows=False)
        else:
            value, lazy_d1, lazy_d2 = self.terms(y_true, y_pred, p)
            if isinstance(value, AxisSums):  # pragma: no cover - a loss bug: nothing is summed here
                raise TypeError(f"{self.name}: AxisSums needs an axis reduction")
            d1 = lazy_d1() if "gradient" in derivatives else None
            d2 = lazy_d2() if want_d2 and lazy_d2 is not None else None
        factor = y_pred.dtype.type(self.grad_factor)
        inputs = (y_true, y_pred)

        def vjp(up: np.ndarray) -> np.ndarray:
            c = constant_of(up)
            if c is not None:  # mean and sum: one number scales the whole array
                return scaled_in_place(d1, np.asarray(c if self.grad_factor == 1.0 else c * factor), inputs)
            scale = up.reshape(y_pred.shape) if self.grad_factor == 1.0 else up.reshape(y_pred.shape) * factor
            return scaled_in_place(d1, scale, inputs)

        def hess(up: np.ndarray) -> np.ndarray:
            c = constant_of(up)
            return scaled_in_place(d2, np.asarray(c) if c is not None else up.reshape(y_pred.shape), inputs)

        return Evaluation(np.asarray(value, dtype=y_pred.dtype).reshape(shape), vjp if d1 is not None else None,
                          hess if d2 is not None else None)

    def _blocks(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict, want_d1: bool, want_d2: bool,
                reduce_rows: bool = True) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Row sums (or, without ``reduce_rows``, the elementwise values) and the requested
        derivatives, computed ``BLOCK_ELEMENTS`` numbers at a time (the reduced axis is the last and
        contiguous, so the rows are independent)."""
        width = y_pred.shape[-1]
        x_rows, y_rows = y_pred.reshape(-1, width), y_true.reshape(-1, width)
        sums = np.empty(x_rows.shape[0], dtype=y_pred.dtype) if reduce_rows else np.empty_like(x_rows)
        d1 = np.empty_like(x_rows) if want_d1 else None
        d2 = np.empty_like(x_rows) if want_d2 else None
        p_rows = {**p, "axis": -1} if "axis" in p else p
        step = max(1, self.BLOCK_ELEMENTS // width)
        for start in range(0, x_rows.shape[0], step):
            rows = slice(start, start + step)
            value, lazy_d1, lazy_d2 = self.terms(y_rows[rows], x_rows[rows], p_rows)
            sums[rows] = _summed(value, -1) if reduce_rows else value
            if d1 is not None:
                d1[rows] = lazy_d1()
            if lazy_d2 is None:  # this parameter set offers no Hessian
                d2 = None
            if d2 is not None:
                d2[rows] = lazy_d2()
        shape = y_pred.shape
        return (sums.reshape(shape[:-1] if reduce_rows else shape), None if d1 is None else d1.reshape(shape),
                None if d2 is None else d2.reshape(shape))


class MeanOverAxis(Elementwise):
    """An ``Elementwise`` loss whose per-sample value is the mean over one axis (the last, or
    ``params.axis``): the Keras convention."""

    axis_reduction = "mean"
    per_sample_doc = Loss.per_sample_doc
