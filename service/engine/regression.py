"""Regression losses on real-valued targets (Keras ``keras.losses``).

Each per-sample value is the mean over the last axis of an elementwise term of ``y_true`` and
``y_pred`` (mostly of ``e = y_pred - y_true``); the derivatives below are with respect to ``y_pred``.
"""

from __future__ import annotations

import numpy as np

from . import vecmath as vm
from ._math import AxisSums, MeanOverAxis, Terms, axis_dot, eps_like, exp_neg_abs, log1p_and_reciprocal, sign
from .params import FLOAT, POSITIVE, Param
from .registry import Evaluation, register


@register
class MeanSquaredError(MeanOverAxis):
    """``mean((y_pred - y_true)^2)``. Reference: ``keras.losses.MeanSquaredError``."""

    name = "mean_squared_error"
    aliases = ("mse", "MeanSquaredError")
    summary = "Mean of squared errors over the last axis."
    formula = r"\ell = \frac{1}{d}\sum_{j=1}^{d} (\hat y_j - y_j)^2"
    references = {"keras": "keras.losses.MeanSquaredError", "pytorch": "torch.nn.MSELoss",
                  "optax": "optax.losses.squared_error", "sklearn": "sklearn.metrics.mean_squared_error"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [1.0, 0.0]]},)

    grad_factor = 2.0  # d/dx (x - y)^2 = 2 (x - y): the 2 scales the upstream, not the array

    def terms(self, y, x, p) -> Terms:
        e = x - y
        sums = AxisSums(axis_dot(e, e, self.reduce_axis(x, p)))
        return sums, lambda: e, lambda: np.full_like(x, x.dtype.type(2))


def absolute_error_terms(y: np.ndarray, x: np.ndarray) -> Terms:
    """|x - y| elementwise with its derivatives sign(x - y) (0 at x == y) and 0: Keras's MAE and
    PyTorch's L1 share it, only their axis reduction differs."""
    e = x - y
    return np.abs(e), lambda: sign(e), lambda: np.zeros_like(x)


@register
class MeanAbsoluteError(MeanOverAxis):
    """``mean(|y_pred - y_true|)``; the derivative of |e| at e = 0 is 0."""

    name = "mean_absolute_error"
    aliases = ("mae", "MeanAbsoluteError")
    summary = "Mean of absolute errors over the last axis."
    formula = r"\ell = \frac{1}{d}\sum_{j=1}^{d} |\hat y_j - y_j|"
    notes = "Gradient sign(y_pred - y_true)/d, 0 where y_pred == y_true (TensorFlow/PyTorch convention)."
    references = {"keras": "keras.losses.MeanAbsoluteError", "pytorch": "torch.nn.L1Loss",
                  "sklearn": "sklearn.metrics.mean_absolute_error"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [1.0, 0.0]]},)

    def terms(self, y, x, p) -> Terms:
        return absolute_error_terms(y, x)


@register
class Huber(MeanOverAxis):
    """Quadratic within ``delta`` of the target, linear outside (Huber 1964)."""

    name = "huber"
    aliases = ("huber_loss", "Huber")
    summary = "Huber loss: squared error near the target, absolute error far from it."
    formula = (r"\ell = \frac{1}{d}\sum_j \begin{cases} \tfrac12 e_j^2 & |e_j| \le \delta \\ "
               r"\delta |e_j| - \tfrac12 \delta^2 & \text{otherwise}\end{cases},\quad e = \hat y - y")
    params = (Param("delta", FLOAT, 1.0, "the point where the loss changes from quadratic to linear", POSITIVE),)
    references = {"keras": "keras.losses.Huber", "pytorch": "torch.nn.HuberLoss", "optax": "optax.losses.huber_loss"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 0.4], [0.4, 0.6]], "params": {"delta": 1.0}},)

    def terms(self, y, x, p) -> Terms:
        delta = x.dtype.type(p["delta"])
        e = x - y
        # c = e inside [-delta, delta] and ±delta outside: the value is c (e - c/2) (0.5 e^2 inside,
        # delta |e| - delta^2/2 outside) and the derivative is c, with no branch
        c = np.clip(e, -delta, delta)
        axis = self.reduce_axis(x, p)
        # summed over the axis as c.e - c.c/2: two dot products, no elementwise array
        sums = AxisSums(axis_dot(c, e, axis) - x.dtype.type(0.5) * axis_dot(c, c, axis))
        return sums, lambda: c, lambda: (np.abs(e) <= delta).astype(x.dtype)


