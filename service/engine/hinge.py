"""Margin (hinge) losses on scores, Keras semantics."""

from __future__ import annotations

import numpy as np

from . import checks
from ._math import MeanOverAxis, Terms
from .registry import register


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
