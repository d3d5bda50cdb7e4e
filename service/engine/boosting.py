"""The gradient-boosting objectives (``sklearn.*``): scikit-learn's ``sklearn/_loss`` losses.

Each takes the **raw prediction** (the score a booster adds trees to) and gives scikit-learn's
per-sample loss, gradient and Hessian with respect to it (``loss``, ``gradient_hessian``), its
branches and deliberate approximations included: the link is merged into the formula (as
``_loss.pyx.tp`` does, for speed and stability), so ``half_binomial`` never forms a probability
that rounds to 1. Like scikit-learn's Cython, which evaluates every sample in double precision,
a float32 request is computed in float64 and rounded once at the end.

Reductions and ``sample_weight`` are Keras's: scikit-learn multiplies loss, gradient and Hessian
by the weight, which is what ``reduction: "sum"`` returns (each sample's value only depends on its
own raw prediction), and its ``__call__`` (the weighted average) is ``mean_with_sample_weight``.

``params.hessian`` chooses between scikit-learn's Hessian (``"sklearn"``, what a booster consumes)
and the true second derivative (``"exact"``); they differ for the absolute error and the pinball
loss only, where scikit-learn puts 1 in place of 0. Each loss names its link (``service/engine/
link.py``); tests/test_boosting.py checks that the loss on its natural scale composed with that
link gives the same raw-scale derivatives.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from . import checks
from .errors import ShapeError
from .link import HALF_LOGIT, IDENTITY, LOG, LOGIT, Link
from .params import CHOICE, FLOAT, NON_NEGATIVE, POSITIVE, REAL, UNIT, UNIT_OPEN, Interval, Param
from .registry import Evaluation, Loss, register
from ._math import Elementwise, Terms

SKLEARN_DOCS = "https://github.com/scikit-learn/scikit-learn/blob/main/sklearn/_loss/loss.py"
HESSIAN = Param("hessian", CHOICE, "sklearn",
                "which Hessian to return: scikit-learn's (what its gradient boosting consumes) or the exact second "
                "derivative (0 where the loss is piecewise linear)", choices=("sklearn", "exact"))
POSITIVE_OPEN = Interval(0.0, math.inf, low_inclusive=False)
WEIGHTS_NOTE = ("sample_weight multiplies loss, gradient and Hessian, as in scikit-learn: reduction \"sum\" returns "
                "each sample's gradient and Hessian times its weight (what XGBoost, LightGBM and scikit-learn's "
                "HistGradientBoosting consume), \"mean_with_sample_weight\" is scikit-learn's loss(...) call (the "
                "weighted average).")


def sklearn_names(snake: str, cls: str) -> tuple[str, tuple[str, ...], dict[str, str | None]]:
    """(canonical name, aliases, references) of ``sklearn._loss.loss.<cls>``. The dotted class name
    ``sklearn.HalfSquaredError`` is the same key as ``sklearn.half_squared_error`` (names compare without
    case and separators); the long form and the bare snake name are aliases where no other loss owns them."""
    aliases = (f"sklearn.{cls}", f"sklearn._loss.{cls}", f"sklearn._loss.loss.{cls}")
    return f"sklearn.{snake}", aliases, {"sklearn": f"sklearn._loss.loss.{cls}", "sklearn_source": SKLEARN_DOCS}


def _f64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64, copy=False)


class _Objective(Elementwise):
    """One value per sample from ``y_true`` (n,) and the raw prediction (n,).

    Subclasses implement ``pointwise(y, r, p) -> (value, gradient, hessian)`` in float64, as
    scikit-learn's ``closs_*`` and ``cgrad_hess_*``; ``exact_hessian`` is scikit-learn's where the two
    agree (``approximate_hessian = False``)."""

    family = "gradient-boosting"
    group = "boosting"
    align_ranks = False
    sample_shape = (8,)
    link: ClassVar[Link] = IDENTITY
    approximate_hessian: ClassVar[bool] = False
    hessian_note: ClassVar[str] = ""
    y_true_doc = "targets, shape (n,)"
    y_pred_doc = "raw predictions (the booster's scores, before the inverse link), shape (n,)"
    per_sample_doc = "one value per sample: shape (n,), as scikit-learn's loss(...) returns"
    test_variants = ({"hessian": "exact"},)
    work_doc = "2 x y_pred.size (computed in float64 whatever the dtype, as scikit-learn does, and rounded once)"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "hessian_note" in cls.__dict__:
            cls.notes = f"Link: {cls.link.name}, {cls.link_formula()}. {cls.hessian_note} {WEIGHTS_NOTE}"

    @classmethod
    def link_formula(cls) -> str:
        return {"identity": "the raw prediction is the mean", "log": "mean = exp(raw)",
                "logit": "probability = expit(raw)", "half_logit": "probability = expit(2 raw)"}[cls.link.name]

    def y_true_domain(self, p: dict) -> Interval | None:
        return self.y_true_interval

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 1 or y_true.shape != y_pred.shape:
            raise ShapeError(f"{self.name} takes y_true and y_pred of shape [n] (one target and one raw prediction "
                             f"per sample); got y_true {list(y_true.shape)} and y_pred {list(y_pred.shape)}.",
                             ("y_pred" if y_pred.ndim != 1 else "y_true",))
        domain = self.y_true_domain(p)
        if domain is not None:
            checks.check_interval(y_true, domain, "y_true")
        raw = self.y_pred_domain(p)
        if raw is not None:
            checks.check_interval(y_pred, raw, "y_pred", "raw predictions")
        return y_true, y_pred

    def work(self, y_true, y_pred, p):
        # every request is computed in float64 (as scikit-learn's Cython): a float32 one builds arrays twice
        # the size that BYTES_PER_WORK["float32"] counts per value, so each value counts as two
        return 2 * int(y_pred.size)

    def hessian_is_second_derivative(self, p):
        return p["hessian"] == "exact" or not self.approximate_hessian

    def pointwise(self, y: np.ndarray, r: np.ndarray, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def exact_hessian(self, y: np.ndarray, r: np.ndarray, hess: np.ndarray) -> np.ndarray:
        return hess

    def terms(self, y, x, p) -> Terms:
        y64, r64 = _f64(y), _f64(x)
        value, grad, hess = self.pointwise(y64, r64, p)
        if p["hessian"] == "exact":
            hess = self.exact_hessian(y64, r64, hess)
        dt = x.dtype
        # every pointwise Hessian is a fresh array of x's shape: in float64 it is handed over as it is
        # (scaled in place by the reduction), not copied
        full = hess.shape == x.shape
        return (value.astype(dt, copy=False), lambda: grad.astype(dt, copy=False),
                lambda: hess.astype(dt, copy=False) if full else np.broadcast_to(hess, x.shape).astype(dt))


@register
class HalfSquaredError(_Objective):
    name, aliases, references = sklearn_names("half_squared_error", "HalfSquaredError")
    summary = "Half squared error on the raw prediction (identity link): scikit-learn's 'squared_error'."
    formula = r"\ell_i = \tfrac12 (r_i - y_i)^2,\quad g_i = r_i - y_i,\quad h_i = 1"
    params = (HESSIAN,)
    hessian_note = "The Hessian is 1, exact: a Newton step is the residual itself."
    examples = ({"y_true": [1.0, 2.0, 0.5], "y_pred": [0.5, 2.5, 0.0], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        e = r - y
        return 0.5 * e * e, e, np.ones_like(r)


@register
class AbsoluteError(_Objective):
    name, aliases, references = sklearn_names("absolute_error", "AbsoluteError")
    summary = "Absolute error on the raw prediction: gradient ±1, and scikit-learn's Hessian 1 instead of 0."
    formula = (r"\ell_i = |r_i - y_i|,\quad g_i = \begin{cases}1 & r_i > y_i\\ -1 & r_i \le y_i\end{cases},"
               r"\quad h_i = 1\ (\text{sklearn})\ \text{or}\ 0\ (\text{exact})")
    params = (HESSIAN,)
    approximate_hessian = True
    hessian_note = ("scikit-learn's Hessian is 1 (approx_hessian), not the true 0: a zero Hessian makes the Newton "
                    "step -G/H undefined, and a constant one turns it into a gradient step (the leaf value is then "
                    "the mean sign; scikit-learn recomputes leaves as medians afterwards). hessian \"exact\" gives 0. "
                    "The gradient is -1 at r == y (scikit-learn's branch), not 0.")
    examples = ({"y_true": [1.0, 2.0, 0.5], "y_pred": [0.5, 2.5, 0.5], "reduction": "sum"},
                {"y_true": [1.0, 2.0], "y_pred": [0.5, 2.5], "reduction": "sum", "params": {"hessian": "exact"}})

    def pointwise(self, y, r, p):
        return np.abs(r - y), np.where(r > y, 1.0, -1.0), np.ones_like(r)

    def exact_hessian(self, y, r, hess):
        return np.zeros_like(r)


@register
class PinballLoss(_Objective):
    name, aliases, references = sklearn_names("pinball_loss", "PinballLoss")
    summary = "Pinball (quantile) loss on the raw prediction; scikit-learn's Hessian 1 instead of 0."
    formula = (r"\ell_i = \begin{cases} q (y_i - r_i) & y_i \ge r_i \\ (1-q)(r_i - y_i) & \text{otherwise}\end{cases},"
               r"\quad g_i = \begin{cases}-q & y_i \ge r_i\\ 1-q & \text{otherwise}\end{cases},\quad h_i = 1\ "
               r"(\text{sklearn})\ \text{or}\ 0")
    params = (Param("quantile", FLOAT, 0.5, "the quantile q the raw prediction estimates", UNIT_OPEN), HESSIAN)
    approximate_hessian = True
    hessian_note = ("scikit-learn's Hessian is 1 (approx_hessian), not the true 0: a constant Hessian makes the "
                    "Newton step a gradient step, which a booster can take, where 0 would divide by zero "
                    "(scikit-learn then recomputes each leaf as a weighted quantile). hessian \"exact\" gives 0.")
    examples = ({"y_true": [1.0, 2.0, 0.5], "y_pred": [0.5, 2.5, 0.0], "params": {"quantile": 0.9},
                 "reduction": "sum"},)

    def pointwise(self, y, r, p):
        q = p["quantile"]
        below = y >= r
        return (np.where(below, q * (y - r), (1.0 - q) * (r - y)), np.where(below, -q, 1.0 - q),
                np.ones_like(r))

    def exact_hessian(self, y, r, hess):
        return np.zeros_like(r)


@register
class HuberLoss(_Objective):
    name, aliases, references = sklearn_names("huber_loss", "HuberLoss")
    summary = "Huber loss on the raw prediction (scikit-learn's HuberLoss with a fixed delta)."
    formula = (r"\ell_i = \begin{cases} \tfrac12 e_i^2 & |e_i| \le \delta \\ \delta(|e_i| - \tfrac12\delta) & "
               r"\text{otherwise}\end{cases},\quad e = r - y,\quad g_i = \operatorname{clip}(e_i, -\delta, \delta),"
               r"\quad h_i = [|e_i| \le \delta]")
    params = (Param("delta", FLOAT, 0.5, "where the loss turns from quadratic to linear (the class's default; "
                    "HistGradientBoosting's quantile-driven update of delta is not part of the loss)", POSITIVE),
              HESSIAN)
    hessian_note = ("scikit-learn's Hessian is the true one wherever it exists: 1 for |e| <= delta, 0 outside "
                    "(so hessian \"exact\" gives the same numbers). scikit-learn still flags it approx_hessian: an "
                    "outlier contributes gradient ±delta and no curvature, so a leaf of outliers has a Newton step "
                    "of -G/0, and it recomputes leaf values after each tree.")
    examples = ({"y_true": [1.0, 2.0, 0.5], "y_pred": [0.8, 3.5, 0.0], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        delta = p["delta"]
        e = r - y
        a = np.abs(e)
        inside = a <= delta
        value = np.where(inside, 0.5 * a * a, delta * (a - 0.5 * delta))
        # clip(e, -delta, delta) is e inside and ±delta outside, exactly as the two branches: one pass, not three
        return value, np.clip(e, -delta, delta), inside.astype(np.float64)


@register
class HalfPoisson(_Objective):
    name, aliases, references = sklearn_names("half_poisson", "HalfPoissonLoss")
    summary = "Half Poisson deviance with log link, constant terms dropped: exp(r) - y r."
    formula = r"\ell_i = e^{r_i} - y_i r_i,\quad g_i = e^{r_i} - y_i,\quad h_i = e^{r_i}"
    params = (HESSIAN,)
    link = LOG
    y_true_doc = "counts or rates y >= 0, shape (n,)"
    y_true_interval = NON_NEGATIVE
    y_true_kind = "counts"
    hessian_note = "The Hessian exp(r) is exact (the Poisson variance at the predicted mean)."
    examples = ({"y_true": [0.0, 2.0, 5.0], "y_pred": [0.1, 0.5, 1.5], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        mu = np.exp(r)
        return mu - y * r, mu - y, mu


@register
class HalfGamma(_Objective):
    name, aliases, references = sklearn_names("half_gamma", "HalfGammaLoss")
    summary = "Half Gamma deviance with log link, constant terms dropped: r + y exp(-r)."
    formula = r"\ell_i = r_i + y_i e^{-r_i},\quad g_i = 1 - y_i e^{-r_i},\quad h_i = y_i e^{-r_i}"
    params = (HESSIAN,)
    link = LOG
    y_true_doc = "positive targets y > 0, shape (n,)"
    y_true_interval = POSITIVE_OPEN
    y_true_kind = "positive"
    hessian_note = "The Hessian y exp(-r) is exact."
    examples = ({"y_true": [0.5, 2.0, 5.0], "y_pred": [0.1, 0.5, 1.5], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        t = y * np.exp(-r)
        return r + t, 1.0 - t, t


def tweedie_y_domain(power: float) -> Interval:
    """scikit-learn's interval_y_true for Tweedie: real for power <= 0, y >= 0 below 2, y > 0 from 2."""
    return REAL if power <= 0 else NON_NEGATIVE if power < 2 else POSITIVE_OPEN


