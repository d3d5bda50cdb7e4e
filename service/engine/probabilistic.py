"""Probabilistic losses: cross-entropies, KL divergence and Poisson (Keras semantics).

Probabilities are clipped to ``[eps, 1 - eps]`` with ``eps = 1e-7`` in the computation dtype,
as Keras does; where the clip is active the derivative is 0. Categorical losses on
probabilities renormalise each row (``y_pred / sum(y_pred)``) first, and the gradient includes
that renormalisation.
"""

from __future__ import annotations

import functools

import numpy as np

from . import checks
from . import vecmath as vm
from ._math import (
    MeanOverAxis,
    Terms,
    axis_dot,
    axis_sum,
    eps_like,
    exp_neg_abs,
    log1p_and_reciprocal,
    sigmoid,
    softmax,
)
from .errors import DomainError, ShapeError
from .link import compose_normalised, compose_softmax
from .params import BOOL, FLOAT, FLOAT_OR_FLOATS, NON_NEGATIVE, OPTIONAL_INT, UNIT, UNIT_OPEN, Param, normalize_axes
from .registry import Evaluation, Loss, register

FROM_LOGITS = Param("from_logits", BOOL, False, "whether y_pred holds logits rather than probabilities")
LABEL_SMOOTHING = Param("label_smoothing", FLOAT, 0.0, "smooth the targets towards uniform by this amount", UNIT)


def binary_smoothed(y: np.ndarray, label_smoothing: float) -> np.ndarray:
    """Keras's binary label smoothing, ``y * (1.0 - s) + 0.5 * s``, shared by BCE and binary focal.

    Keras writes both factors as Python floats, so ``1.0 - s`` and ``0.5 * s`` are rounded once from
    double to the loss dtype; computing ``1 - s`` in float32 instead moves float32 results by an ulp."""
    if not label_smoothing:
        return y
    dt = y.dtype.type
    return y * dt(1.0 - label_smoothing) + dt(0.5 * label_smoothing)
CLASS_AXIS = Param("axis", "axis", -1, "the class axis")


