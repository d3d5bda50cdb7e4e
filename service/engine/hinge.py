"""Margin (hinge) losses on scores, Keras semantics."""

from __future__ import annotations

import numpy as np

from . import checks
from ._math import MeanOverAxis, Terms
from .params import UNIT
from .registry import Evaluation, Loss, register


def hinge_labels(y: np.ndarray) -> np.ndarray:
    """Keras converts {0, 1} labels to {-1, 1}, but only if the *whole* y_true is in {0, 1}."""
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


class _BinaryHinge(MeanOverAxis):
    y_true_doc = "labels in {-1, 1} or {0, 1}, same shape as y_pred"
    y_pred_doc = "scores (real numbers)"
    y_true_kind = "pm1"

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        checks.check_in_set(y_true, (-1.0, 0.0, 1.0), "y_true", "labels in {-1, 1} or {0, 1}")
        return y_true, y_pred


@register
class Hinge(_BinaryHinge):
    name = "hinge"
    aliases = ("Hinge",)
    summary = "Binary hinge loss on scores: mean of max(1 - y * y_pred, 0)."
    formula = r"\ell = \frac{1}{d}\sum_j \max(1 - y'_j \hat y_j, 0),\quad y' = 2y - 1 \text{ if } y \in \{0,1\}"
    notes = ("As in Keras, {0, 1} labels become {-1, 1} only when every element of y_true is 0 or 1 (the "
             "check covers the whole request); mixed rows are used as given. The derivative of max(m, 0) "
             "is 0 at m = 0.")
    references = {"keras": "keras.losses.Hinge", "pytorch": None, "optax": "optax.losses.hinge_loss",
                  "sklearn": "sklearn.metrics.hinge_loss"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 0.4], [0.4, 0.6]]},)

    def terms(self, y, x, p) -> Terms:
        y = hinge_labels(y)
        margin = 1 - y * x
        active = margin > 0
        return (np.maximum(margin, 0), lambda: np.where(active, -y, 0).astype(x.dtype),
                lambda: np.zeros_like(x))


@register
class SquaredHinge(_BinaryHinge):
    name = "squared_hinge"
    aliases = ("SquaredHinge",)
    summary = "Squared binary hinge loss on scores: mean of max(1 - y * y_pred, 0)^2."
    formula = (r"\ell = \frac{1}{d}\sum_j \max(1 - y'_j \hat y_j, 0)^2,\quad "
               r"y' = 2y - 1 \text{ if } y \in \{0,1\}")
    notes = ("As in Keras, {0, 1} labels become {-1, 1} only when every element of y_true is 0 or 1 (the "
             "check covers the whole request); mixed rows are used as given. The loss is differentiable at the "
             "margin; its second derivative 2y'^2 is taken as 0 at m = 0 (the max(m, 0)' = 0 convention).")
    references = {"keras": "keras.losses.SquaredHinge", "pytorch": None, "optax": None,
                  "sklearn": "sklearn.svm.LinearSVC(loss='squared_hinge')"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 0.4], [0.4, 0.6]]},)

    def terms(self, y, x, p) -> Terms:
        y = hinge_labels(y)
        two = x.dtype.type(2)
        margin = np.maximum(1 - y * x, 0)
        active = margin > 0
        return (margin * margin, lambda: -two * y * margin,
                lambda: np.where(active, two * y * y, 0).astype(x.dtype))


@register
class CategoricalHinge(Loss):
    """Crammer-Singer style hinge: ``max(max_j (1 - y_j) x_j - sum_j y_j x_j + 1, 0)``."""

    name = "categorical_hinge"
    aliases = ("CategoricalHinge",)
    summary = "Multiclass hinge loss: the best wrong-class score against the true-class score, plus a margin of 1."
    formula = (r"\ell = \max\!\Big(\max_j (1 - y_j)\hat y_j - \sum_j y_j \hat y_j + 1,\ 0\Big)")
    y_true_doc = "one-hot (or soft) label rows in [0, 1] over the last axis, same shape as y_pred"
    y_pred_doc = "scores (real numbers)"
    per_sample_doc = "the class axis (last) is reduced: shape y_pred.shape[:-1]"
    notes = ("No label conversion (unlike hinge): labels must be in [0, 1]. Note that the 'negative' term is the "
             "max of (1 - y) * y_pred, so the true class contributes 0 to it: with every wrong-class score below 0 "
             "that max is 0, not the best wrong-class score. Gradient: 0 where the loss is 0 (also at the kink); "
             "ties in the max share its gradient equally (TensorFlow's reduce_max rule). The Hessian is 0.")
    references = {"keras": "keras.losses.CategoricalHinge", "pytorch": "torch.nn.MultiMarginLoss (sum over classes)",
                  "optax": "optax.losses.multiclass_hinge_loss (integer labels)",
                  "sklearn": "sklearn.metrics.hinge_loss (multiclass)"}
    hessian = True
    y_true_interval = UNIT
    y_true_kind = "one_hot"
    examples = ({"y_true": [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]], "y_pred": [[0.2, 0.9, 0.4], [0.3, 0.6, -0.1]]},)

    def evaluate(self, y_true, y_pred, p):
        if y_pred.ndim == 0:
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        dt = y_pred.dtype.type
        one = dt(1)
        pos = (y_true * y_pred).sum(axis=-1)
        others = (one - y_true) * y_pred
        neg = others.max(axis=-1)
        margin = neg - pos + one
        per_sample = np.maximum(margin, dt(0))
        active = margin > 0

        def vjp(up):
            ties = others == neg[..., None]
            share = ties / ties.sum(axis=-1, keepdims=True).astype(y_pred.dtype)
            d = share * (one - y_true) - y_true
            return np.where(active, up, 0)[..., None] * d

        return Evaluation(per_sample, vjp, lambda up: np.zeros_like(y_pred))