TWEEDIE_POWER = Param("power", FLOAT, 1.5, "the Tweedie power p (0: normal, 1: Poisson, 2: Gamma; y's domain "
                      "follows it: real for p <= 0, y >= 0 for 0 < p < 2, y > 0 for p >= 2)")


@register
class HalfTweedie(_Objective):
    name, aliases, references = sklearn_names("half_tweedie", "HalfTweedieLoss")
    summary = "Half Tweedie deviance with log link, constant terms dropped (Poisson at p = 1, Gamma at p = 2)."
    formula = (r"\ell_i = \frac{e^{(2-p) r_i}}{2-p} - y_i \frac{e^{(1-p) r_i}}{1-p},\quad g_i = e^{(2-p) r_i} - "
               r"y_i e^{(1-p) r_i},\quad h_i = (2-p) e^{(2-p) r_i} - (1-p) y_i e^{(1-p) r_i}")
    params = (TWEEDIE_POWER, HESSIAN)
    link = LOG
    y_true_doc = "targets y >= 0 for the default power 1.5 (real for p <= 0, y > 0 for p >= 2), shape (n,)"
    y_true_kind = "counts"
    hessian_note = ("The Hessian is exact. p = 0 is 0.5 (exp(r) - y)^2, p = 1 the Poisson and p = 2 the Gamma "
                    "formula, as scikit-learn branches; the dropped constants make the loss discontinuous in p.")
    test_variants = ({"hessian": "exact"}, {"power": 0.0}, {"power": 1.0}, {"power": 2.0}, {"power": 3.0})
    examples = ({"y_true": [0.0, 2.0, 5.0], "y_pred": [0.1, 0.5, 1.5], "reduction": "sum"},)

    def y_true_domain(self, p):
        return tweedie_y_domain(p["power"])

    def sample(self, rng, shape, p, decimals=None):
        out = super().sample(rng, shape, p, decimals)
        if p["power"] >= 2:  # y > 0
            out["y_true"] = out["y_true"] + 1.0
        return out

    def pointwise(self, y, r, p):
        power = p["power"]
        if power == 0:
            m = np.exp(r)
            return 0.5 * (m - y) ** 2, m * (m - y), m * (2 * m - y)
        if power == 1:
            return HalfPoisson.pointwise(self, y, r, p)
        if power == 2:
            return HalfGamma.pointwise(self, y, r, p)
        e1, e2 = np.exp((1 - power) * r), np.exp((2 - power) * r)
        return (e2 / (2 - power) - y * e1 / (1 - power), e2 - y * e1, (2 - power) * e2 - (1 - power) * y * e1)


