"""The "Other losses" of the seed articles and the peers: regression and classification losses under
their own names, Keras-style requests (``sample_weight``, Keras's reductions, default
``sum_over_batch_size``), each matching its peer where one computes the same quantity.

scikit-learn's metrics average over samples: ``sum_over_batch_size`` of the per-sample values is the
unweighted metric and ``mean_with_sample_weight`` the weighted one (``np.average(..., weights=w)``);
scripts/metrics_reference.py records the metrics themselves and tests/test_metrics_reference.py
holds the service to them. x is y_pred, y is y_true, e = x - y.
"""

from __future__ import annotations

import numpy as np

from . import checks, sampling
from ._math import AxisSums, Elementwise, MeanOverAxis, Terms, axis_dot, sign
from .errors import ShapeError
from .params import AXES, FLOAT, NON_NEGATIVE, OPTIONAL_FLOAT, POSITIVE, REAL, UNIT, UNIT_OPEN, Interval, Param, normalize_axes
from .registry import Evaluation, Loss, register

SKLEARN_DOCS = "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.{}.html"
KERAS_REGULARIZERS_DOCS = "https://keras.io/api/layers/regularizers/"
XGBOOST_OBJECTIVES_DOCS = "https://xgboost.readthedocs.io/en/stable/parameter.html#learning-task-parameters"
SCIKIT_WEIGHTS = ("scikit-learn's weighted metric is reduction mean_with_sample_weight (sum of w * value over the sum "
                  "of w); its unweighted one is the default sum_over_batch_size.")


def sklearn_refs(metric: str, **more: str) -> dict[str, str | None]:
    return {"sklearn": f"sklearn.metrics.{metric}", "sklearn_docs": SKLEARN_DOCS.format(metric), **more}


class _Other(Loss):
    family = "other"


class _OtherMean(_Other, MeanOverAxis):
    per_sample_doc = "the last axis is averaged: shape y_pred.shape[:-1] (a (N, 1) column gives one value per sample)"


@register
class Quantile(_OtherMean):
    name = "quantile"
    aliases = ("pinball", "pinball_loss")
    summary = "Quantile (pinball) loss: under-predictions weigh q, over-predictions 1 - q; q = 0.5 is half the MAE."
    formula = (r"\ell = \frac{1}{d}\sum_j q\,\max(-e_j, 0) + (1 - q)\max(e_j, 0),\quad e = \hat y - y")
    params = (Param("quantile", FLOAT, 0.5, "the quantile q the prediction targets", UNIT_OPEN),)
    notes = ("Matches scikit-learn's mean_pinball_loss(alpha=q) (multioutput='uniform_average' for (N, d) inputs). "
             + SCIKIT_WEIGHTS + " Gradient (1 - q) where y_pred > y_true, -q where y_pred < y_true, 0 at a tie "
             "(max(x, 0)' = 0 at 0); the Hessian is 0.")
    references = sklearn_refs("mean_pinball_loss", paper="Koenker & Bassett 1978, Regression Quantiles",
                              xgboost="reg:quantileerror", lightgbm="quantile")
    examples = ({"y_true": [[1.0, 2.0], [3.0, 4.0]], "y_pred": [[1.5, 1.0], [3.0, 5.0]], "params": {"quantile": 0.9}},)

    def terms(self, y, x, p) -> Terms:
        q = x.dtype.type(p["quantile"])
        one_minus_q = x.dtype.type(1) - q
        e = x - y
        over = e > 0
        value = np.where(over, one_minus_q * e, -q * e)
        return value, lambda: np.where(over, one_minus_q, np.where(e < 0, -q, x.dtype.type(0))), lambda: np.zeros_like(x)