def clipped_probabilities(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``clip(x, eps, 1 - eps)`` in x's dtype, and where the clip is inactive (derivative 1)."""
    eps = eps_like(x)
    hi = x.dtype.type(1) - eps
    return np.clip(x, eps, hi), (x >= eps) & (x <= hi)


def check_rows_positive(x: np.ndarray, axis: int) -> None:
    """Probability rows are renormalised by their sum, which must be positive."""
    checks.check_interval(x, NON_NEGATIVE, "y_pred", "probabilities")
    sums = axis_sum(x, axis)
    if np.any(sums <= 0):
        idx = checks.first_index(sums <= 0)
        raise DomainError(f"y_pred rows along axis {axis} must have a positive sum (they are renormalised); "
                          f"the row at {idx} sums to 0. Send probabilities, or logits with from_logits=true.",
                          ("y_pred", *idx))


@register
class BinaryCrossentropy(MeanOverAxis):
    """Binary cross-entropy, mean over ``axis``. Reference: ``keras.losses.BinaryCrossentropy``."""

    blocked = True  # long elementwise formula: computed in cache-sized blocks (see MeanOverAxis)
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
        y = binary_smoothed(y, p["label_smoothing"])
        if p["from_logits"]:
            return self.logit_terms(y, x)
        pc, inside = clipped_probabilities(x)
        value = -(y * vm.log(pc) + (one - y) * vm.log(one - pc))
        return (value, lambda: np.where(inside, (pc - y) / (pc * (one - pc)), 0),
                lambda: np.where(inside, y / (pc * pc) + (one - y) / ((one - pc) * (one - pc)), 0))


    @staticmethod
    def logit_terms(y: np.ndarray, x: np.ndarray) -> Terms:
        """BCE on logits with its derivatives, in few passes over the data (one exp, one log).

        With m = [x >= 0] (by the sign bit, so -0.0 counts as negative), u = e^-|x| and r = 1/(1+u):
        the value -y log σ(x) - (1-y) log σ(-x) = x (m - y) + log1p(u), where x (m - y) is exact for
        hard labels, so the small log1p term is not lost to cancellation in float32; the derivative
        σ(x) - y = (m - y) - copysign(σ(-|x|), x) with σ(-|x|) = u r, accurate for large |x|; and
        σ(x) σ(-x) = σ(-|x|) σ(|x|) = u r^2.
        """
        u = exp_neg_abs(x)
        value, r = log1p_and_reciprocal(u)
        m_minus_y = np.subtract(np.logical_not(np.signbit(x)), y)
        value += np.multiply(x, m_minus_y)

        @functools.cache
        def sigmoid_neg_abs() -> np.ndarray:
            return np.multiply(u, r, out=u)

        def d1() -> np.ndarray:
            signed = np.copysign(sigmoid_neg_abs(), x)
            return np.subtract(m_minus_y, signed, out=signed)

        return value, d1, lambda: sigmoid_neg_abs() * r


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
            shifted = x - x.max(axis=axis, keepdims=True)
            total = axis_sum(y, axis)
            # -sum y (shifted - log S) = sum(y) log S - <y, shifted>: no log-softmax array is materialised
            dot = axis_dot(y, shifted, axis)
            ex = vm.exp(shifted, out=shifted)
            sum_ex = axis_sum(ex, axis)
            per_sample = total * vm.log(sum_ex) - dot

            def vjp(up):
                # softmax * sum(y) * upstream - y * upstream, the exponentials scaled in place
                grad = np.multiply(ex, np.expand_dims(up * total / sum_ex, axis), out=ex)
                grad -= y * np.expand_dims(up, axis)
                return grad

            def hess(up):
                s = softmax(x, axis)  # afresh: the gradient consumed the forward pass's exponentials
                return np.expand_dims(up * total, axis) * s * (1 - s)

            return Evaluation(per_sample, vjp, hess)
        total = axis_sum(x, axis, keepdims=True)
        q = x / total
        pc, inside = clipped_probabilities(q)
        per_sample = -axis_dot(y, vm.log(pc), axis)

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


class _DenseCategorical(_Categorical):
    """Label rows of y_pred's shape (CCE, categorical focal CE): checks and label smoothing."""

    y_true_interval = UNIT

    def prepare(self, y_true, y_pred, p):
        checks.min_rank(y_pred, 1, "y_pred", "classes along axis")
        y_true, y_pred = super().prepare(y_true, y_pred, p)  # same shape, y_true in [0, 1]
        if not p["from_logits"]:
            check_rows_positive(y_pred, normalize_axes(p["axis"], y_pred.ndim)[0])
        return y_true, y_pred

    def y_pred_domain(self, p):
        return None  # probability rows are checked (and renormalised) per row instead

    @staticmethod
    def smoothed(y_true: np.ndarray, y_pred: np.ndarray, p: dict, axis: int) -> np.ndarray:
        """Keras label smoothing: y (1 - s) + s / C with C = y_pred.shape[axis]."""
        ls = p["label_smoothing"]
        if not ls:
            return y_true
        dt = y_pred.dtype.type
        # Keras: y * (1.0 - s) with a Python float, then s / C in the loss dtype
        return y_true * dt(1.0 - ls) + dt(ls) / dt(y_pred.shape[axis])


@register
class CategoricalCrossentropy(_DenseCategorical):
    name = "categorical_crossentropy"
    aliases = ("CategoricalCrossentropy",)
    summary = "Cross-entropy between one-hot (or soft) label rows and predicted class distributions."
    formula = (r"\ell = -\sum_{c} y_c \log p_c,\quad p = \operatorname{clip}\!\left(\frac{\hat y}{\sum_c \hat y_c}, "
               r"\epsilon, 1-\epsilon\right)\ \text{or}\ \operatorname{softmax}(\hat y)")
    params = (FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS)
    y_true_doc = "one-hot or soft label rows in [0, 1], same shape as y_pred"
    y_true_kind = "one_hot"
    notes = ("Label smoothing maps y to y(1-s) + s/C with C = y_pred.shape[axis]. Probability rows are "
             "renormalised then clipped to [1e-7, 1-1e-7], so [1, 1, 2] with target 2 gives log 2.")
    references = {"keras": "keras.losses.CategoricalCrossentropy",
                  "pytorch": "torch.nn.CrossEntropyLoss (probability targets)",
                  "optax": "optax.losses.softmax_cross_entropy"}
    examples = ({"y_true": [[0, 1, 0], [0, 0, 1]], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]},
                {"y_true": [[1, 0, 0]], "y_pred": [[2.0, 1.0, 0.1]], "params": {"from_logits": True}})

    def evaluate(self, y_true, y_pred, p):
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        return self.cross_entropy(self.smoothed(y_true, y_pred, p, axis), y_pred, axis, p["from_logits"])


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

    @staticmethod
    def sparse_logits(labels: np.ndarray, x: np.ndarray, axis: int) -> Evaluation:
        """``logsumexp(x) - x[label]`` without a one-hot matrix: the gradient is the softmax with 1
        taken off at each label."""
        shifted = x - x.max(axis=axis, keepdims=True)
        last = axis == x.ndim - 1
        # labels on the last axis are flat positions (one index per row); other axes take the general route
        positions = _label_positions(labels, x.shape[axis]) if last else None
        index = None if last else np.expand_dims(labels, axis)
        at_label = (np.take(shifted, positions).reshape(labels.shape) if last
                    else np.take_along_axis(shifted, index, axis=axis).squeeze(axis))
        ex = vm.exp(shifted, out=shifted)
        sum_ex = axis_sum(ex, axis)
        per_sample = vm.log(sum_ex) - at_label

        def vjp(up):
            grad = np.multiply(ex, np.expand_dims(up / sum_ex, axis), out=ex)  # the exponentials, scaled in place
            if last:
                np.put(grad, positions, np.take(grad, positions) - up.ravel())
            else:
                up_e = np.expand_dims(up, axis)
                np.put_along_axis(grad, index, np.take_along_axis(grad, index, axis=axis) - up_e, axis=axis)
            return grad

        def hess(up):
            s = softmax(x, axis)  # afresh: the gradient consumed the forward pass's exponentials
            return np.expand_dims(up, axis) * s * (1 - s)

        return Evaluation(per_sample, vjp, hess)

    def evaluate(self, labels, y_pred, p):
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        ignore = p["ignore_class"]
        valid = None
        if ignore is not None:
            valid = labels != ignore
            labels = np.where(valid, labels, 0)
            # ignored rows do not depend on y_pred: replace them by a constant uniform row
            y_pred = np.where(np.expand_dims(valid, axis), y_pred, y_pred.dtype.type(1))
        if p["from_logits"]:
            ev = self.sparse_logits(labels, y_pred, axis)
        else:
            one_hot = (np.expand_dims(labels, axis) == np.arange(y_pred.shape[axis]).reshape(
                [-1 if i == axis else 1 for i in range(y_pred.ndim)])).astype(y_pred.dtype)
            ev = self.cross_entropy(one_hot, y_pred, axis, False)
        if valid is None:
            return ev
        per_sample = np.where(valid, ev.per_sample, y_pred.dtype.type(0))
        mask_up = lambda f: (lambda up: f(np.where(valid, up, 0)))
        return Evaluation(per_sample, mask_up(ev.vjp), mask_up(ev.hess), mask=valid)