@register
class HalfTweedieIdentity(_Objective):
    name, aliases, references = sklearn_names("half_tweedie_identity", "HalfTweedieLossIdentity")
    summary = "Half Tweedie deviance with identity link, constants kept (its minimum is 0)."
    formula = (r"\ell_i = \frac{r_i^{2-p}}{2-p} - y_i \frac{r_i^{1-p}}{1-p} + \frac{y_i^{2-p}}{(1-p)(2-p)},\quad "
               r"g_i = r_i^{-p}(r_i - y_i),\quad h_i = r_i^{-p}\big((1-p) + p\, y_i / r_i\big)")
    params = (TWEEDIE_POWER, HESSIAN)
    y_true_doc = "targets y >= 0 for the default power 1.5 (real for p <= 0, y > 0 for p >= 2), shape (n,)"
    y_pred_doc = "raw predictions = the predicted means, > 0 (any real number for power 0), shape (n,)"
    y_true_kind, y_pred_kind = "counts", "positive"
    hessian_note = ("The Hessian is exact. p = 0, 1 and 2 use scikit-learn's closed forms (squared error, "
                    "y log(y/r) + r - y, log(r/y) + y/r - 1); the y^(2-p) term is left out for y = 0.")
    test_variants = ({"hessian": "exact"}, {"power": 0.0}, {"power": 1.0}, {"power": 2.0}, {"power": 3.0})
    examples = ({"y_true": [0.0, 2.0, 5.0], "y_pred": [0.5, 1.5, 4.0], "reduction": "sum"},)

    def y_true_domain(self, p):
        return tweedie_y_domain(p["power"])

    def y_pred_domain(self, p):
        return REAL if p["power"] == 0 else POSITIVE_OPEN

    def sample(self, rng, shape, p, decimals=None):
        out = super().sample(rng, shape, p, decimals)
        if p["power"] >= 2:
            out["y_true"] = out["y_true"] + 1.0
        return out

    def pointwise(self, y, r, p):
        power = p["power"]
        if power == 0:
            e = r - y
            return 0.5 * e * e, e, np.ones_like(r)
        if power == 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                value = np.where(y == 0, r, y * np.log(y / r) + r - y)
            return value, 1.0 - y / r, y / (r * r)
        if power == 2:
            r2 = r * r
            return np.log(r / y) + y / r - 1.0, (r - y) / r2, (-1.0 + 2.0 * y / r) / r2
        t = np.power(r, 1 - power)
        value = r * t / (2 - power) - y * t / (1 - power)
        value += np.where(y > 0, np.power(y, 2 - power) / ((1 - power) * (2 - power)), 0.0)
        s = np.power(r, -power)
        return value, s * (r - y), s * ((1 - power) + power * y / r)


