"""Probabilistic losses: cross-entropies, KL divergence and Poisson (Keras semantics).

Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7`` in the computation dtype,
as Keras does; where the clip is active the derivative is 0. Categorical losses on
probabilities renormalise each row (``y_pred / sum(y_pred)``) first, and the gradient includes
that renormalisation.
"""

from __future__ import annotations

import numpy as np

from . import checks
from ._math import MeanOverAxis, Terms, eps_like, log_softmax, sigmoid, softplus
from .errors import DomainError, ShapeError
from .params import BOOL, FLOAT, NON_NEGATIVE, OPTIONAL_INT, UNIT, Param, normalize_axes
from .registry import Evaluation, Loss, register

FROM_LOGITS = Param("from_logits", BOOL, False, "whether y_pred holds logits rather than probabilities")
LABEL_SMOOTHING = Param("label_smoothing", FLOAT, 0.0, "smooth the targets towards uniform by this amount", UNIT)
CLASS_AXIS = Param("axis", "axis", -1, "the class axis")


def clipped_probabilities(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clip(x, eps, 1 - eps)`` in x's dtype, and where the clip is inactive (derivative 1)."""
    eps = eps_like(x)
    hi = x.dtype.type(1) - eps
    return np.clip(x, eps, hi), (x >= eps) & (x <= hi)


def check_rows_positive(x: np.ndarray, axis: int) -> None:
    """Probability rows are renormalised by their sum, which must be positive."""
    checks.check_interval(x, NON_NEGATIVE, "y_pred", "probabilities")
    sums = x.sum(axis=axis)
    if np.any(sums <= 0):
        idx = checks.first_index(sums <= 0)
        raise DomainError(f"y_pred rows along axis {axis} must have a positive sum (they are renormalised); "
                          f"the row at {idx} sums to 0. Send probabilities, or logits with from_logits=true.",
                          ("y_pred", *idx))


@register
class BinaryCrossentropy(MeanOverAxis):
    """Binary cross-entropy, mean over ``axis``. Reference: ``keras.losses.BinaryCrossentropy``."""

    name = "binary_crossentropy"
    aliases = ("bce", "BinaryCrossentropy")
    summary = "Cross-entropy between binary (or soft) labels and probabilities or logits."
    formula = (r"\ell = -\frac{1}{d}\sum_j \big[y_j \log p_j + (1-y_j)\log(1-p_j)\big],\quad "
               r"p = \operatorname{clip}(\hat y, \epsilon, 1-\epsilon)\ \text{or}\ \sigma(\hat y)")
    params = (FROM_LOGITS, LABEL_SMOOTHING, Param("axis", "axis", -1, "axis over which the mean is taken"))
    y_true_doc = "labels in [0, 1] (hard or soft), same shape as y_pred"
    y_pred_doc = "probabilities in [0, 1], or logits with from_logits=true"
    y_true_interval = UNIT
    y_true_kind, y_pred_kind = "binary", "probability"
    notes = ("Label smoothing maps y to y(1-s) + s/2. Probabilities are clipped to [1e-7, 1-1e-7] (gradient 0 "
             "outside); logits use the stable log-sigmoid form.")
    references = {"keras": "keras.losses.BinaryCrossentropy", "pytorch": "torch.nn.BCELoss / torch.nn.BCEWithLogitsLoss",
                  "optax": "optax.losses.sigmoid_binary_cross_entropy"}
    examples = (
        {"y_true": [[0.0], [1.0]], "y_pred": [[0.4], [0.6]]},
        {"y_true": [1, 0, 1, 1], "y_pred": [-5.4, 8.7, -1.2, -4.6], "params": {"from_logits": True}},
    )

    def y_pred_domain(self, p):
        return None if p["from_logits"] else UNIT

    def terms(self, y, x, p) -> Terms:
        one = x.dtype.type(1)
        ls = p["label_smoothing"]
        if ls:
            y = y * (one - x.dtype.type(ls)) + x.dtype.type(0.5 * ls)
        if p["from_logits"]:
            # -y log σ(x) - (1-y) log σ(-x), with log σ(x) = -softplus(-x)
            value = y * softplus(-x) + (one - y) * softplus(x)
            s = lambda: sigmoid(x)  # noqa: E731
            return value, lambda: s() - y, lambda: s() * (one - s())
        pc, inside = clipped_probabilities(x)
        value = -(y * np.log(pc) + (one - y) * np.log(one - pc))
        return (value, lambda: np.where(inside, (pc - y) / (pc * (one - pc)), 0),
                lambda: np.where(inside, y / (pc * pc) + (one - y) / ((one - pc) * (one - pc)), 0))


class _Categorical(Loss):
    """Shared machinery of the softmax cross-entropies over a class axis."""

    hessian = True
    y_pred_doc = "probabilities (each row renormalised to sum 1), or logits with from_logits=true"
    per_sample_doc = "the class axis is reduced: shape y_pred.shape without axis"
    y_pred_kind = "simplex"

    @staticmethod
    def cross_entropy(y: np.ndarray, x: np.ndarray, axis: int, from_logits: bool) -> Evaluation:
        """``-sum(y * log p)`` along ``axis`` with its VJP and diagonal Hessian (y need not be one-hot)."""
        if from_logits:
            logp = log_softmax(x, axis)
            per_sample = -(y * logp).sum(axis=axis)

            def vjp(up):
                total = y.sum(axis=axis, keepdims=True)
                return np.expand_dims(up, axis) * (np.exp(logp) * total - y)

            def hess(up):
                s = np.exp(logp)
                return np.expand_dims(up, axis) * y.sum(axis=axis, keepdims=True) * s * (1 - s)

            return Evaluation(per_sample, vjp, hess)
        total = x.sum(axis=axis, keepdims=True)
        q = x / total
        pc, inside = clipped_probabilities(q)
        per_sample = -(y * np.log(pc)).sum(axis=axis)

        def vjp(up):
            g = np.where(inside, -y / pc, 0)  # d loss / d q
            return np.expand_dims(up, axis) * (g - (g * q).sum(axis=axis, keepdims=True)) / total

        def hess(up):
            # with g = dl/dq, h = d2l/dq2 and dq_k/dx_j = (delta_kj - q_k)/S (derivation in the docs)
            g = np.where(inside, -y / pc, 0)
            h = np.where(inside, y / (pc * pc), 0)
            gq = (g * q).sum(axis=axis, keepdims=True)
            hqq = (h * q * q).sum(axis=axis, keepdims=True)
            return np.expand_dims(up, axis) * (h * (1 - 2 * q) + hqq - 2 * g + 2 * gq) / (total * total)

        return Evaluation(per_sample, vjp, hess)


@register
class CategoricalCrossentropy(_Categorical):
    name = "categorical_crossentropy"
    aliases = ("CategoricalCrossentropy",)
    summary = "Cross-entropy between one-hot (or soft) label rows and predicted class distributions."
    formula = (r"\ell = -\sum_{c} y_c \log p_c,\quad p = \operatorname{clip}\!\left(\frac{\hat y}{\sum_c \hat y_c}, "
               r"\epsilon, 1-\epsilon\right)\ \text{or}\ \operatorname{softmax}(\hat y)")
    params = (FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS)
    y_true_doc = "one-hot or soft label rows in [0, 1], same shape as y_pred"
    y_true_interval = UNIT
    y_true_kind = "one_hot"
    notes = ("Label smoothing maps y to y(1-s) + s/C with C = y_pred.shape[axis]. Probability rows are "
             "renormalised then clipped to [1e-7, 1-1e-7], so [1, 1, 2] with target 2 gives log 2.")
    references = {"keras": "keras.losses.CategoricalCrossentropy",
                  "pytorch": "torch.nn.CrossEntropyLoss (probability targets)",
                  "optax": "optax.losses.softmax_cross_entropy"}
    examples = ({"y_true": [[0, 1, 0], [0, 0, 1]], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]},
                {"y_true": [[1, 0, 0]], "y_pred": [[2.0, 1.0, 0.1]], "params": {"from_logits": True}})

    def prepare(self, y_true, y_pred, p):
        checks.min_rank(y_pred, 1, "y_pred", "classes along axis")
        y_true, y_pred = super().prepare(y_true, y_pred, p)  # same shape, y_true in [0, 1]
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        if not p["from_logits"]:
            check_rows_positive(y_pred, axis)
        return y_true, y_pred

    def y_pred_domain(self, p):
        return None

    def evaluate(self, y_true, y_pred, p):
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        ls = p["label_smoothing"]
        if ls:
            dt = y_pred.dtype.type
            y_true = y_true * (dt(1) - dt(ls)) + dt(ls) / dt(y_pred.shape[axis])
        return self.cross_entropy(y_true, y_pred, axis, p["from_logits"])


