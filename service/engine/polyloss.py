"""PolyLoss (Leng et al. 2022), as Optax's ``poly_loss_cross_entropy`` computes it ("Other losses")."""

from __future__ import annotations

import numpy as np

from . import checks
from . import vecmath as vm
from ._math import log_softmax
from .params import FLOAT, REAL, UNIT, Param
from .registry import Evaluation, Loss, register


@register
class Poly1CrossEntropy(Loss):
    name = "poly1_cross_entropy"
    aliases = ("poly_loss_cross_entropy", "poly1", "PolyLoss")
    family = "other"
    summary = "Poly-1 loss: softmax cross-entropy plus ε times the first polynomial term, Σ y (1 - softmax)."
    formula = (r"\ell = -\sum_c y_c \log p_c + \epsilon \sum_c y_c (1 - p_c),\quad "
               r"p = \operatorname{softmax}(\hat y)")
    params = (Param("epsilon", FLOAT, 2.0, "the coefficient ε of the first polynomial term (Leng et al. recommend "
                                           "2 for ImageNet classification, -1 for detection)", REAL),)
    y_true_doc = "one-hot or soft label rows in [0, 1], same shape as y_pred"
    y_pred_doc = "logits, classes along the last axis"
    per_sample_doc = "the class axis (the last) is reduced: shape y_pred.shape[:-1]"
    y_true_interval = UNIT
    y_true_kind, y_pred_kind = "one_hot", "logits"
    hessian = True
    notes = ("Optax's poly_loss_cross_entropy exactly (axis -1, no where): -Σ y log_softmax(x) + ε Σ y (1 - "
             "softmax(x)); soft rows need not sum to 1 (Optax does not renormalise them). Gradient "
             "S p - y - ε p (y - ⟨y, p⟩) with S = Σ y; Hessian diagonal S p (1 - p) - ε p (y - ⟨y, p⟩)(1 - 2p).")
    references = {"optax": "optax.losses.poly_loss_cross_entropy",
                  "optax_docs": "https://optax.readthedocs.io/en/latest/api/losses.html"
                                "#optax.losses.poly_loss_cross_entropy",
                  "paper": "Leng et al. 2022, PolyLoss: A Polynomial Expansion Perspective of Classification "
                           "Loss Functions (arXiv:2204.12511)"}
    examples = ({"y_true": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], "y_pred": [[1.2, -0.8, -0.5], [0.9, -1.2, 1.1]]},
                {"y_true": [[0.9, 0.05, 0.05]], "y_pred": [[2.0, 1.0, 0.1]], "params": {"epsilon": -1.0}})

    def prepare(self, y_true, y_pred, p):
        checks.min_rank(y_pred, 1, "y_pred", "classes along the last axis")
        return super().prepare(y_true, y_pred, p)

    def evaluate(self, y, x, p) -> Evaluation:
        dt = x.dtype.type
        epsilon = dt(p["epsilon"])
        log_p = log_softmax(x, axis=-1)
        prob = vm.exp(log_p)
        total = y.sum(axis=-1, keepdims=True)  # S: 1 for one-hot rows
        per_sample = -(y * log_p).sum(axis=-1) + epsilon * (y * (dt(1) - prob)).sum(axis=-1)
        centred = y - (y * prob).sum(axis=-1, keepdims=True)  # y - <y, p>

        def vjp(up):
            return up[..., None] * (total * prob - y - epsilon * prob * centred)

        def hess(up):
            return up[..., None] * (total * prob * (dt(1) - prob) - epsilon * prob * centred * (dt(1) - dt(2) * prob))

        return Evaluation(per_sample, vjp, hess)