@register
class ZeroOne(_Other):
    name = "zero_one"
    aliases = ("zero_one_loss",)
    summary = "Zero-one loss: 1 for a misclassified sample (any wrong label of its row), 0 otherwise."
    formula = (r"\ell_i = \mathbb{1}[\exists j: \hat c_{ij} \ne y_{ij}],\quad \hat c = \hat y\ "
               r"\text{or}\ \mathbb{1}[\hat y > t]\ \text{with a threshold}")
    params = (Param("threshold", OPTIONAL_FLOAT, None, "null: y_pred holds labels; a number t: y_pred holds scores, "
                                                        "labelled 1 where y_pred > t and 0 elsewhere"),)
    y_true_doc = ("integer labels, shape (N,) (one label per sample) or (N, L) (a row of labels per sample); in {0, 1} "
                  "when a threshold is given")
    y_pred_doc = "integer labels shaped like y_true, or real scores with params.threshold"
    per_sample_doc = "(N,): 1 where the sample (its whole row, for (N, L)) is wrong, else 0"
    notes = ("Matches scikit-learn's zero_one_loss(normalize=True): a multilabel row counts as correct only if every "
             "label is; " + SCIKIT_WEIGHTS + " scikit-learn takes only 0/1 indicator rows for (N, L); any integer "
             "labels are compared here. Not differentiable: the response's gradient is null, a Hessian is not "
             "offered, and /v1/grade refuses to grade a gradient for it.")
    references = sklearn_refs("zero_one_loss")
    differentiable = False
    hessian = False
    without_hessian = "it is not differentiable: a step function of y_pred, flat wherever it has a derivative"
    y_true_kind = y_pred_kind = "binary"
    sample_shape = (6,)
    examples = ({"y_true": [1, 2, 3, 4], "y_pred": [1, 2, 0, 4]},
                {"y_true": [[1, 0, 1], [0, 1, 1]], "y_pred": [[0.9, 0.2, 0.7], [0.6, 0.8, 0.3]],
                 "params": {"threshold": 0.5}})

    def sample_pred_kind(self, p):
        return "real" if p["threshold"] is not None else "binary"

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        if y_pred.ndim not in (1, 2):
            raise ShapeError(f"y_pred must be labels of shape (N,) or (N, L); got shape {list(y_pred.shape)}.",
                             ("y_pred",))
        checks.as_labels(y_true, "y_true", None)
        if p["threshold"] is None:
            checks.as_labels(y_pred, "y_pred", None)
        else:
            checks.check_in_set(y_true, (0.0, 1.0), "y_true", "binary labels when params.threshold is given")
        return y_true, y_pred

    def evaluate(self, y_true, y_pred, p):
        predicted = y_pred if p["threshold"] is None else (y_pred > y_pred.dtype.type(p["threshold"]))
        wrong = predicted != y_true
        if wrong.ndim == 2:
            wrong = wrong.any(axis=1)
        return Evaluation(wrong.astype(y_pred.dtype), None)