def _log1pexp(r: np.ndarray) -> np.ndarray:
    """scikit-learn's log(1 + e^r), by its five branches (Mächler's log1mexp note, eq. 10)."""
    out = np.empty_like(r)
    a, b, c, d = r <= -37, (r > -37) & (r <= -2), (r > -2) & (r <= 18), (r > 18) & (r <= 33.3)
    out[a] = np.exp(r[a])
    out[b] = np.log1p(np.exp(r[b]))
    out[c] = np.log(1.0 + np.exp(r[c]))
    out[d] = r[d] + np.exp(-r[d])
    rest = r > 33.3
    out[rest] = r[rest]
    return out


@register
class HalfBinomial(_Objective):
    name, aliases, references = sklearn_names("half_binomial", "HalfBinomialLoss")
    summary = "Half binomial deviance (log loss) with logit link: log(1 + e^r) - y r, in scikit-learn's stable forms."
    formula = (r"\ell_i = \log(1 + e^{r_i}) - y_i r_i,\quad g_i = \sigma(r_i) - y_i,\quad "
               r"h_i = \sigma(r_i)(1 - \sigma(r_i))")
    params = (HESSIAN,)
    link = LOGIT
    y_true_doc = "labels in [0, 1] (hard or soft), shape (n,)"
    y_true_interval = UNIT
    y_true_kind = "binary"
    y_pred_kind = "logits"
    hessian_note = ("The Hessian p(1 - p) is exact. Computed as scikit-learn does: log(1 + e^r) by branches at "
                    "-37, -2, 18 and 33.3; gradient ((1 - y) - y e^-r) / (1 + e^-r) and Hessian e^-r / (1 + e^-r)^2 "
                    "for r > -37, e^r - y and e^r below, so no probability is formed that rounds to 0 or 1.")
    examples = ({"y_true": [0.0, 1.0, 1.0], "y_pred": [-1.5, 0.5, 40.0], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        big = r > -37
        with np.errstate(over="ignore"):
            t = np.exp(np.where(big, -r, r))
        grad = np.where(big, ((1 - y) - y * t) / (1 + t), t - y)
        hess = np.where(big, t / (1 + t) ** 2, t)
        return _log1pexp(r) - y * r, grad, hess


@register
class Exponential(_Objective):
    name, aliases, references = sklearn_names("exponential", "ExponentialLoss")
    aliases += ("sklearn.exponential_loss",)
    summary = "Exponential (AdaBoost) loss with half-logit link: y e^-r + (1 - y) e^r."
    formula = (r"\ell_i = y_i e^{-r_i} + (1 - y_i) e^{r_i},\quad g_i = -y_i e^{-r_i} + (1 - y_i) e^{r_i},\quad "
               r"h_i = \ell_i")
    params = (HESSIAN,)
    link = HALF_LOGIT
    y_true_doc = "labels in [0, 1], shape (n,)"
    y_true_interval = UNIT
    y_true_kind = "binary"
    hessian_note = "The Hessian equals the loss and is exact."
    examples = ({"y_true": [0.0, 1.0, 1.0], "y_pred": [-1.5, 0.5, 2.0], "reduction": "sum"},)

    def pointwise(self, y, r, p):
        t = np.exp(r)
        a, b = y / t, (1 - y) * t
        return a + b, b - a, a + b


@register
class HalfMultinomial(Loss):
    name, aliases, references = sklearn_names("half_multinomial", "HalfMultinomialLoss")
    family = "gradient-boosting"
    group = "boosting"
    align_ranks = False
    summary = "Half multinomial deviance (categorical cross-entropy) on raw class scores, softmax link."
    formula = (r"\ell_i = \log\sum_k e^{r_{ik}} - r_{i y_i},\quad g_{ik} = p_{ik} - [y_i = k],\quad "
               r"h_{ik} = p_{ik}(1 - p_{ik}),\quad p_i = \operatorname{softmax}(r_i)")
    params = (HESSIAN,)
    hessian = True
    y_true_doc = "integer class labels in [0, K), shape (n,)"
    y_pred_doc = "raw class scores, shape (n, K)"
    per_sample_doc = "one value per sample: shape (n,)"
    y_true_kind, y_pred_kind = "labels", "logits"
    sample_shape = (6, 3)
    test_variants = ({"hessian": "exact"},)
    notes = ("Link: multinomial logit, probabilities = softmax(raw) over the K scores of a sample. The Hessian is "
             "the diagonal of the K x K Hessian, p_k (1 - p_k): exact on the diagonal, and what a booster that "
             "fits one tree per class uses (hessian \"exact\" gives the same numbers). " + WEIGHTS_NOTE)
    examples = ({"y_true": [0, 2], "y_pred": [[1.0, 0.5, -0.5], [0.2, 0.1, 1.5]], "reduction": "sum"},)

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape[:1]:
            raise ShapeError(f"{self.name} takes y_true of shape [n] (class labels) and y_pred of shape [n, K] (raw "
                             f"scores); got y_true {list(y_true.shape)} and y_pred {list(y_pred.shape)}.",
                             ("y_pred" if y_pred.ndim != 2 else "y_true",))
        return checks.as_labels(y_true, "y_true", y_pred.shape[1]), y_pred

    def evaluate(self, labels, y_pred, p):
        r = _f64(y_pred)
        top = r.max(axis=1, keepdims=True)
        e = np.subtract(r, top)
        np.exp(e, out=e)  # the (n, K) temporaries are reused in place: the same numbers, fewer passes
        total = e.sum(axis=1, keepdims=True)
        rows = np.arange(r.shape[0])
        dt = y_pred.dtype
        per_sample = (np.log(total[:, 0]) + top[:, 0] - r[rows, labels]).astype(dt)
        prob = np.divide(e, total, out=e)

        def vjp(up):
            g = prob.copy()  # prob is read again by hess
            g[rows, labels] -= 1.0
            g *= up[:, None]
            return g.astype(dt, copy=False)

        def hess(up):
            h = np.subtract(1.0, prob)
            np.multiply(prob, h, out=h)
            h *= up[:, None]
            return h.astype(dt, copy=False)

        return Evaluation(per_sample, vjp, hess)