@register
class SparseCategoricalCrossentropy(_Categorical):
    name = "sparse_categorical_crossentropy"
    aliases = ("SparseCategoricalCrossentropy",)
    summary = "Cross-entropy between integer class labels and predicted class distributions."
    formula = (r"\ell = -\log p_{y},\quad p = \operatorname{clip}\!\left(\frac{\hat y}{\sum_c \hat y_c}, "
               r"\epsilon, 1-\epsilon\right)\ \text{or}\ \operatorname{softmax}(\hat y)")
    params = (FROM_LOGITS,
              Param("ignore_class", OPTIONAL_INT, None,
                    "a label value to ignore (e.g. -1 or 255 for void pixels); null considers every class"),
              CLASS_AXIS)
    y_true_doc = "integer class labels of shape y_pred.shape without the class axis (or with a trailing 1)"
    per_sample_doc = "one value per label: shape of y_true"
    y_true_kind = "labels"
    notes = ("Entries equal to ignore_class give 0 and are masked: sum_over_batch_size averages over the "
             "valid entries only; an all-ignored input gives 0. Labels outside [0, C) are a 422 "
             "(Keras would silently give 0 or fail).")
    references = {"keras": "keras.losses.SparseCategoricalCrossentropy",
                  "pytorch": "torch.nn.CrossEntropyLoss (class indices)",
                  "optax": "optax.losses.softmax_cross_entropy_with_integer_labels"}
    examples = ({"y_true": [1, 2], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]},
                {"y_true": [[-1, 2]], "y_pred": [[[0.854, 0.698, 0.598], [0.088, 0.86, 0.018]]],
                 "params": {"from_logits": True, "ignore_class": -1}, "reduction": "none"})

    def prepare(self, y_true, y_pred, p):
        checks.min_rank(y_pred, 1, "y_pred", "classes along axis")
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
            y_true = np.squeeze(y_true, axis)  # labels (..., 1) as Keras accepts them
        expected = y_pred.shape[:axis] + y_pred.shape[axis + 1:]
        if y_true.shape != expected:
            raise ShapeError(
                f"y_true has shape {list(y_true.shape)} but sparse labels for y_pred of shape {list(y_pred.shape)} "
                f"(classes on axis {axis}) must have shape {list(expected)} (or with a trailing 1).", ("y_true",))
        labels = checks.as_labels(y_true, "y_true", y_pred.shape[axis], allow=p["ignore_class"])
        if not p["from_logits"]:
            check_rows_positive(y_pred, axis)
        return labels, y_pred

    def evaluate(self, labels, y_pred, p):
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        ignore = p["ignore_class"]
        valid = None
        if ignore is not None:
            valid = labels != ignore
            labels = np.where(valid, labels, 0)
            # ignored rows do not depend on y_pred: replace them by a constant uniform row
            y_pred = np.where(np.expand_dims(valid, axis), y_pred, y_pred.dtype.type(1))
        one_hot = (np.expand_dims(labels, axis) == np.arange(y_pred.shape[axis]).reshape(
            [-1 if i == axis else 1 for i in range(y_pred.ndim)])).astype(y_pred.dtype)
        ev = self.cross_entropy(one_hot, y_pred, axis, p["from_logits"])
        if valid is None:
            return ev
        per_sample = np.where(valid, ev.per_sample, y_pred.dtype.type(0))
        mask_up = lambda f: (lambda up: f(np.where(valid, up, 0)))  # noqa: E731
        return Evaluation(per_sample, mask_up(ev.vjp), mask_up(ev.hess), mask=valid)


