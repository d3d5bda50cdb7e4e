"""Regression losses on real-valued targets (Keras ``keras.losses``).

Each per-sample value is the mean over the last axis of an elementwise term of
``e = y_pred - y_true``; the derivatives below are with respect to ``y_pred``.
"""

from __future__ import annotations

import numpy as np

from ._math import MeanOverAxis, Terms, sign, softplus
from .params import FLOAT, POSITIVE, Param
from .registry import register


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

    def terms(self, y, x, p) -> Terms:
        e = x - y
        two = x.dtype.type(2)
        return e * e, lambda: two * e, lambda: np.full_like(x, two)


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
        e = x - y
        return np.abs(e), lambda: sign(e), lambda: np.zeros_like(x)


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
        half = x.dtype.type(0.5)
        e = x - y
        a = np.abs(e)
        inside = a <= delta
        value = np.where(inside, half * e * e, delta * a - half * delta * delta)
        return (value, lambda: np.where(inside, e, delta * sign(e)),
                lambda: inside.astype(x.dtype))


@register
class LogCosh(MeanOverAxis):
    """``mean(log(cosh(y_pred - y_true)))``, computed as ``e + softplus(-2e) - log 2``."""

    name = "log_cosh"
    aliases = ("logcosh", "LogCosh")
    summary = "Logarithm of the hyperbolic cosine of the error: ~e^2/2 near 0, ~|e| - log 2 far away."
    formula = r"\ell = \frac{1}{d}\sum_j \log\cosh(\hat y_j - y_j)"
    references = {"keras": "keras.losses.LogCosh", "pytorch": None, "optax": "optax.losses.log_cosh"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [0.0, 0.0]]},)

    def terms(self, y, x, p) -> Terms:
        e = x - y
        two = x.dtype.type(2)
        value = e + softplus(-two * e) - x.dtype.type(np.log(2.0))
        t = lambda: np.tanh(e)  # noqa: E731 - shared by both derivatives
        return value, t, lambda: 1 - t() ** 2