@register
class KLDivergence(MeanOverAxis):
    blocked = True  # long elementwise formula: computed in cache-sized blocks (see MeanOverAxis)
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
    axis_reduction = "sum"
    references = {"keras": "keras.losses.KLDivergence", "pytorch": "torch.nn.KLDivLoss",
                  "optax": "optax.losses.kl_divergence"}
    examples = ({"y_true": [[0, 1], [0, 0]], "y_pred": [[0.6, 0.4], [0.4, 0.6]]},)

    def terms(self, y, x, p) -> Terms:
        eps = eps_like(x)
        one = x.dtype.type(1)
        yc = np.clip(y, eps, one)
        xc = np.clip(x, eps, one)
        value = yc * vm.log(yc / xc)
        inside = (x >= eps) & (x <= one)
        return value, lambda: np.where(inside, -yc / xc, 0), lambda: np.where(inside, yc / (xc * xc), 0)


@register
class Poisson(MeanOverAxis):
    blocked = True  # long elementwise formula: computed in cache-sized blocks (see MeanOverAxis)
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
        return (x - y * vm.log(shifted), lambda: 1 - y / shifted, lambda: y / (shifted * shifted))



def _power_term(coef: float, base: np.ndarray, exponent: float) -> np.ndarray | float:
    """``coef * base ** exponent``, exactly 0 when ``coef`` is 0 (so 0 * inf never makes a NaN); a base of 0
    with a negative exponent gives inf, a genuinely unbounded derivative."""
    if coef == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return base.dtype.type(coef) * np.power(base, base.dtype.type(exponent))


