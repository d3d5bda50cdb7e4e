"""Segmentation losses (Dice, Tversky), Keras semantics.

Both are ratios of sums over ``axis``: ``None`` (the default, as in Keras) sums over every axis and
gives one value for the whole batch; an axis or a list of axes gives one value per remaining index
(``axis=[1, 2, 3]`` on ``(B, H, W, 1)`` masks gives one value per image). Nothing is clipped, so
soft or out-of-range inputs give whatever the formula gives (the loss can be negative).

Both have the form ``1 - T / D`` with ``T`` and ``D`` linear in ``y_pred`` along the summed axes,
so the derivative is ``(T c_j - t_j D) / D^2`` (``t_j = dT/dx_j``, ``c_j = dD/dx_j``) and, since
that numerator does not depend on ``x_j``, the diagonal of the Hessian is ``-2 c_j g_j / D``.
"""

from __future__ import annotations

import numpy as np

from ._math import eps_like
from .params import AXES, FLOAT, NON_NEGATIVE, Param, normalize_axes
from .registry import Evaluation, Loss, register

AXIS = Param("axis", AXES, None, "the axes summed over: null for all (one value for the whole batch), an axis, "
             "or a list of axes")


class _Overlap(Loss):
    hessian = True
    y_true_doc = "target masks (typically in [0, 1]; not checked, as in Keras), same shape as y_pred"
    y_pred_doc = "predicted masks or probabilities (not clipped)"
    per_sample_doc = ("the axes in axis are reduced: a scalar for the default axis=null, shape (B,) for axis = every "
                      "axis but the first")
    y_true_kind, y_pred_kind = "binary", "probability"
    test_variants = ({"axis": -1}, {"axis": [0, -1]}, {"axis": 0})
    test_shapes = ((4, 3), (2, 3, 2))

    def ratio(self, y, x, axes, p) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[float, float]]:
        """``T`` and ``D`` (summed with keepdims) and their slopes in ``y_pred``, which are affine in
        ``y``: ``dT/dx = a_t y + b_t`` and ``dD/dx = a_c y + b_c``, given as ``(a_t, b_t), (a_c, b_c)``."""
        raise NotImplementedError

    def evaluate(self, y_true, y_pred, p):
        axes = normalize_axes(p["axis"], y_pred.ndim)
        t_sum, d_sum, (a_t, b_t), (a_c, b_c) = self.ratio(y_true, y_pred, axes, p)
        dt = y_pred.dtype.type
        per_sample = (dt(1) - t_sum / d_sum).reshape([n for i, n in enumerate(y_pred.shape) if i not in axes])
        d2 = d_sum * d_sum
        # d(1 - T/D)/dx = (T dD/dx - D dT/dx) / D^2 = A y + B with per-sample A and B
        coef_y = (t_sum * dt(a_c) - dt(a_t) * d_sum) / d2
        coef_1 = (t_sum * dt(b_c) - dt(b_t) * d_sum) / d2

        def vjp(up):
            up_e = np.expand_dims(up, axes)
            return (up_e * coef_y) * y_true + up_e * coef_1

        def hess(up):
            slope_d = dt(a_c) * y_true + dt(b_c)
            return np.expand_dims(up, axes) * (-dt(2) * slope_d * (coef_y * y_true + coef_1) / d_sum)

        return Evaluation(per_sample, vjp, hess)


@register
class Dice(_Overlap):
    name = "dice"
    aliases = ("Dice",)
    summary = "Dice loss: one minus the soft Dice coefficient (2 |A ∩ B| / (|A| + |B|)) over the summed axes."
    formula = (r"\ell = 1 - \frac{2\sum_j y_j \hat y_j}{\sum_j y_j + \sum_j \hat y_j + \epsilon},\quad "
               r"\epsilon = 10^{-7}")
    params = (AXIS,)
    notes = ("As in Keras, the default axis=null sums over the whole batch and gives one scalar (so "
             "sample_weight can only scale it); use axis=[1, ..., n] for one value per sample. Nothing is clipped: "
             "y_true = [[1, 2], [1, 2]] with y_pred = [[4, 1], [6, 1]] gives -0.5556.")
    references = {"keras": "keras.losses.Dice", "pytorch": None,
                  "optax": "optax.losses.dice_loss (smooth=1, per class)"}
    examples = ({"y_true": [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]],
                 "y_pred": [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]],
                 "params": {"axis": [1, 2, 3]}, "reduction": "none"},
                {"y_true": [[1, 0, 1, 0], [0, 1, 0, 1]], "y_pred": [[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.1, 0.6]]})

    def ratio(self, y, x, axes, p):
        two = x.dtype.type(2)
        intersection = (y * x).sum(axis=axes, keepdims=True)
        denominator = y.sum(axis=axes, keepdims=True) + x.sum(axis=axes, keepdims=True) + eps_like(x)
        return two * intersection, denominator, (2.0, 0.0), (0.0, 1.0)


@register
class Tversky(_Overlap):
    name = "tversky"
    aliases = ("Tversky",)
    summary = ("Tversky loss: a Dice loss that weights false positives by alpha and false negatives by beta "
               "(alpha = beta = 0.5 is Dice).")
    formula = (r"\ell = 1 - \frac{TP}{TP + \alpha FP + \beta FN + \epsilon},\quad TP = \sum_j y_j \hat y_j,\ "
               r"FP = \sum_j (1 - y_j)\hat y_j,\ FN = \sum_j y_j (1 - \hat y_j)")
    params = (Param("alpha", FLOAT, 0.5, "the weight of false positives", NON_NEGATIVE),
              Param("beta", FLOAT, 0.5, "the weight of false negatives", NON_NEGATIVE),
              AXIS)
    notes = ("Keras 3 semantics (Salehi et al. 2017): alpha weights false positives (1 - y) y_pred and beta false "
             "negatives y (1 - y_pred); some older Keras 3 releases swapped the two and had no axis. The default "
             "axis=null gives one scalar for the whole batch. Nothing is clipped, so the loss can be negative.")
    references = {"keras": "keras.losses.Tversky", "pytorch": None,
                  "optax": "optax.losses.dice_loss (alpha, beta; smooth=1, per class)"}
    examples = ({"y_true": [[1, 0, 1, 0], [0, 1, 0, 1]], "y_pred": [[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.1, 0.6]],
                 "params": {"alpha": 0.3, "beta": 0.7}},
                {"y_true": [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [1.0]], [[0.0], [0.0]]]],
                 "y_pred": [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]],
                 "params": {"alpha": 0.2, "beta": 0.8, "axis": [1, 2, 3]}, "reduction": "none"})
    test_variants = _Overlap.test_variants + ({"alpha": 0.1, "beta": 0.9, "axis": -1},)

    def ratio(self, y, x, axes, p):
        dt = x.dtype.type
        one = dt(1)
        alpha, beta = dt(p["alpha"]), dt(p["beta"])
        tp = (y * x).sum(axis=axes, keepdims=True)
        fp = ((one - y) * x).sum(axis=axes, keepdims=True)
        fn = (y * (one - x)).sum(axis=axes, keepdims=True)
        denominator = tp + alpha * fp + beta * fn + eps_like(x)
        # dD/dx = y + alpha (1 - y) - beta y = (1 - alpha - beta) y + alpha
        return tp, denominator, (1.0, 0.0), (1.0 - p["alpha"] - p["beta"], p["alpha"])