@register
class FBeta(_Other):
    name = "fbeta"
    aliases = ("fbeta_loss",)
    summary = "Soft F-beta loss: one minus the F-beta score of probabilities, balancing precision and recall."
    formula = (r"\ell = 1 - \frac{(1 + \beta^2) P R}{\beta^2 P + R + \epsilon},\ P = \frac{TP}{TP + FP + \epsilon},\ "
               r"R = \frac{TP}{TP + FN + \epsilon},\ TP = \sum y \hat y,\ FP = \sum (1 - y)\hat y,\ "
               r"FN = \sum y (1 - \hat y)")
    params = (Param("beta", FLOAT, 1.0, "the weight of recall against precision (beta = 1: F1)", NON_NEGATIVE),
              Param("epsilon", FLOAT, 1e-7, "added to each denominator, as the seed's custom_fbeta_loss does",
                    NON_NEGATIVE),
              Param("axis", AXES, None, "the axes summed over: null for all (one value for the whole batch, as the "
                                        "seed computes it), an axis, or a list of axes"))
    y_true_doc = "labels in [0, 1] (hard or soft), same shape as y_pred"
    y_pred_doc = "probabilities in [0, 1]"
    per_sample_doc = ("the axes in axis are reduced: a scalar for the default axis=null, shape (B,) for axis = every "
                      "axis but the first")
    notes = ("The seed article's custom_fbeta_loss, epsilon where it puts it (each of the three denominators). "
             "With the default axis=null the loss is one number for the whole batch, so sample_weight can only "
             "scale it and every reduction returns it. The gradient and Hessian diagonal are exact: as TP + FP = "
             "sum(y_pred) and TP + FN = sum(y_true), F is (1 + beta^2) TP^2 / (beta^2 TP (TP + FN + eps) + "
             "TP (TP + FP + eps) + eps (TP + FP + eps)(TP + FN + eps)), a function of TP and sum(y_pred). "
             "epsilon = 0 with no true positive is 0/0: a 422.")
    references = {"seed": "custom_fbeta_loss (soft F-beta, the seed articles)", "keras": None,
                  "paper": "van Rijsbergen 1979, Information Retrieval (the F-measure)"}
    hessian = True
    y_true_interval = UNIT
    y_pred_interval = UNIT
    y_true_kind, y_pred_kind = "binary", "probability"
    test_variants = ({"axis": -1}, {"axis": [0, -1], "beta": 2.0}, {"axis": 0, "beta": 0.5})
    test_shapes = ((4, 3), (2, 3, 2))
    examples = ({"y_true": [[1, 0, 1, 0], [0, 1, 0, 1]], "y_pred": [[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.1, 0.6]]},
                {"y_true": [[1, 0, 1, 0], [0, 1, 0, 1]], "y_pred": [[0.9, 0.2, 0.7, 0.1], [0.3, 0.8, 0.1, 0.6]],
                 "params": {"beta": 2.0, "axis": -1}, "reduction": "none"})

    def evaluate(self, y_true, y_pred, p):
        if y_pred.ndim == 0:
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        axes = normalize_axes(p["axis"], y_pred.ndim)
        dt = y_pred.dtype.type
        one, eps, b2 = dt(1), dt(p["epsilon"]), dt(p["beta"]) ** 2
        k = one + b2
        y, x = y_true, y_pred
        tp = (y * x).sum(axis=axes, keepdims=True)
        fp = ((one - y) * x).sum(axis=axes, keepdims=True)
        fn = (y * (one - x)).sum(axis=axes, keepdims=True)
        a, b = tp + fp + eps, tp + fn + eps  # d a / d x_j = 1, b does not depend on y_pred
        precision, recall = tp / a, tp / b
        f = k * precision * recall / (b2 * precision + recall + eps)
        per_sample = (one - f).reshape([n for i, n in enumerate(x.shape) if i not in axes])
        # f = k tp^2 / den, den = b2 b tp + a tp + eps a b; derivatives in (tp, a): d tp/d x_j = y_j, d a/d x_j = 1
        den = b2 * b * tp + a * tp + eps * a * b
        den_t, den_a = b2 * b + a, tp + eps * b
        f_t = (dt(2) * k * tp - f * den_t) / den
        f_a = -f * den_a / den

        def vjp(up):
            return -np.expand_dims(up, axes) * (f_t * y + f_a)

        def hess(up):
            f_tt = (dt(2) * k - dt(2) * f_t * den_t) / den
            f_ta = -(f_t * den_a + f_a * den_t + f) / den
            f_aa = -dt(2) * f_a * den_a / den
            return -np.expand_dims(up, axes) * ((f_tt * y + dt(2) * f_ta) * y + f_aa)

        return Evaluation(per_sample, vjp, hess)