FOCAL_GAMMA = Param("gamma", FLOAT, 2.0, "the focusing parameter: 0 gives the plain cross-entropy", NON_NEGATIVE)


@register
class BinaryFocalCrossentropy(MeanOverAxis):
    """Binary focal cross-entropy (Lin et al. 2017), Keras semantics."""

    blocked = True  # long elementwise formula: computed in cache-sized blocks (see MeanOverAxis)
    name = "binary_focal_crossentropy"
    aliases = ("BinaryFocalCrossentropy",)
    summary = "Binary cross-entropy scaled by (1 - p_t)^gamma, which down-weights well-classified entries."
    formula = (r"\ell = \frac{1}{d}\sum_j w_j (1 - p_{t,j})^{\gamma}\,\mathrm{BCE}(y_j, p_j),\quad "
               r"p_t = y p + (1-y)(1-p),\quad w = \alpha y + (1-\alpha)(1-y)\ \text{if balancing, else } 1")
    params = (Param("apply_class_balancing", BOOL, False, "weight class 1 by alpha and class 0 by 1 - alpha"),
              Param("alpha", FLOAT, 0.25, "the weight of class 1 when apply_class_balancing is true", UNIT),
              FOCAL_GAMMA, FROM_LOGITS, LABEL_SMOOTHING,
              Param("axis", "axis", -1, "axis over which the mean is taken"))
    y_true_doc = "labels in [0, 1] (hard or soft), same shape as y_pred"
    y_pred_doc = "probabilities in [0, 1], or logits with from_logits=true"
    y_true_interval = UNIT
    y_true_kind, y_pred_kind = "binary", "probability"
    notes = ("As in Keras: label smoothing maps y to y(1-s) + s/2; with from_logits the sigmoid is applied first "
             "and the clipped probability path follows, so the BCE term uses p clipped to [1e-7, 1-1e-7] (gradient "
             "0 there) while p_t uses the unclipped p. alpha has no effect unless apply_class_balancing is true. "
             "gamma must be >= 0; for gamma < 1 (gradient) or gamma < 2 (Hessian) the derivative is unbounded "
             "where p equals a hard label exactly, and that request is a 422.")
    references = {"keras": "keras.losses.BinaryFocalCrossentropy",
                  "pytorch": "torchvision.ops.sigmoid_focal_loss (logits)",
                  "optax": "optax.losses.sigmoid_focal_loss (logits)"}
    examples = (
        {"y_true": [[1, 0], [1, 0]], "y_pred": [[0.9, 0.8], [0.7, 0.2]], "params": {"gamma": 2.0}},
        {"y_true": [[0, 1], [0, 0]], "y_pred": [[-18.6, 0.51], [2.94, -12.8]], "reduction": "none",
         "params": {"apply_class_balancing": True, "gamma": 5.0, "from_logits": True}},
    )
    test_variants = ({"apply_class_balancing": True, "alpha": 0.6, "from_logits": True, "label_smoothing": 0.1},
                     {"apply_class_balancing": True, "gamma": 0.0},
                     {"gamma": 3.5, "axis": 0, "label_smoothing": 0.2})

    def y_pred_domain(self, p):
        return None if p["from_logits"] else UNIT

    def terms(self, y, x, p) -> Terms:
        dt = x.dtype.type
        one = dt(1)
        y = binary_smoothed(y, p["label_smoothing"])
        prob = sigmoid(x) if p["from_logits"] else x
        pc, inside = clipped_probabilities(prob)
        bce = y * vm.log(pc)
        bce = bce + (one - y) * vm.log(one - pc)
        bce = -bce
        u = np.maximum(one - (y * prob + (one - y) * (one - prob)), dt(0))  # 1 - p_t (>= 0 up to rounding)
        gamma = p["gamma"]
        focal = np.power(u, dt(gamma))
        weight = y * dt(p["alpha"]) + (one - y) * dt(1.0 - p["alpha"]) if p["apply_class_balancing"] else one
        value = weight * (focal * bce)

        def derivatives() -> tuple[np.ndarray, np.ndarray]:
            """First and second derivatives of the value with respect to the probability p."""
            k = one - dt(2) * y  # d(1 - p_t)/dp
            b1 = np.where(inside, (pc - y) / (pc * (one - pc)), 0)
            b2 = np.where(inside, y / (pc * pc) + (one - y) / ((one - pc) * (one - pc)), 0)
            # an infinite focal slope (gamma < 1 or < 2 at p_t = 1) stays non-finite: compute reports it as a 422
            with np.errstate(invalid="ignore", over="ignore"):
                f1 = _power_term(gamma, u, gamma - 1) * k
                f2 = _power_term(gamma * (gamma - 1), u, gamma - 2) * k * k
                return weight * (f1 * bce + focal * b1), weight * (f2 * bce + dt(2) * f1 * b1 + focal * b2)

        def d1():
            l1, _ = derivatives()
            return l1 * (prob * (one - prob)) if p["from_logits"] else l1

        def d2():
            l1, l2 = derivatives()
            if not p["from_logits"]:
                return l2
            s1 = prob * (one - prob)
            return l2 * s1 * s1 + l1 * s1 * (one - dt(2) * prob)

        return value, d1, d2