@register
class LogCosh(MeanOverAxis):
    """``mean(log(cosh(y_pred - y_true)))``, computed as ``e + softplus(-2e) - log 2``."""

    blocked = True  # long elementwise formula: computed in cache-sized blocks (see MeanOverAxis)
    name = "log_cosh"
    aliases = ("logcosh", "LogCosh")
    summary = "Logarithm of the hyperbolic cosine of the error: ~e^2/2 near 0, ~|e| - log 2 far away."
    formula = r"\ell = \frac{1}{d}\sum_j \log\cosh(\hat y_j - y_j)"
    references = {"keras": "keras.losses.LogCosh", "pytorch": None, "optax": "optax.losses.log_cosh"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [0.0, 0.0]]},)

    def terms(self, y, x, p) -> Terms:
        e = x - y
        one = x.dtype.type(1)
        # log cosh e = |e| + log1p(q) - log 2 with q = e^-2|e| (the same as Keras's e + softplus(-2e) - log 2);
        # tanh e = copysign((1 - q) / (1 + q), e) reuses q and 1 / (1 + q)
        q = exp_neg_abs(e, 2.0)
        value, r = log1p_and_reciprocal(q)
        value += np.abs(e)
        value -= x.dtype.type(np.log(2.0))

        def tanh() -> np.ndarray:
            t = np.subtract(one, q, out=q)
            t *= r
            return np.copysign(t, e, out=t)

        return value, tanh, lambda: one - np.square(vm.tanh(e))


@register
class MeanAbsolutePercentageError(MeanOverAxis):
    """``100 * mean(|(y_true - y_pred) / max(|y_true|, eps)|)``, Keras's percentage error."""

    name = "mean_absolute_percentage_error"
    aliases = ("mape", "MeanAbsolutePercentageError")
    summary = "Mean absolute error relative to the target, in percent, over the last axis."
    formula = (r"\ell = \frac{100}{d}\sum_{j=1}^{d} \left|\frac{y_j - \hat y_j}{\max(|y_j|, \epsilon)}\right|,"
               r"\quad \epsilon = 10^{-7}")
    y_true_doc = "real targets, same shape as y_pred (the denominator |y| is floored at 1e-7)"
    notes = ("As in Keras, |y_true| is floored at 1e-7 rather than rejected, so a zero target gives a huge value "
             "(y_true = [[0, -2]], y_pred = [[1, 1]] gives 5.000001e8), not inf. Gradient "
             "100 sign(y_pred - y_true) / (d max(|y_true|, eps)), 0 where y_pred == y_true; the Hessian is 0.")
    references = {"keras": "keras.losses.MeanAbsolutePercentageError", "pytorch": None, "optax": None,
                  "sklearn": "sklearn.metrics.mean_absolute_percentage_error"}
    y_true_kind, y_pred_kind = "real", "real"
    examples = ({"y_true": [[1.0, 9.0, 2.0], [-5.0, -2.0, 6.0]], "y_pred": [[4.0, 8.0, 12.0], [8.0, 1.0, 3.0]]},)

    def terms(self, y, x, p) -> Terms:
        denom = np.maximum(np.abs(y), eps_like(x))
        return (np.abs((y - x) / denom), lambda: sign(x - y) / denom, lambda: np.zeros_like(x))

    def evaluate_for(self, y_true, y_pred, p, derivatives):
        # Keras takes the mean first and multiplies by 100 afterwards (this order matters in float32)
        ev = super().evaluate_for(y_true, y_pred, p, derivatives)
        hundred = y_pred.dtype.type(100)
        scaled = lambda pull: None if pull is None else (lambda up: pull(hundred * up))
        return Evaluation(hundred * ev.per_sample, scaled(ev.vjp), scaled(ev.hess))


@register
class MeanSquaredLogarithmicError(MeanOverAxis):
    """``mean((log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1))^2)``, as Keras computes it."""

    name = "mean_squared_logarithmic_error"
    aliases = ("msle", "MeanSquaredLogarithmicError")
    summary = "Mean squared difference of log(1 + value), over the last axis; negatives are floored at 1e-7."
    formula = (r"\ell = \frac{1}{d}\sum_{j=1}^{d} \big(\log(\max(\hat y_j, \epsilon) + 1) - "
               r"\log(\max(y_j, \epsilon) + 1)\big)^2,\quad \epsilon = 10^{-7}")
    y_true_doc = "real targets, same shape as y_pred (values below 1e-7 are floored at 1e-7, as Keras does)"
    y_pred_doc = "real numbers (values below 1e-7 are floored at 1e-7)"
    notes = ("Keras floors both sides at eps = 1e-7 instead of rejecting negatives (scikit-learn raises for "
             "values <= -1), and uses log(x + 1), not log1p. Where y_pred <= 1e-7 the floor is active and the "
             "derivative is 0.")
    references = {"keras": "keras.losses.MeanSquaredLogarithmicError", "pytorch": None, "optax": None,
                  "sklearn": "sklearn.metrics.mean_squared_log_error", "xgboost": "reg:squaredlogerror"}
    y_true_kind, y_pred_kind = "real", "positive"
    examples = ({"y_true": [[1.0, 9.0, 2.0], [-5.0, -2.0, 6.0]], "y_pred": [[4.0, 8.0, 12.0], [8.0, 1.0, 3.0]]},)

    def terms(self, y, x, p) -> Terms:
        eps = eps_like(x)
        one = x.dtype.type(1)
        two = x.dtype.type(2)
        xm = np.maximum(x, eps) + one
        diff = vm.log(xm) - vm.log(np.maximum(y, eps) + one)
        active = x > eps  # max(x, eps)' = 0 at the floor and below it
        return (diff * diff, lambda: np.where(active, two * diff / xm, 0),
                lambda: np.where(active, two * (one - diff) / (xm * xm), 0))