class _Penalty(_Other):
    params = (Param("factor", FLOAT, 0.01, "the regularization factor (Keras's l1 / l2)", NON_NEGATIVE),)
    y_true_required = False
    align_ranks = False
    hessian = True
    y_true_doc = "unused (may be omitted; any array sent is ignored)"
    y_pred_doc = "the tensor penalised (weights or activations), any shape"
    per_sample_doc = "a scalar: the penalty of the whole tensor"
    notes = ("A scalar, as Keras's regularizer returns and as the seed's layer passes it to add_loss (which adds it to "
             "the model's loss unreduced): every reduction returns that scalar (times a scalar sample_weight; a "
             "weight array broadcasts it, as Keras's reduction would).")
    examples = ({"y_pred": [[1.0, -2.0], [0.5, 0.0]], "params": {"factor": 0.1}},)

    def prepare(self, y_true, y_pred, p):
        return None, y_pred

    def sample(self, rng, shape, p, decimals=None):
        # y_true is unused: a placeholder of zeros keeps the exercise's shape simple
        return {"y_true": np.zeros(shape[:1]), "y_pred": sampling.draw("real", rng, shape, decimals)}


@register
class L1Penalty(_Penalty):
    name = "l1_penalty"
    summary = "L1 penalty: factor times the sum of absolute values of the tensor (Keras regularizers.L1)."
    formula = r"\ell = \lambda \sum_j |x_j|"
    notes = _Penalty.notes + " Gradient factor * sign(x), 0 at 0; the Hessian is 0."
    references = {"keras": "keras.regularizers.L1", "keras_docs": KERAS_REGULARIZERS_DOCS,
                  "seed": "the seed article's L1 activity-regularization layer (self.add_loss(rate * sum(|x|)))"}

    def evaluate(self, y_true, x, p):
        factor = x.dtype.type(p["factor"])
        per_sample = np.asarray(factor * np.abs(x).sum(dtype=x.dtype), dtype=x.dtype)
        return Evaluation(per_sample, lambda up: (up * factor) * sign(x), lambda up: np.zeros_like(x))


@register
class L2Penalty(_Penalty):
    name = "l2_penalty"
    summary = "L2 penalty: factor times the sum of squares of the tensor (Keras regularizers.L2; no 1/2)."
    formula = r"\ell = \lambda \sum_j x_j^2"
    notes = _Penalty.notes + " Keras's L2 has no 1/2: the gradient is 2 factor x and the Hessian 2 factor."
    references = {"keras": "keras.regularizers.L2", "keras_docs": KERAS_REGULARIZERS_DOCS,
                  "seed": "the L2 counterpart of the seed's add_loss layer"}

    def evaluate(self, y_true, x, p):
        factor = x.dtype.type(p["factor"])
        two_factor = x.dtype.type(2) * factor
        flat = x.reshape(-1)
        per_sample = np.asarray(factor * np.dot(flat, flat), dtype=x.dtype)
        return Evaluation(per_sample, lambda up: (up * two_factor) * x, lambda up: np.full_like(x, up * two_factor))


@register
class PseudoHuber(_OtherMean):
    name = "pseudo_huber"
    aliases = ("pseudohuber", "pseudo_huber_loss")
    summary = "Pseudo-Huber loss: a smooth Huber, ~e^2/2 near 0 and ~delta |e| far away."
    formula = r"\ell = \frac{1}{d}\sum_j \delta^2\Big(\sqrt{1 + (e_j/\delta)^2} - 1\Big),\quad e = \hat y - y"
    params = (Param("delta", FLOAT, 1.0, "the slope of the linear tails (XGBoost's huber_slope)", POSITIVE),)
    notes = ("XGBoost's reg:pseudohubererror with huber_slope = delta: its gradient e / sqrt(1 + (e/delta)^2) and "
             "Hessian 1 / (1 + (e/delta)^2)^(3/2) are the derivatives here (times 1/d for the mean). The value is "
             "computed as e^2 / (sqrt(1 + (e/delta)^2) + 1), the same number without the cancellation of "
             "sqrt(...) - 1 near e = 0. XGBoost's metric mphe is its weighted mean (reduction "
             "mean_with_sample_weight on a (N, 1) column).")
    references = {"xgboost": "reg:pseudohubererror (eval metric mphe)", "xgboost_docs": XGBOOST_OBJECTIVES_DOCS,
                  "paper": "Charbonnier et al. 1997, Deterministic edge-preserving regularization"}
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 3.0], [0.4, -2.0]], "params": {"delta": 1.0}},)

    def terms(self, y, x, p) -> Terms:
        delta = x.dtype.type(p["delta"])
        one = x.dtype.type(1)
        e = x - y
        u = e / delta
        root = np.sqrt(one + u * u)
        return e * e / (root + one), lambda: e / root, lambda: one / (root * root * root)