@register
class CategoricalFocalCrossentropy(_DenseCategorical):
    """Categorical focal cross-entropy (Lin et al. 2017), Keras semantics."""

    name = "categorical_focal_crossentropy"
    aliases = ("CategoricalFocalCrossentropy",)
    summary = "Categorical cross-entropy with each class term scaled by alpha_c (1 - p_c)^gamma."
    formula = (r"\ell = -\sum_c \alpha_c (1 - p_c)^{\gamma}\, y_c \log p_c,\quad "
               r"p = \operatorname{clip}\!\left(\frac{q}{\sum_c q_c}, \epsilon, 1-\epsilon\right),\ "
               r"q = \hat y\ \text{or}\ \operatorname{softmax}(\hat y)")
    params = (Param("alpha", FLOAT_OR_FLOATS, 0.25,
                    "a weight for every class, or one weight per class (a list as long as the class axis)",
                    NON_NEGATIVE),
              FOCAL_GAMMA, FROM_LOGITS, LABEL_SMOOTHING, CLASS_AXIS)
    y_true_doc = "one-hot or soft label rows in [0, 1], same shape as y_pred"
    y_true_kind = "one_hot"
    notes = ("As in Keras: label smoothing maps y to y(1-s) + s/C with C = y_pred.shape[axis]; with from_logits "
             "the softmax is applied first, and rows are always renormalised then clipped to [1e-7, 1-1e-7] "
             "(gradient 0 where the clip is active). alpha is always applied (0.25 by default, so the loss is a "
             "quarter of the unweighted one). The focal factor uses every class's own p, so after label smoothing "
             "it is not the p_t of the true class. A per-class alpha list applies along the class axis and must "
             "be as long as it (Keras broadcasts a list against the last axis whatever axis is; the two agree for "
             "axis=-1).")
    references = {"keras": "keras.losses.CategoricalFocalCrossentropy", "pytorch": None, "optax": None}
    examples = ({"y_true": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
                 "y_pred": [[0.9, 0.05, 0.05], [0.5, 0.89, 0.6], [0.05, 0.01, 0.94]]},
                {"y_true": [[1, 0, 0]], "y_pred": [[4.9, -0.5, 2.05]],
                 "params": {"from_logits": True, "label_smoothing": 0.1, "alpha": [0.5, 0.25, 0.25]}})
    test_variants = ({"alpha": [0.2, 0.5, 0.3]},
                     {"alpha": [0.2, 0.5, 0.3], "from_logits": True, "label_smoothing": 0.1, "gamma": 0.0},
                     {"axis": 0, "from_logits": True, "gamma": 3.0},
                     {"axis": 0, "label_smoothing": 0.3, "gamma": 0.5})

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        alpha = p["alpha"]
        if isinstance(alpha, list) and len(alpha) != y_pred.shape[axis]:
            raise ShapeError(
                f"params.alpha has {len(alpha)} per-class weights but y_pred has {y_pred.shape[axis]} classes along "
                f"axis {p['axis']}; send one weight per class or a single number.", ("params", "alpha"))
        return y_true, y_pred

    def evaluate(self, y_true, y_pred, p):
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        dt = y_pred.dtype.type
        one = dt(1)
        y = self.smoothed(y_true, y_pred, p, axis)
        alpha = p["alpha"]
        if isinstance(alpha, list):
            alpha = np.asarray(alpha, dtype=y_pred.dtype).reshape([-1 if i == axis else 1 for i in range(y_pred.ndim)])
        else:
            alpha = dt(alpha)
        gamma = p["gamma"]
        logits = p["from_logits"]
        s = softmax(y_pred, axis) if logits else y_pred
        total = s.sum(axis=axis, keepdims=True)
        q = s / total
        pc, inside = clipped_probabilities(q)
        log_pc = vm.log(pc)
        cce = -y * log_pc
        modulating = np.power(one - pc, dt(gamma))
        per_sample = ((modulating * alpha) * cce).sum(axis=axis)

        def g_h(second: bool):
            """d/dp and d2/dp2 of each class term at the clipped p (0 where the clip is active)."""
            w = one - pc  # >= eps inside the clip, so every power below is finite
            g = alpha * y * (_power_term(gamma, w, gamma - 1) * log_pc - modulating / pc)
            g = np.where(inside, g, 0)
            if not second:
                return g, None
            h = alpha * y * (-_power_term(gamma * (gamma - 1), w, gamma - 2) * log_pc
                             + dt(2) * _power_term(gamma, w, gamma - 1) / pc + modulating / (pc * pc))
            return g, np.where(inside, h, 0)

        # the chain rule from p to y_pred, through the softmax or through the renormalisation of the rows
        # (which is the identity on softmax outputs), in service/engine/link.py
        chain = ((lambda g, h: compose_softmax(s, g, h, axis)) if logits
                 else (lambda g, h: compose_normalised(q, total, g, h, axis)))

        def vjp(up):
            return np.expand_dims(up, axis) * chain(*g_h(False))[0]

        def hess(up):
            return np.expand_dims(up, axis) * chain(*g_h(True))[1]

        return Evaluation(per_sample, vjp, hess)


