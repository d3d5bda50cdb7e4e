"""Numerically careful elementwise helpers, dtype-preserving (float32 stays float32)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .params import normalize_axes
from .registry import Evaluation, Loss

EPSILON = 1e-7  # keras.backend.epsilon()


def eps_like(x: np.ndarray) -> Any:
    """Keras's epsilon in the array's dtype (float32 rounds it as Keras does)."""
    return x.dtype.type(EPSILON)


def log1p_nonneg(u: np.ndarray) -> np.ndarray:
    """``log(1 + u)`` for ``u >= 0``, accurate to a few ulps, at the cost of one ``log``.

    ``np.log1p`` costs 5-6x ``np.log``. With ``w = fl(1 + u)``, ``log(w) - ((w - 1) - u) / w``
    corrects the rounding of ``1 + u`` to first order (exact when ``w == 1``)."""
    w = 1 + u
    return np.log(w) - ((w - 1) - u) / w


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-x) overflows to inf for x < -709 (float64) and gives exactly 0, the correctly rounded value
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def softplus(x: np.ndarray) -> np.ndarray:
    """``log(1 + e^x)`` without overflow: ``max(x, 0) + log1p(e^-|x|)``."""
    return np.maximum(x, x.dtype.type(0)) + log1p_nonneg(np.exp(-np.abs(x)))


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = 0: the TensorFlow/PyTorch subgradient of |x| at 0."""
    return np.sign(x)



Terms = tuple[np.ndarray, Callable[[], np.ndarray], Callable[[], np.ndarray] | None]


class MeanOverAxis(Loss):
    """A loss whose per-sample value is the mean (or, with ``summed``, the sum) over one axis of
    an elementwise term.

    Subclasses implement ``terms(y_true, y_pred, p) -> (value, d1, d2)``: the elementwise value
    and zero-argument callables for its first and second derivatives with respect to y_pred
    (``d2`` is ``None`` where no Hessian is offered). The mean, its gradient and its Hessian
    diagonal are derived here once.
    """

    hessian = True
    summed = False  # True: sum over the axis instead of the mean (KL divergence)
    grad_factor = 1.0  # a constant factor of d1, applied to the (small) upstream array instead

    def reduce_axis(self, x: np.ndarray, p: dict) -> int:
        if x.ndim == 0:
            return -1
        return normalize_axes(p.get("axis", -1), x.ndim)[0]

    def terms(self, y: np.ndarray, x: np.ndarray, p: dict) -> Terms:
        raise NotImplementedError

    def evaluate(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict) -> Evaluation:
        if y_pred.ndim == 0:  # a single number: treat it as one sample with one value
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        axis = self.reduce_axis(y_pred, p)
        value, d1, d2 = self.terms(y_true, y_pred, p)
        n = y_pred.dtype.type(1 if self.summed else y_pred.shape[axis])
        per_sample = value.sum(axis=axis) if self.summed else value.mean(axis=axis)
        factor = y_pred.dtype.type(self.grad_factor)

        def vjp(up: np.ndarray) -> np.ndarray:
            scale = up / n if self.grad_factor == 1.0 else up * (factor / n)
            return np.expand_dims(scale, axis) * d1()

        def hess(up: np.ndarray) -> np.ndarray:
            return np.expand_dims(up / n, axis) * d2()

        return Evaluation(per_sample, vjp, hess if d2 is not None else None)