class _Deviance(_OtherMean):
    """The unit deviance of a Tweedie distribution with mean y_pred, exactly as scikit-learn's
    ``_mean_tweedie_deviance`` computes it (its special cases p = 0, 1, 2 and its domains)."""

    y_true_doc = "observations in the domain of the power (see notes)"
    y_pred_doc = "predicted means (> 0 except for power 0)"
    hessian = True

    def power(self, p: dict) -> float:
        return p["power"]

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        power = self.power(p)
        why = f"{self.name} with power {power:g}, as scikit-learn's mean_tweedie_deviance"
        if power != 0:
            checks.check_interval(y_pred, POSITIVE, "y_pred", f"(predicted means) of {why}")
        if 1 <= power < 2:
            checks.check_interval(y_true, NON_NEGATIVE, "y_true", f"(observations) of {why}")
        elif power >= 2:
            checks.check_interval(y_true, POSITIVE, "y_true", f"(observations) of {why}")
        return y_true, y_pred

    def terms(self, y, mu, p) -> Terms:
        dt = mu.dtype.type
        power = self.power(p)
        pw, one, two = dt(power), dt(1), dt(2)
        if power == 0:
            e = mu - y
            return e * e, lambda: two * e, lambda: np.full_like(mu, two)
        if power == 1:
            # xlogy(y, y / mu): 0 where y == 0
            ratio = np.where(y > 0, y / mu, one)
            value = two * (np.where(y > 0, y * np.log(ratio), dt(0)) - y + mu)
        elif power == 2:
            value = two * (np.log(mu / y) + y / mu - one)
        else:
            y_pos = np.where(y > 0, y, dt(0)) if power < 0 else y
            value = two * (np.power(y_pos, two - pw) / ((one - pw) * (two - pw))
                           - y * np.power(mu, one - pw) / (one - pw) + np.power(mu, two - pw) / (two - pw))
        # d/dmu = 2 mu^-p (mu - y), d2/dmu2 = 2 mu^-p ((1 - p) + p y / mu): one formula for every power.
        # The power is computed when a derivative is asked for, once: a value-only request (scikit-learn's
        # metric) would pay a pass of pow, the costliest operation here, for nothing
        scales: list[np.ndarray] = []

        def scale() -> np.ndarray:
            if not scales:
                scales.append(two * np.power(mu, -pw))
            return scales[0]

        return value, lambda: scale() * (mu - y), lambda: scale() * ((one - pw) + pw * y / mu)


