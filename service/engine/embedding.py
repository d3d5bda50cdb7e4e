"""Similarity and embedding losses."""

from __future__ import annotations

import numpy as np

from ._math import eps_like
from .params import Param, normalize_axes
from .registry import Evaluation, Loss, register


def l2_normalize(v: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras's ``normalize``: ``v * rsqrt(max(sum(v^2), eps^2))``.

    Returns the normalised array, the inverse norm used, and where the floor is inactive (there
    the inverse norm depends on ``v``)."""
    eps = eps_like(v)
    square_sum = (v * v).sum(axis=axis, keepdims=True)
    inv = 1 / np.sqrt(np.maximum(square_sum, eps * eps))
    return v * inv, inv, square_sum > eps * eps


@register
class CosineSimilarity(Loss):
    name = "cosine_similarity"
    aliases = ("CosineSimilarity",)
    summary = "Negative cosine similarity: -1 for identical directions, +1 for opposite ones."
    formula = r"\ell = -\sum_j \frac{y_j}{\lVert y\rVert}\,\frac{\hat y_j}{\lVert \hat y\rVert}"
    params = (Param("axis", "axis", -1, "the axis along which the similarity is computed"),)
    y_true_doc = "real vectors, same shape as y_pred"
    y_pred_doc = "real vectors"
    per_sample_doc = "the similarity axis is reduced: shape y_pred.shape without axis"
    notes = ("Norms are floored at 1e-7 (Keras: v * rsqrt(max(sum v^2, eps^2))), so a zero vector gives 0. "
             "The Keras metric CosineSimilarity returns +cos; this loss returns -cos.")
    references = {"keras": "keras.losses.CosineSimilarity", "pytorch": "torch.nn.CosineEmbeddingLoss (pairs)",
                  "optax": "optax.losses.cosine_similarity"}
    examples = ({"y_true": [[0.0, 1.0], [1.0, 1.0]], "y_pred": [[1.0, 0.0], [1.0, 1.0]], "params": {"axis": 1}},)

    def evaluate(self, y_true, y_pred, p):
        if y_pred.ndim == 0:
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        yn, _, _ = l2_normalize(y_true, axis)
        xn, inv, active = l2_normalize(y_pred, axis)
        per_sample = -(yn * xn).sum(axis=axis)

        def vjp(up):
            g = -yn * np.expand_dims(up, axis)
            projection = np.where(active, (g * xn).sum(axis=axis, keepdims=True) * xn, 0)
            return inv * (g - projection)

        return Evaluation(per_sample, vjp)