def _label_positions(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Flat (row-major) positions of each row's label in an array of shape labels.shape + (n_classes,):
    one index per row, instead of the broadcast index arrays of take_along_axis."""
    return np.arange(0, labels.size * n_classes, n_classes) + labels.ravel()


def _at_labels(positions: np.ndarray, up: np.ndarray, d: np.ndarray, like: np.ndarray) -> np.ndarray:
    """An array like ``like`` holding ``up * d`` at each row's label and 0 elsewhere; a zero
    upstream (weight 0) gives 0 even where ``d`` is infinite."""
    with np.errstate(invalid="ignore"):
        value = np.where(up == 0, 0, np.asarray(up * d)).astype(like.dtype)
    out = np.zeros_like(like)
    np.put(out, positions, value.ravel())
    return out


@register
class CategoricalGeneralizedCrossEntropy(Loss):
    """Generalized cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``."""

    name = "categorical_generalized_cross_entropy"
    aliases = ("CategoricalGeneralizedCrossEntropy",)
    summary = ("Generalized cross-entropy on integer labels: (1 - p_y^q)/q, between cross-entropy (q -> 0) and "
               "mean absolute error (q = 1); robust to noisy labels.")
    formula = r"\ell = \frac{1 - \hat y_{y}^{\,q}}{q},\quad 0 < q < 1"
    params = (Param("q", FLOAT, 0.5, "the interpolation parameter: towards cross-entropy as q -> 0, towards MAE "
                    "as q -> 1", UNIT_OPEN),)
    y_true_doc = "integer class labels of shape y_pred.shape[:-1]"
    y_pred_doc = "probabilities in [0, 1] over the last (class) axis; rows are not renormalised"
    per_sample_doc = "one value per label: shape y_pred.shape[:-1]"
    hessian = True
    y_true_kind, y_pred_kind = "labels", "simplex"
    notes = ("Keras's get() does not know this name (the class must be used directly); here it is registered. "
             "y_true must have shape y_pred.shape[:-1]: Keras silently broadcasts (B, 1) labels against (B, C) "
             "predictions into a (B, B) loss, here that is a 422. No clipping and no from_logits, as in Keras: "
             "a true-class probability of 0 gives 1/q, but its derivative -p^(q-1) is infinite, so a gradient "
             "request there is a 422.")
    references = {"keras": "keras.losses.CategoricalGeneralizedCrossEntropy", "pytorch": None, "optax": None}
    examples = ({"y_true": [0, 1, 0, 1], "y_pred": [[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]],
                 "params": {"q": 0.5}},)
    test_shapes = ((4, 3), (2, 3, 4))

    def prepare(self, y_true, y_pred, p):
        checks.min_rank(y_pred, 1, "y_pred", "classes on the last axis")
        expected = y_pred.shape[:-1]
        if y_true.shape != expected:
            raise ShapeError(
                f"y_true has shape {list(y_true.shape)} but integer labels for y_pred of shape "
                f"{list(y_pred.shape)} (classes on the last axis) must have shape {list(expected)}.", ("y_true",))
        labels = checks.as_labels(y_true, "y_true", y_pred.shape[-1])
        checks.check_interval(y_pred, UNIT, "y_pred", "probabilities")
        return labels, y_pred

    def evaluate(self, labels, y_pred, p):
        dt = y_pred.dtype.type
        q = dt(p["q"])
        positions = _label_positions(labels, y_pred.shape[-1])
        p_y = np.take(y_pred, positions).reshape(labels.shape)
        per_sample = (dt(1) - np.power(p_y, q)) / q

        def vjp(up):
            d = -_power_term(1.0, p_y, p["q"] - 1)  # -inf at p_y = 0: reported by compute as a 422
            return _at_labels(positions, up, d, y_pred)

        def hess(up):
            d = _power_term(1.0 - p["q"], p_y, p["q"] - 2)
            return _at_labels(positions, up, d, y_pred)

        return Evaluation(per_sample, vjp, hess)