@register
class TweedieDeviance(_Deviance):
    name = "tweedie_deviance"
    aliases = ("mean_tweedie_deviance",)
    summary = "Tweedie unit deviance for a power p: squared error (0), Poisson (1), Gamma (2) and between."
    formula = (r"d(y, \mu) = 2\Big(\frac{\max(y, 0)^{2-p}}{(1-p)(2-p)} - \frac{y\,\mu^{1-p}}{1-p} + "
               r"\frac{\mu^{2-p}}{2-p}\Big);\ p = 0: (y - \mu)^2;\ p = 1: 2(y\log\frac{y}{\mu} - y + \mu);\ "
               r"p = 2: 2(\log\frac{\mu}{y} + \frac{y}{\mu} - 1)")
    params = (Param("power", FLOAT, 0.0, "the Tweedie power p (no Tweedie distribution has 0 < p < 1)", REAL,
                    excluded=Interval(0.0, 1.0, low_inclusive=False, high_inclusive=False)),)
    notes = ("Matches scikit-learn's mean_tweedie_deviance(power=p), its domains included: p < 0 needs y_pred > 0; "
             "p = 0 takes any reals; 1 <= p < 2 needs y_true >= 0 and y_pred > 0; p >= 2 needs both > 0 (a 422 "
             "otherwise, where scikit-learn raises); 0 < p < 1 is a 422 (scikit-learn refuses it too). "
             + SCIKIT_WEIGHTS + " scikit-learn takes 1-D arrays only: send them as (N, 1) columns for one value "
             "per sample. The derivatives in y_pred: 2 mu^-p (mu - y) and 2 mu^-p ((1 - p) + p y / mu).")
    references = sklearn_refs("mean_tweedie_deviance", paper="Jørgensen 1987, Exponential dispersion models")
    y_true_kind, y_pred_kind = "counts", "positive"
    test_variants = ({"power": 1.0}, {"power": 1.5}, {"power": 2.0}, {"power": 3.0}, {"power": -1.0})
    examples = ({"y_true": [[2.0], [0.0], [1.0], [4.0]], "y_pred": [[0.5], [0.5], [2.0], [2.0]],
                 "params": {"power": 1.5}},)

    def sample(self, rng, shape, p, decimals=None):
        """y_true by the power's domain (``real`` for p <= 0, ``counts`` for 1 <= p < 2, ``positive`` for
        p >= 2), then y_pred ``positive`` (``real`` for p = 0)."""
        power = p["power"]
        true_kind = "real" if power <= 0 else "counts" if power < 2 else "positive"
        return {"y_true": sampling.draw(true_kind, rng, shape, decimals),
                "y_pred": sampling.draw("real" if power == 0 else "positive", rng, shape, decimals)}


@register
class PoissonDeviance(_Deviance):
    name = "poisson_deviance"
    aliases = ("mean_poisson_deviance",)
    summary = "Poisson deviance 2 (y log(y / mu) - y + mu): the Tweedie deviance with power 1."
    formula = r"d(y, \mu) = 2\Big(y \log\frac{y}{\mu} - y + \mu\Big)\quad (0 \log 0 = 0)"
    notes = ("Matches scikit-learn's mean_poisson_deviance: y_true >= 0 and y_pred > 0 (a 422 otherwise). "
             + SCIKIT_WEIGHTS + " Keras's poisson (y_pred - y log y_pred) differs from half of this by terms in "
             "y alone, so the two have proportional gradients.")
    references = sklearn_refs("mean_poisson_deviance")
    y_true_kind, y_pred_kind = "counts", "positive"
    examples = ({"y_true": [[2.0], [0.0], [1.0], [4.0]], "y_pred": [[0.5], [0.5], [2.0], [2.0]]},)

    def power(self, p):
        return 1.0


@register
class GammaDeviance(_Deviance):
    name = "gamma_deviance"
    aliases = ("mean_gamma_deviance",)
    summary = "Gamma deviance 2 (log(mu / y) + y / mu - 1): the Tweedie deviance with power 2."
    formula = r"d(y, \mu) = 2\Big(\log\frac{\mu}{y} + \frac{y}{\mu} - 1\Big)"
    notes = "Matches scikit-learn's mean_gamma_deviance: y_true > 0 and y_pred > 0 (a 422 otherwise). " + SCIKIT_WEIGHTS
    references = sklearn_refs("mean_gamma_deviance")
    y_true_kind, y_pred_kind = "positive", "positive"
    examples = ({"y_true": [[2.0], [0.5], [1.0], [4.0]], "y_pred": [[0.5], [0.5], [2.0], [2.0]]},)

    def power(self, p):
        return 2.0