@register
class KLDivergence(MeanOverAxis):
    name = "kl_divergence"
    aliases = ("kld", "KLDivergence", "kullback_leibler_divergence")
    summary = "Kullback-Leibler divergence KL(y_true || y_pred), summed over the last axis."
    formula = (r"\ell = \sum_j \tilde y_j \log\frac{\tilde y_j}{\tilde p_j},\quad "
               r"\tilde y = \operatorname{clip}(y, \epsilon, 1),\ \tilde p = \operatorname{clip}(\hat y, \epsilon, 1)")
    y_true_doc = "probability rows in [0, 1], same shape as y_pred"
    y_pred_doc = "probability rows in [0, 1]"
    y_true_interval = UNIT
    y_pred_interval = UNIT
    y_true_kind, y_pred_kind = "simplex", "simplex"
    notes = "A sum over the last axis (not a mean). Both sides are clipped to [1e-7, 1]."
    summed = True
    references = {"keras": "keras.losses.KLDivergence", "pytorch": "torch.nn.KLDivLoss",
                  "optax": "optax.losses.kl_divergence"}
    examples = ({"y_true": [[0, 1], [0, 0]], "y_pred": [[0.6, 0.4], [0.4, 0.6]]},)

    def terms(self, y, x, p) -> Terms:
        eps = eps_like(x)
        one = x.dtype.type(1)
        yc = np.clip(y, eps, one)
        xc = np.clip(x, eps, one)
        value = yc * np.log(yc / xc)
        inside = (x >= eps) & (x <= one)
        return value, lambda: np.where(inside, -yc / xc, 0), lambda: np.where(inside, yc / (xc * xc), 0)


@register
class Poisson(MeanOverAxis):
    name = "poisson"
    aliases = ("Poisson",)
    summary = "Poisson negative log-likelihood (up to a constant) of counts given rates."
    formula = r"\ell = \frac{1}{d}\sum_j \big(\hat y_j - y_j \log(\hat y_j + \epsilon)\big)"
    y_true_doc = "counts >= 0, same shape as y_pred"
    y_pred_doc = "rates >= 0"
    y_true_interval = NON_NEGATIVE
    y_pred_interval = NON_NEGATIVE
    y_true_kind, y_pred_kind = "counts", "positive"
    notes = "Negative rates (NaN in Keras) are a 422. A zero rate gives -y log(1e-7)."
    references = {"keras": "keras.losses.Poisson", "pytorch": "torch.nn.PoissonNLLLoss(log_input=False)",
                  "sklearn": "sklearn.metrics.mean_poisson_deviance (as a deviance)"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [0.0, 0.0]]},)

    def terms(self, y, x, p) -> Terms:
        shifted = x + eps_like(x)
        return (x - y * np.log(shifted), lambda: 1 - y / shifted, lambda: y / (shifted * shifted))