@register
class Brier(_Other, Elementwise):
    name = "brier"
    aliases = ("brier_score", "brier_score_loss")
    summary = "Brier score: the squared distance between the predicted probabilities and the labels, summed over classes."
    formula = r"\ell = \sum_{k=1}^{K} (\hat y_k - y_k)^2"
    axis_reduction = "sum"
    y_true_doc = "one-hot or soft label rows, shape (..., K); for the binary score, a (N, 1) column of labels in {0, 1}"
    y_pred_doc = "probability rows (..., K) in [0, 1]; for the binary score, a (N, 1) column of P(positive class)"
    per_sample_doc = "the class (last) axis is summed: shape y_pred.shape[:-1]"
    notes = ("Brier's own definition, summed over the last axis. scikit-learn 1.9's brier_score_loss(y_true, "
             "y_proba, *, sample_weight=None, pos_label=None, labels=None, scale_by_half='auto') takes class labels "
             "and one probability column per class (or one column for the positive class): for K >= 3 "
             "classes it is the mean of this (labels sent here one-hot); for the binary score send a (N, 1) column "
             "of positive-class probabilities, which gives (p - y)^2, scikit-learn's binary value. scikit-learn "
             "halves two-column input (scale_by_half='auto'), so a (N, 2) row here is twice its binary score (and "
             "equal to scale_by_half=False). " + SCIKIT_WEIGHTS + " Rows are not required to sum to 1 (scikit-learn "
             "warns). Gradient 2 (y_pred - y_true), Hessian 2.")
    references = sklearn_refs("brier_score_loss", paper="Brier 1950, Verification of forecasts expressed in terms of "
                                                        "probability")
    y_true_interval = UNIT
    y_pred_interval = UNIT
    y_true_kind, y_pred_kind = "one_hot", "simplex"
    grad_factor = 2.0
    examples = ({"y_true": [[0, 1, 0], [1, 0, 0]], "y_pred": [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]},
                {"y_true": [[1], [0], [1]], "y_pred": [[0.9], [0.2], [0.4]]})

    def terms(self, y, x, p) -> Terms:
        e = x - y
        return AxisSums(axis_dot(e, e, -1)), lambda: e, lambda: np.full_like(x, x.dtype.type(2))


@register
class Expectile(_OtherMean):
    name = "expectile"
    aliases = ("expectile_loss",)
    summary = "Expectile loss: squared error weighted tau above the prediction and 1 - tau below it (tau = 0.5: MSE/2)."
    formula = (r"\ell = \frac{1}{d}\sum_j \big|\tau - \mathbb{1}[y_j - \hat y_j < 0]\big|\,(y_j - \hat y_j)^2")
    params = (Param("expectile", FLOAT, 0.5, "the expectile tau the prediction targets", UNIT_OPEN),)
    notes = ("Newey & Powell's asymmetric least squares: the weight is tau where y_true >= y_pred and 1 - tau where "
             "y_true < y_pred. Gradient 2 w (y_pred - y_true), Hessian 2 w (its jump at y_pred = y_true takes the "
             "tau side). XGBoost's reg:expectileerror (expectile_alpha) computes the same weight on its gradient "
             "(w e) and Hessian (w), which are half of these.")
    references = {"paper": "Newey & Powell 1987, Asymmetric least squares estimation and testing",
                  "xgboost": "reg:expectileerror (expectile_alpha, XGBoost >= 3.3)", "xgboost_docs": XGBOOST_OBJECTIVES_DOCS}
    examples = ({"y_true": [[1.0, 2.0], [3.0, 4.0]], "y_pred": [[1.5, 1.0], [3.0, 5.0]], "params": {"expectile": 0.9}},)

    def terms(self, y, x, p) -> Terms:
        dt = x.dtype.type
        tau = dt(p["expectile"])
        e = x - y
        weight = np.where(e > 0, dt(1) - tau, tau)  # y - y_pred < 0 exactly where e > 0
        two_w = dt(2) * weight
        return weight * e * e, lambda: two_w * e, lambda: two_w
