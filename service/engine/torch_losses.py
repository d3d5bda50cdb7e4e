"""The PyTorch family (``torch.*``): PyTorch 2.13's losses as PyTorch computes them.

Names are ``torch.<functional name>`` with the aliases ``torch.nn.<Class>``,
``torch.nn.functional.<name>`` and ``F.<name>``; reductions are PyTorch's (``reduction.PYTORCH``:
``mean`` by default, no ``sample_weight``) and ``per_sample`` is what ``reduction='none'`` returns.
Values follow ATen's CPU kernels (``aten/src/ATen/native/Loss.cpp``) and gradients are autograd's,
PyTorch's conventions at kinks and clamps included (``../reference/peer-losses.md`` §1 in the
project's shared notes). x is ``input`` (y_pred), y is ``target`` (y_true).
"""

from __future__ import annotations

import math

import numpy as np

from . import checks, sampling
from . import vecmath as vm
from ._math import (Elementwise, Terms, axis_dot, axis_sum, exp_neg_abs, log1p_and_reciprocal, log_softmax, sigmoid,
                    softmax, softplus)
from .errors import DomainError, ShapeError
from .params import (ARRAY, BOOL, BROADCASTS_TO_Y_PRED, FLOAT, INT, NON_NEGATIVE, ONE_PER_CLASS, POSITIVE, REAL, UNIT,
                     Interval, Param)
from .probabilistic import BinaryCrossentropy
from .reduction import PYTORCH
from .regression import absolute_error_terms
from .registry import Evaluation, Loss, register

DOCS = "https://pytorch.org/docs/stable/generated/{}.html"
PM1_DOC = "labels in {-1, 1} (PyTorch computes a meaningless number for other labels; the service refuses them)"


def torch_names(functional: str, cls: str) -> tuple[str, tuple[str, ...], dict[str, str | None]]:
    """(canonical name, aliases, references) of the loss ``torch.nn.functional.<functional>`` /
    ``torch.nn.<cls>``. Bare class names are not aliases: ``HuberLoss`` would collide with Keras."""
    aliases = (f"torch.nn.{cls}", f"torch.nn.functional.{functional}", f"F.{functional}")
    return f"torch.{functional}", aliases, {"pytorch": f"torch.nn.{cls}", "pytorch_docs": DOCS.format(f"torch.nn.{cls}")}


class _TorchLoss(Loss):
    family = "pytorch"
    reducer = PYTORCH
    align_ranks = False  # PyTorch takes the shapes as sent


class TorchElementwise(_TorchLoss, Elementwise):
    """An elementwise PyTorch loss: ``per_sample`` has y_pred's shape, ``mean`` is over all its elements."""

    y_true_doc = "same shape as y_pred"
    per_sample_doc = "elementwise: the shape of y_pred (reduction='none')"


class _PlusMinusOne(TorchElementwise):
    y_true_doc = PM1_DOC + ", same shape as y_pred"
    y_true_kind = "pm1"

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        checks.check_in_set(y_true, (-1.0, 1.0), "y_true", "labels in {-1, 1}")
        return y_true, y_pred


@register
class L1Loss(TorchElementwise):
    name, aliases, references = torch_names("l1_loss", "L1Loss")
    summary = "Absolute error, elementwise (PyTorch)."
    formula = r"\ell_i = |x_i - y_i|"
    notes = "Gradient sign(x - y), 0 where x == y (PyTorch's sign)."
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [1.0, 0.0]]},)

    def terms(self, y, x, p) -> Terms:
        return absolute_error_terms(y, x)


@register
class MSELoss(TorchElementwise):
    name, aliases, references = torch_names("mse_loss", "MSELoss")
    summary = "Squared error, elementwise (PyTorch)."
    formula = r"\ell_i = (x_i - y_i)^2"
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[1.0, 1.0], [1.0, 0.0]]},)
    grad_factor = 2.0

    def terms(self, y, x, p) -> Terms:
        e = x - y
        return e * e, lambda: e, lambda: np.full_like(x, x.dtype.type(2))


@register
class HuberLoss(TorchElementwise):
    name, aliases, references = torch_names("huber_loss", "HuberLoss")
    summary = "Huber loss, elementwise (PyTorch): quadratic within delta of the target, linear outside."
    formula = (r"\ell_i = \begin{cases} \tfrac12 d_i^2 & |d_i| < \delta \\ \delta(|d_i| - \tfrac12\delta) & "
               r"\text{otherwise}\end{cases},\quad d = x - y")
    params = (Param("delta", FLOAT, 1.0, "where the loss turns from quadratic to linear", POSITIVE),)
    notes = "Gradient clip(d, -delta, delta): ±delta at |d| = delta (continuous), 0 at d = 0."
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 3.0], [0.4, -2.0]], "params": {"delta": 1.0}},)

    def terms(self, y, x, p) -> Terms:
        delta = x.dtype.type(p["delta"])
        d = x - y
        # with c = clip(d, -delta, delta), c (d - c/2) is d^2/2 inside and delta (|d| - delta/2) outside, bit for
        # bit (d - d/2 and the sign flips are exact), and c is the gradient: 6 array passes instead of 14
        c = np.clip(d, -delta, delta)
        value = d - x.dtype.type(0.5) * c
        value *= c
        return value, lambda: c, lambda: (np.abs(d) < delta).astype(x.dtype)


@register
class SmoothL1Loss(TorchElementwise):
    name, aliases, references = torch_names("smooth_l1_loss", "SmoothL1Loss")
    summary = "Smooth L1 loss, elementwise (PyTorch): quadratic within beta of the target, absolute error outside."
    formula = (r"\ell_i = \begin{cases} \tfrac12 d_i^2/\beta & |d_i| < \beta \\ |d_i| - \tfrac12\beta & "
               r"\text{otherwise}\end{cases},\quad d = x - y")
    params = (Param("beta", FLOAT, 1.0, "where the loss turns from quadratic to linear; 0 gives the L1 loss",
                    NON_NEGATIVE),)
    notes = ("Gradient d/beta inside, sign(d) outside (±1 at |d| = beta, continuous); beta = 0 is the L1 loss "
             "(gradient 0 at d = 0), as PyTorch dispatches it. Huber with delta is delta times SmoothL1 with beta = "
             "delta.")
    examples = ({"y_true": [[0.0, 1.0], [0.0, 0.0]], "y_pred": [[0.6, 3.0], [0.4, -2.0]], "params": {"beta": 1.0}},)

    def terms(self, y, x, p) -> Terms:
        beta = x.dtype.type(p["beta"])
        if not beta:  # PyTorch dispatches beta = 0 to the L1 loss
            return absolute_error_terms(y, x)
        d = x - y
        # r = clip(d, -beta, beta) / beta is the gradient (d / beta inside, exactly ±1 outside), and r (d - beta r / 2)
        # the value: |d| - beta/2 outside exactly, d^2 / (2 beta) inside to an ulp (PyTorch: 0.5 d d / beta)
        r = np.clip(d, -beta, beta)
        r /= beta
        value = d - (x.dtype.type(0.5) * beta) * r
        value *= r
        return value, lambda: r, lambda: np.where(np.abs(d) < beta, 1 / beta, 0).astype(x.dtype)


@register
class SoftMarginLoss(_PlusMinusOne):
    blocked = True  # cache-sized row blocks: 14% faster in float32, 27% in float64 on 10^6 numbers (AVX2)
    name, aliases, references = torch_names("soft_margin_loss", "SoftMarginLoss")
    summary = "Logistic loss on ±1 labels, elementwise (PyTorch)."
    formula = r"\ell_i = \log(1 + e^{-y_i x_i})"
    y_pred_doc = "scores (real numbers)"
    notes = "mean averages over every element. Labels other than ±1 are refused (PyTorch does not check them)."
    examples = ({"y_true": [[1, -1], [-1, 1]], "y_pred": [[0.6, 0.4], [-1.5, 2.0]]},)

    def terms(self, y, x, p) -> Terms:
        # softplus(z) is BCE on the logit z with target 0: the Keras kernel's one exp and one log
        z = -y * x
        value, d1, d2 = BinaryCrossentropy.logit_terms(x.dtype.type(0), z)
        return value, lambda: np.multiply(d1(), -y), d2  # dz/dx = -y, (dz/dx)^2 = 1


BCE_GRAD_FLOOR = np.float32(1e-12)  # ATen's EPSILON, a float even in double kernels (9.999999960041972e-13)


@register
class BinaryCrossEntropy(TorchElementwise):
    name, aliases, references = torch_names("binary_cross_entropy", "BCELoss")
    summary = "Binary cross-entropy on probabilities, elementwise (PyTorch), logs floored at -100."
    formula = (r"\ell_i = -w_i\big[y_i \max(\log x_i, -100) + (1 - y_i)\max(\log(1 - x_i), -100)\big]")
    params = (Param("weight", ARRAY, None, "a rescaling weight of each element (null: 1)",
                    shape_rule=BROADCASTS_TO_Y_PRED),)
    y_true_doc = "targets in [0, 1], same shape as y_pred"
    y_pred_doc = "probabilities in [0, 1]"
    y_true_interval = UNIT
    y_pred_interval = UNIT
    y_true_kind, y_pred_kind = "probability", "probability"
    notes = ("As PyTorch: each log is floored at -100 (so x = 0 or 1 gives a finite loss) and the gradient is "
             "w (x - y) / max(x (1 - x), 1e-12), with 1e-12 the float32 constant even in float64 (at x = 0, y = 1 "
             "it is about -1e12). The Hessian is the derivative of that gradient. mean divides by the element "
             "count whatever the weight.")
    test_variants = ({"weight": [0.5, 1.0, 2.0]},)
    examples = ({"y_true": [[0, 1], [1, 0]], "y_pred": [[0.2, 0.9], [0.6, 0.0]]},
                {"y_true": [[0, 1], [1, 0]], "y_pred": [[0.2, 0.9], [0.6, 0.3]], "params": {"weight": [1.0, 2.0]}})

    def terms(self, y, x, p) -> Terms:
        dt = x.dtype.type
        floor, one = dt(-100), dt(1)
        with np.errstate(divide="ignore"):
            value = (y - one) * np.maximum(np.log1p(-x), floor) - y * np.maximum(np.log(x), floor)
        w = p["weight"]
        if w is not None:
            value = value * w
        eps = dt(BCE_GRAD_FLOOR)
        q = (one - x) * x
        weigh = (lambda a: a) if w is None else (lambda a: a * w)

        def d2() -> np.ndarray:
            big = q > eps
            return weigh(np.where(big, (x * x - 2 * x * y + y) / np.where(big, q * q, one), one / eps))

        return value, lambda: weigh((x - y) / np.maximum(q, eps)), d2


@register
class BinaryCrossEntropyWithLogits(TorchElementwise):
    blocked = True  # cache-sized row blocks: 0-20% faster without pos_weight, 23-34% with (10^6 numbers, AVX2)
    name, aliases, references = torch_names("binary_cross_entropy_with_logits", "BCEWithLogitsLoss")
    summary = "Binary cross-entropy on logits, elementwise (PyTorch), with element and positive-class weights."
    formula = (r"\ell_i = w_i\big[(1 - y_i)\,x_i + (1 + (p_c - 1) y_i)\log(1 + e^{-x_i})\big],\quad "
               r"p_c = \text{pos\_weight}")
    params = (Param("weight", ARRAY, None, "a rescaling weight of each element (null: 1)",
                    shape_rule=BROADCASTS_TO_Y_PRED),
              Param("pos_weight", ARRAY, None, "the weight of positive targets, per class along the last axis "
                    "(null: 1)", shape_rule=BROADCASTS_TO_Y_PRED))
    y_true_doc = "targets in [0, 1], same shape as y_pred"
    y_pred_doc = "logits (real numbers)"
    y_true_interval = UNIT
    y_true_kind, y_pred_kind = "probability", "logits"
    notes = ("Computed stably (log(1 + e^-x) as max(-x, 0) + log1p(e^-|x|)). Gradient w (sigmoid(x) (1 + (p_c - 1) "
             "y) - p_c y). mean divides by the element count whatever the weights.")
    test_variants = ({"weight": [[1.0], [0.5], [2.0], [1.5]], "pos_weight": [2.0, 0.5, 1.5]},)
    examples = ({"y_true": [[0, 1], [1, 0]], "y_pred": [[-1.2, 2.0], [0.3, 0.5]]},
                {"y_true": [[0, 1], [1, 0]], "y_pred": [[-1.2, 2.0], [0.3, 0.5]],
                 "params": {"weight": [[1.0], [0.5]], "pos_weight": [2.0, 3.0]}})

    def terms(self, y, x, p) -> Terms:
        """As Keras's BCE on logits (one exp, one log: ``BinaryCrossentropy.logit_terms``), with
        u = e^-|x|, r = 1/(1+u) and m = [x >= 0]: softplus(-x) = log(1+u) - x (1-m),
        sigmoid(x) = m - copysign(u r, x), sigmoid(x) sigmoid(-x) = u r^2."""
        one = x.dtype.type(1)
        w, pw = p["weight"], p["pos_weight"]
        weigh = (lambda a: a) if w is None else (lambda a: a * w)
        if pw is None:
            value, d1, d2 = BinaryCrossentropy.logit_terms(y, x)
            return weigh(value), lambda: weigh(d1()), lambda: weigh(d2())
        log_weight = (pw - one) * y + one
        u = exp_neg_abs(x)
        log1p_u, r = log1p_and_reciprocal(u)
        m = np.logical_not(np.signbit(x)).astype(x.dtype)
        value = (one - y) * x + log_weight * (log1p_u - x * (one - m))
        sig_neg_abs = np.multiply(u, r, out=u)

        def d1() -> np.ndarray:
            s = m - np.copysign(sig_neg_abs, x)
            return weigh(s * log_weight - pw * y)

        return weigh(value), d1, lambda: weigh(log_weight * sig_neg_abs * r)


@register
class KLDivLoss(TorchElementwise):
    name, aliases, references = torch_names("kl_div", "KLDivLoss")
    summary = "Kullback-Leibler divergence on log-probabilities, elementwise (PyTorch)."
    formula = (r"\ell_i = \begin{cases} y_i(\log y_i - x_i) & \text{log\_target false (0 where } y_i = 0) \\ "
               r"e^{y_i}(y_i - x_i) & \text{log\_target true}\end{cases}")
    params = (Param("log_target", BOOL, False, "y_true holds log-probabilities instead of probabilities"),)
    extra_reductions = ("batchmean",)
    y_true_doc = "probabilities >= 0 (log-probabilities with log_target), same shape as y_pred"
    y_pred_doc = "log-probabilities"
    notes = ("mean divides by the element count, as PyTorch does (it warns); batchmean divides the sum by the "
             "size of the first axis, which is the KL divergence per sample. Negative targets are refused without "
             "log_target (PyTorch answers NaN).")
    examples = ({"y_true": [[0.25, 0.75], [0.5, 0.5]], "y_pred": [[-1.2, -0.36], [-0.6, -0.8]]},
                {"y_true": [[0.25, 0.75], [0.5, 0.5]], "y_pred": [[-1.2, -0.36], [-0.6, -0.8]],
                 "reduction": "batchmean"})

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        if not p["log_target"]:
            checks.check_interval(y_true, NON_NEGATIVE, "y_true", "probabilities (log_target false)")
        return y_true, y_pred

    def sample(self, rng, shape, p, decimals=None):
        y = sampling.draw("simplex", rng, shape, decimals)
        x = np.log(sampling.draw("simplex", rng, shape))
        if p.get("log_target"):
            y = np.log(y)
        return {"y_true": np.round(y, decimals) if decimals is not None else y,
                "y_pred": np.round(x, decimals) if decimals is not None else x}

    def terms(self, y, x, p) -> Terms:
        zero = x.dtype.type(0)
        if p["log_target"]:
            ey = np.exp(y)
            return ey * (y - x), lambda: -ey, lambda: np.zeros_like(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1)), zero)
        return ylogy - y * x, lambda: -y + zero, lambda: np.zeros_like(x)


@register
class PoissonNLLLoss(TorchElementwise):
    name, aliases, references = torch_names("poisson_nll_loss", "PoissonNLLLoss")
    summary = "Poisson negative log-likelihood, elementwise (PyTorch), on log-rates or rates."
    formula = (r"\ell_i = \begin{cases} e^{x_i} - y_i x_i & \text{log\_input} \\ x_i - y_i\log(x_i + \epsilon) "
               r"& \text{otherwise}\end{cases} \;+\; [\text{full}]\,[y_i > 1]\big(y_i\log y_i - y_i + "
               r"\tfrac12\log(2\pi y_i)\big)")
    params = (Param("log_input", BOOL, True, "y_pred holds log-rates (true) or rates (false)"),
              Param("full", BOOL, False, "add the Stirling approximation of log(y!), where y > 1"),
              Param("eps", FLOAT, 1e-8, "added to the rate under the log when log_input is false", POSITIVE))
    y_true_doc = "counts >= 0, same shape as y_pred"
    y_pred_doc = "log-rates (real numbers), or rates >= 0 with log_input false"
    y_true_interval = NON_NEGATIVE
    y_true_kind = "counts"
    notes = ("As PyTorch, the Stirling term of full is added only where y > 1. Negative counts, and negative rates "
             "with log_input false, are refused (PyTorch answers NaN); a rate of exactly 0 is accepted.")
    examples = ({"y_true": [[0, 2], [5, 1]], "y_pred": [[-0.5, 0.7], [1.6, 0.0]]},
                {"y_true": [[0, 2], [5, 1]], "y_pred": [[0.5, 2.0], [4.5, 1.0]],
                 "params": {"log_input": False, "full": True}})

    def y_pred_domain(self, p):
        return None if p["log_input"] else NON_NEGATIVE

    def sample_pred_kind(self, p):
        return "real" if p.get("log_input", True) else "positive"

    def terms(self, y, x, p) -> Terms:
        if p["log_input"]:
            ex = np.exp(x)
            value, d1, d2 = ex - y * x, (lambda: ex - y), (lambda: ex)
        else:
            r = x + x.dtype.type(p["eps"])
            value, d1, d2 = x - y * np.log(r), (lambda: 1 - y / r), (lambda: y / (r * r))
        if p["full"]:
            big = y > 1
            safe = np.where(big, y, 1)
            stirling = safe * np.log(safe) - safe + x.dtype.type(0.5) * np.log(x.dtype.type(2 * math.pi) * safe)
            value = value + np.where(big, stirling, 0)
        return value, d1, d2


@register
class HingeEmbeddingLoss(_PlusMinusOne):
    name, aliases, references = torch_names("hinge_embedding_loss", "HingeEmbeddingLoss")
    summary = "Hinge embedding loss on distances with ±1 labels, elementwise (PyTorch)."
    formula = r"\ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0, m - x_i) & y_i = -1\end{cases}"
    params = (Param("margin", FLOAT, 1.0, "the margin m for dissimilar pairs (y = -1)", REAL),)
    y_pred_doc = "distances (real numbers)"
    y_pred_kind = "positive"
    notes = ("max(0, m - x) is PyTorch's clamp_min: at x = m the gradient is the full -1, not 0. Labels other than "
             "±1 are refused (PyTorch does not check them and adds both terms).")
    examples = ({"y_true": [[1, -1], [-1, 1]], "y_pred": [[0.3, 0.4], [1.5, 2.0]]},)

    def terms(self, y, x, p) -> Terms:
        m = x.dtype.type(p["margin"])
        gap = m - x
        positive = y == 1
        value = np.where(positive, x, np.maximum(gap, 0))
        return (value, lambda: np.where(positive, 1, np.where(gap >= 0, -1, 0)).astype(x.dtype),
                lambda: np.zeros_like(x))


@register
class GaussianNLLLoss(_TorchLoss):
    name, aliases, references = torch_names("gaussian_nll_loss", "GaussianNLLLoss")
    summary = "Gaussian negative log-likelihood of targets under predicted means and variances (PyTorch)."
    formula = (r"\ell_i = \tfrac12\Big(\log v_i + \frac{(\mu_i - y_i)^2}{v_i}\Big) + [\text{full}]\,\tfrac12\log 2\pi,"
               r"\quad v_i = \max(\sigma^2_i, \epsilon)")
    params = (Param("full", BOOL, False, "add the constant 0.5 log(2 pi)"),
              Param("eps", FLOAT, 1e-6, "the floor of the variance (clamped without gradient tracking)", POSITIVE))
    hessian = True
    y_true_doc = "targets shaped like the mean: y_pred's shape without axis 1"
    y_pred_doc = ("the mean and the variance stacked along axis 1: shape (N, 2, ...), variances >= 0 "
                  "(PyTorch's input and var)")
    per_sample_doc = "the shape of the mean (y_pred without axis 1)"
    notes = ("PyTorch clamps the variance at eps under no_grad, so its gradient is straight-through: below eps the "
             "variance's gradient is 0.5 (1/eps - d^2/eps^2), evaluated at eps, not 0 (and the Hessian of that "
             "gradient is 0 there). A negative variance is refused (PyTorch raises); 0 is accepted. The gradient "
             "is stacked like y_pred: [:, 0] for the mean, [:, 1] for the variance.")
    sample_shape = (4, 2, 3)
    test_variants = ({"eps": 1.0},)  # variances drawn in [0.1, 3): some below eps, clamped
    examples = ({"y_true": [0.5, -1.0, 2.0], "y_pred": [[0.4, 1.0], [0.0, 0.5], [2.5, 2.0]]},)

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim < 2 or y_pred.shape[1] != 2:
            raise ShapeError(f"y_pred must stack the mean and the variance along axis 1, shape (N, 2, ...); got "
                             f"shape {list(y_pred.shape)}.", ("y_pred",))
        mean_shape = y_pred.shape[:1] + y_pred.shape[2:]
        if y_true.shape != mean_shape:
            raise ShapeError(f"y_true has shape {list(y_true.shape)} but the mean (y_pred without axis 1) has shape "
                             f"{list(mean_shape)}; they must be equal.", ("y_true",))
        var = y_pred[:, 1]
        bad = var < 0
        if bad.any():
            idx = checks.first_index(bad)
            at = [idx[0], 1, *idx[1:]]
            raise DomainError(f"variances (y_pred[:, 1]) must be >= 0; y_pred{''.join(f'[{i}]' for i in at)} "
                                     f"= {float(var[tuple(idx)]):.6g}.", ("y_pred", *at))
        return y_true, y_pred

    def sample(self, rng, shape, p, decimals=None):
        mean_shape = shape[:1] + shape[2:]
        y = sampling.draw("real", rng, mean_shape, decimals)
        mu = sampling.draw("real", rng, mean_shape, decimals)
        var = sampling.draw("positive", rng, mean_shape, decimals)
        return {"y_true": y, "y_pred": np.stack([mu, var], axis=1)}

    def evaluate(self, y_true, y_pred, p) -> Evaluation:
        dt = y_pred.dtype.type
        half = dt(0.5)
        mu, var = y_pred[:, 0], y_pred[:, 1]
        eps = dt(p["eps"])
        v = np.maximum(var, eps)
        d = mu - y_true
        per_sample = half * (np.log(v) + d * d / v)
        if p["full"]:
            per_sample = per_sample + dt(0.5 * math.log(2 * math.pi))

        def vjp(up):
            return np.stack([up * d / v, up * half * (1 / v - d * d / (v * v))], axis=1)

        def hess(up):
            d2_var = np.where(var > eps, -half / (v * v) + d * d / (v * v * v), 0)
            return np.stack([up / v, up * d2_var], axis=1)

        return Evaluation(per_sample, vjp, hess)


# --- class-axis losses: cross_entropy, nll_loss ---------------------------------------------------

class _ClassAxis(_TorchLoss):
    """Losses over PyTorch's class axis (1, or 0 for a 1-D input) with class-index targets shaped
    like y_pred without that axis, ``ignore_index`` and per-class ``weight``. Under ``mean`` PyTorch
    divides by the summed weights of the targets that are not ignored: the evaluation hands that
    normaliser to the reducer."""

    hessian = True
    y_pred_doc = "shape (C), (N, C) or (N, C, d1, ...): the class axis is 1 (0 for a 1-D y_pred)"
    per_sample_doc = "y_pred's shape without the class axis: (), (N,) or (N, d1, ...) (reduction='none')"
    sample_shape = (4, 3)
    test_shapes = ((4, 3), (2, 3, 2))

    @staticmethod
    def class_axis(x: np.ndarray) -> int:
        return 1 if x.ndim > 1 else 0

    def index_targets(self, y_true, y_pred, p) -> np.ndarray:
        k = self.class_axis(y_pred)
        want = y_pred.shape[:k] + y_pred.shape[k + 1:]
        if y_true.shape != want:
            raise ShapeError(f"y_true has shape {list(y_true.shape)}; for y_pred of shape {list(y_pred.shape)} the "
                             f"class indices must have shape {list(want)} (y_pred without its class axis {k})"
                             f"{self.other_targets}.", ("y_true",))
        return checks.as_labels(y_true, "y_true", y_pred.shape[k], allow=p["ignore_index"], allow_name="ignore_index")

    other_targets = ""

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim == 0:
            raise ShapeError("y_pred must have a class axis: shape (C), (N, C) or (N, C, d1, ...); got a single number.",
                             ("y_pred",))
        return self.index_targets(y_true, y_pred, p), y_pred

    def sample(self, rng, shape, p, decimals=None):
        k = 1 if len(shape) > 1 else 0
        labels = rng.integers(0, shape[k], shape[:k] + shape[k + 1:]).astype(np.float64)
        x = sampling.draw("logits", rng, shape, decimals)
        return {"y_true": labels, "y_pred": self.sampled_pred(x, k, decimals)}

    def sampled_pred(self, x, k, decimals):
        return x

    def picked(self, labels: np.ndarray, x: np.ndarray, p: dict):
        """(valid mask, safe labels with the class axis kept, the target weights w[y] (0 where ignored))."""
        k = self.class_axis(x)
        valid = labels != p["ignore_index"]
        safe = np.expand_dims(np.where(valid, labels, 0), k)
        w = p["weight"]
        wy = valid.astype(x.dtype) if w is None else np.where(valid, w[np.where(valid, labels, 0)], 0).astype(x.dtype)
        return valid, safe, wy

    @staticmethod
    def per_class(w, x: np.ndarray, k: int) -> np.ndarray:
        """A (C,) weight shaped to broadcast along y_pred's class axis."""
        return w.reshape((-1,) + (1,) * (x.ndim - k - 1))


IGNORE_INDEX = Param("ignore_index", INT, -100, "a target value that is ignored (adds 0 to the loss and to the mean's "
                     "divisor)")
CLASS_WEIGHT = Param("weight", ARRAY, None, "a weight per class (null: 1)", shape_rule=ONE_PER_CLASS)


@register
class NLLLoss(_ClassAxis):
    name, aliases, references = torch_names("nll_loss", "NLLLoss")
    summary = "Negative log-likelihood of class indices under log-probabilities (PyTorch), class axis 1."
    formula = r"\ell_n = -w_{y_n}\, x_{n, y_n}\quad (0 \text{ where } y_n = \text{ignore\_index})"
    params = (CLASS_WEIGHT, IGNORE_INDEX)
    y_true_doc = "class indices in [0, C) or ignore_index, shaped like y_pred without the class axis"
    y_pred_doc = "log-probabilities, " + _ClassAxis.y_pred_doc
    notes = ("mean divides by the summed weights of the targets that are not ignore_index (by their count without "
             "weight). If every target is ignored PyTorch's mean is NaN: the service answers 422. The input is used "
             "as sent (no clamp, no check that rows are log-probabilities). The Hessian is 0 (linear).")
    test_variants = ({"weight": [0.5, 1.0, 2.0]},)
    examples = ({"y_true": [0, 2], "y_pred": [[-0.5, -1.2, -2.3], [-1.6, -0.9, -0.8]]},
                {"y_true": [0, 2, -100], "y_pred": [[-0.5, -1.2, -2.3], [-1.6, -0.9, -0.8], [-0.1, -3.0, -2.5]],
                 "params": {"weight": [1.0, 2.0, 0.5]}})

    def sampled_pred(self, x, k, decimals):
        out = log_softmax(x, axis=k)
        return np.round(out, decimals) if decimals is not None else out

    def evaluate(self, labels, x, p) -> Evaluation:
        k = self.class_axis(x)
        valid, safe, wy = self.picked(labels, x, p)
        # labels on the last axis are flat positions, one per row (take_along_axis builds broadcast index arrays)
        positions = _label_positions(safe, x.shape[k]) if k == x.ndim - 1 else None
        xy = (np.take(x, positions).reshape(wy.shape) if positions is not None
              else np.take_along_axis(x, safe, axis=k).squeeze(k))
        per_sample = -wy * xy

        def vjp(up):
            g = np.zeros_like(x)
            if positions is not None:
                np.put(g, positions, (-wy * up).ravel())
            else:
                np.put_along_axis(g, safe, np.expand_dims(-wy * up, k), axis=k)
            return g

        return Evaluation(per_sample, vjp, lambda up: np.zeros_like(x), normaliser=wy.sum(dtype=x.dtype))


@register
class CrossEntropyLoss(_ClassAxis):
    name, aliases, references = torch_names("cross_entropy", "CrossEntropyLoss")
    summary = "Cross-entropy of logits against class indices or class probabilities (PyTorch), class axis 1."
    formula = (r"\ell_n = (1-\varepsilon)\big(-w_{y_n}\log p_{n,y_n}\big) + \frac{\varepsilon}{C}\sum_c -w_c \log "
               r"p_{n,c},\quad p = \operatorname{softmax}(x) \text{ over the class axis}; \text{ probability targets: }"
               r" \ell_n = -\sum_c w_c y'_{n,c}\log p_{n,c},\ y' = (1-\varepsilon) y + \varepsilon/C")
    params = (CLASS_WEIGHT, IGNORE_INDEX,
              Param("label_smoothing", FLOAT, 0.0, "the share epsilon of the target spread uniformly over the classes",
                    UNIT))
    y_true_doc = ("class indices in [0, C) or ignore_index, shaped like y_pred without the class axis, or class "
                  "probabilities in [0, 1] shaped like y_pred")
    y_pred_doc = "logits, " + _ClassAxis.y_pred_doc
    other_targets = ", or probabilities of y_pred's shape"
    notes = ("Index targets: mean divides by the summed weights w[y] of the targets that are not ignore_index (with "
             "label smoothing too); if every target is ignored PyTorch's mean is NaN and the service answers 422. "
             "Probability targets: mean divides by the number of per-sample values, and ignore_index does not apply.")
    test_variants = ({"weight": [0.5, 1.0, 2.0]}, {"weight": [0.5, 1.0, 2.0], "label_smoothing": 0.2})
    examples = ({"y_true": [0, 2], "y_pred": [[2.0, 0.5, -1.0], [0.1, 0.2, 1.5]]},
                {"y_true": [0, 2, -100], "y_pred": [[2.0, 0.5, -1.0], [0.1, 0.2, 1.5], [0.3, 0.3, 0.3]],
                 "params": {"weight": [1.0, 2.0, 0.5], "label_smoothing": 0.1}},
                {"y_true": [[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]], "y_pred": [[2.0, 0.5, -1.0], [0.1, 0.2, 1.5]]})

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim and y_true.shape == y_pred.shape:
            checks.check_interval(y_true, UNIT, "y_true", "class probabilities")
            return y_true, y_pred
        return super().prepare(y_true, y_pred, p)

    def evaluate(self, y, x, p) -> Evaluation:
        """One softmax pass, as the Keras cross-entropies on logits: with t the target row (one-hot
        times (1 - eps) w[y] plus the smoothing share eps/C w_c, or the weighted probabilities) and
        T = sum t, the loss is T log S - <t, shifted>, and the exponentials of the shifted logits,
        scaled in place, become the gradient T softmax - t. No log-softmax or probability array is
        built (3x faster than log_softmax, exp and take/put_along_axis in bench/bench_losses.py)."""
        k = self.class_axis(x)
        n_classes = x.shape[k]
        dt = x.dtype.type
        eps = dt(p["label_smoothing"])
        w = None if p["weight"] is None else self.per_class(p["weight"], x, k)
        shifted = x - x.max(axis=k, keepdims=True)
        dense = positions = share = None
        if y.shape == x.shape:  # probabilities
            target = y if not eps else (1 - eps) * y + eps / dt(n_classes)
            dense = target if w is None else target * w
            total = axis_sum(dense, k)
            dot = axis_dot(dense, shifted, k)
            normaliser = None
        else:
            valid, safe, wy = self.picked(y, x, p)
            a = (1 - eps) * wy
            last = k == x.ndim - 1  # labels on the last axis are flat positions, one per row
            positions = _label_positions(safe, n_classes) if last else safe
            at_label = (np.take(shifted, positions).reshape(a.shape) if last
                        else np.take_along_axis(shifted, safe, axis=k).squeeze(k))
            total, dot = a, a * at_label
            if eps:
                share = (eps / dt(n_classes)) * valid.astype(x.dtype)  # per sample; times w_c for each class
                if w is None:
                    total, dot = total + share * dt(n_classes), dot + share * axis_sum(shifted, k)
                else:
                    dims = list(range(x.ndim))
                    w_dot = np.einsum(shifted, dims, p["weight"], [k], [d for d in dims if d != k])
                    total, dot = total + share * p["weight"].sum(dtype=x.dtype), dot + share * w_dot
            normaliser = wy.sum(dtype=x.dtype)
        ex = vm.exp(shifted, out=shifted)
        sum_ex = axis_sum(ex, k)
        per_sample = total * vm.log(sum_ex) - dot

        def vjp(up):
            grad = np.multiply(ex, np.expand_dims(up * total / sum_ex, k), out=ex)  # T softmax, in place
            if dense is not None:
                grad -= dense * np.expand_dims(up, k)
                return grad
            a_up = a * up
            if positions.ndim == 1:
                np.put(grad, positions, np.take(grad, positions) - a_up.ravel())
            else:
                np.put_along_axis(grad, positions, np.take_along_axis(grad, positions, axis=k) - np.expand_dims(a_up, k),
                                  axis=k)
            if share is not None:
                spread = np.expand_dims(share * up, k)
                grad -= spread if w is None else spread * w
            return grad

        def hess(up):
            prob = softmax(x, k)  # afresh: the gradient consumed the forward pass's exponentials
            return np.expand_dims(up * total, k) * prob * (1 - prob)

        return Evaluation(per_sample, vjp, hess, normaliser=normaliser)


def _label_positions(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Flat (row-major) positions of each row's label in a C-contiguous array of shape
    ``labels.shape[:-1] + (n_classes,)`` (``labels`` keeps the class axis, of length 1)."""
    return np.arange(0, labels.size * n_classes, n_classes) + labels.ravel()


# --- stacked pairs and multilabel rows -------------------------------------------------------------

class _StackedPair(_TorchLoss):
    """Two inputs stacked along a new axis 1 of y_pred, in PyTorch's argument order, and ±1 targets
    shaped like y_pred without that axis (and, for the embeddings, without the last)."""

    y_true_kind = "pm1"

    def target_shape(self, x: np.ndarray) -> tuple[int, ...]:
        return x.shape[:1] + x.shape[2:]

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim < 2 or y_pred.shape[1] != 2:
            raise ShapeError(f"y_pred must stack the two inputs along axis 1, shape {self.y_pred_shape_doc}; got shape "
                             f"{list(y_pred.shape)}.", ("y_pred",))
        want = self.target_shape(y_pred)
        if y_true.shape != want:
            raise ShapeError(f"y_true has shape {list(y_true.shape)} but must have shape {list(want)} for y_pred of "
                             f"shape {list(y_pred.shape)}.", ("y_true",))
        checks.check_in_set(y_true, (-1.0, 1.0), "y_true", "labels in {-1, 1}")
        return y_true, y_pred

    def sample(self, rng, shape, p, decimals=None):
        y = sampling.draw("pm1", rng, self.target_shape(np.empty(shape)), decimals)
        return {"y_true": y, "y_pred": sampling.draw("real", rng, shape, decimals)}


@register
class MarginRankingLoss(_StackedPair):
    name, aliases, references = torch_names("margin_ranking_loss", "MarginRankingLoss")
    summary = "Margin ranking loss of two stacked scores with ±1 labels (PyTorch)."
    formula = r"\ell_n = \max(0, -y_n (x_{n,1} - x_{n,2}) + m)"
    params = (Param("margin", FLOAT, 0.0, "the margin m", REAL),)
    hessian = True
    y_pred_shape_doc = "(N, 2)"
    y_true_doc = PM1_DOC + ", shape (N,)"
    y_pred_doc = "input1 and input2 stacked along axis 1: shape (N, 2)"
    per_sample_doc = "(N,) (reduction='none')"
    sample_shape = (5, 2)
    notes = ("max(0, .) is PyTorch's clamp_min: at exactly the margin the gradient is the full ∓y, not 0. The "
             "gradient is stacked like y_pred. Labels other than ±1 are refused (PyTorch does not check them).")
    examples = ({"y_true": [1, -1, 1], "y_pred": [[0.5, 0.2], [0.1, 0.4], [-0.3, 0.6]], "params": {"margin": 0.1}},)

    def evaluate(self, y, x, p) -> Evaluation:
        z = -y * (x[:, 0] - x[:, 1]) + x.dtype.type(p["margin"])
        active = (z >= 0).astype(x.dtype)
        return Evaluation(np.maximum(z, 0), lambda up: np.stack([-y * active * up, y * active * up], axis=1),
                          lambda up: np.zeros_like(x))


COSINE_EPS = 1e-12  # ATen's EPSILON under each squared norm


@register
class CosineEmbeddingLoss(_StackedPair):
    name, aliases, references = torch_names("cosine_embedding_loss", "CosineEmbeddingLoss")
    summary = "Cosine embedding loss of two stacked embeddings with ±1 labels (PyTorch)."
    formula = (r"\ell_n = \begin{cases} 1 - \cos_n & y_n = 1 \\ \max(0, \cos_n - m) & y_n = -1\end{cases},\quad "
               r"\cos_n = \frac{u_n\cdot v_n}{\sqrt{(\|u_n\|^2 + 10^{-12})(\|v_n\|^2 + 10^{-12})}}")
    params = (Param("margin", FLOAT, 0.0, "the margin m for dissimilar pairs (PyTorch suggests [-1, 1])", REAL),)
    y_pred_shape_doc = "(N, 2, D)"
    y_true_doc = PM1_DOC + ", shape (N,)"
    y_pred_doc = "input1 and input2 stacked along axis 1: shape (N, 2, D)"
    per_sample_doc = "(N,) (reduction='none')"
    sample_shape = (4, 2, 3)
    notes = ("As PyTorch, 1e-12 is added under each squared norm. max(0, .) is clamp_min: at exactly the margin the "
             "gradient is passed in full. Labels other than ±1 are refused. Hessian: the slope times "
             "d²cos/du_i² = 3 cos u_i²/m_u² - cos/m_u - 2 u_i v_i/(m_u √(m_u m_v)) (and likewise for v), m the "
             "squared norms plus 1e-12; 0 on the flat side of the margin.")
    hessian = True
    examples = ({"y_true": [1, -1], "y_pred": [[[1.0, 0.0, 1.0], [0.5, 0.5, 0.0]], [[0.2, 0.9, 0.1], [0.3, 0.8, 0.0]]]},)

    def target_shape(self, x):
        return x.shape[:1]

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 3:
            raise ShapeError(f"y_pred must stack the two embeddings along axis 1, shape (N, 2, D); got shape "
                             f"{list(y_pred.shape)}.", ("y_pred",))
        return super().prepare(y_true, y_pred, p)

    def evaluate(self, y, x, p) -> Evaluation:
        dt = x.dtype.type
        u, v = x[:, 0], x[:, 1]
        prod = axis_dot(u, v, -1)  # row dot products in one read, without the elementwise products
        m1 = axis_dot(u, u, -1) + dt(COSINE_EPS)
        m2 = axis_dot(v, v, -1) + dt(COSINE_EPS)
        denom = np.sqrt(m1 * m2)
        cos = prod / denom
        negative = cos - dt(p["margin"])
        per_sample = np.where(y == 1, 1 - cos, np.maximum(negative, 0))
        slope = np.where(y == 1, -1, np.where(negative >= 0, 1, 0)).astype(x.dtype)  # d loss / d cos

        def vjp(up):
            # c (v / denom - cos u / m1) for u and its mirror for v, written straight into the stacked gradient
            c = slope * up
            out = np.empty_like(x)
            for i, (a, b, m) in enumerate(((u, v, m1), (v, u, m2))):
                np.multiply(b, (c / denom)[:, None], out=out[:, i])
                out[:, i] -= (c * cos / m)[:, None] * a
            return out

        def hess(up):
            c = (slope * up)[:, None]
            k = cos[:, None]

            def curvature(a, b, m):  # d²cos/da_i² with m = |a|² + eps
                m = m[:, None]
                return 3 * k * a * a / (m * m) - k / m - 2 * a * b / (m * denom[:, None])

            return np.stack([c * curvature(u, v, m1), c * curvature(v, u, m2)], axis=1)

        return Evaluation(per_sample, vjp, hess)


@register
class MultiLabelSoftMarginLoss(TorchElementwise):
    name, aliases, references = torch_names("multilabel_soft_margin_loss", "MultiLabelSoftMarginLoss")
    summary = "Multi-label logistic loss, the mean over classes of each row (PyTorch)."
    formula = r"\ell_n = -\frac{1}{C}\sum_c w_c\big[y_{n,c}\log\sigma(x_{n,c}) + (1 - y_{n,c})\log\sigma(-x_{n,c})\big]"
    params = (Param("weight", ARRAY, None, "a weight per class (null: 1)", shape_rule=ONE_PER_CLASS),)
    axis_reduction = "mean"
    y_true_doc = "targets in [0, 1] (0/1 labels), shape (N, C)"
    y_pred_doc = "scores (logits), shape (N, C)"
    per_sample_doc = "(N,): the mean over the classes (reduction='none')"
    y_true_interval = UNIT
    y_true_kind, y_pred_kind = "binary", "logits"
    sample_shape = (4, 5)
    test_variants = ({"weight": [0.5, 1.0, 2.0, 1.5, 0.7]},)
    examples = ({"y_true": [[1, 0, 1], [0, 0, 1]], "y_pred": [[0.8, -1.2, 0.3], [-0.5, 0.1, 2.0]]},)

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 2:
            raise ShapeError(f"y_pred must have shape (N, C); got shape {list(y_pred.shape)}.", ("y_pred",))
        return super().prepare(y_true, y_pred, p)

    def terms(self, y, x, p) -> Terms:
        w = p["weight"]
        weigh = (lambda a: a) if w is None else (lambda a: a * w)
        value, d1, d2 = BinaryCrossentropy.logit_terms(y, x)  # y softplus(-x) + (1-y) softplus(x): one exp, one log
        return weigh(value), lambda: weigh(d1()), lambda: weigh(d2())


@register
class MultiMarginLoss(_ClassAxis):
    name, aliases, references = torch_names("multi_margin_loss", "MultiMarginLoss")
    summary = "Multi-class hinge loss (Weston-Watkins) of scores against class indices (PyTorch)."
    formula = r"\ell_n = \frac{1}{C}\sum_{i \ne y_n} w_{y_n} \max(0, m - x_{n,y_n} + x_{n,i})^p"
    params = (Param("p", INT, 1, "the power: 1 or 2", Interval(1, 2)),
              Param("margin", FLOAT, 1.0, "the margin m", REAL),
              Param("weight", ARRAY, None, "a weight per class, applied by the target's class (null: 1)",
                    shape_rule=ONE_PER_CLASS))
    y_true_doc = "class indices in [0, C), shape (N,) (a bare integer for a 1-D y_pred)"
    y_pred_doc = "scores, shape (N, C) or (C)"
    per_sample_doc = "(N,) (reduction='none')"
    notes = ("As PyTorch: with p = 2 the weight multiplies after the power (w[y] z^2, not (w[y] z)^2), and a term "
             "exactly at the margin (z = 0) has gradient 0 (the kernel counts only z > 0).")
    test_variants = ({"p": 2, "weight": [0.5, 1.0, 2.0]},)
    test_shapes = ((4, 3),)
    examples = ({"y_true": [0, 2], "y_pred": [[0.1, 0.5, -0.3], [0.8, 0.2, 0.4]]},
                {"y_true": [0, 2], "y_pred": [[0.1, 0.5, -0.3], [0.8, 0.2, 0.4]], "params": {"p": 2, "weight": [2, 1, 1]}})

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim not in (1, 2):
            raise ShapeError(f"y_pred must have shape (N, C) or (C); got shape {list(y_pred.shape)}.", ("y_pred",))
        k = self.class_axis(y_pred)
        want = y_pred.shape[:k]
        if y_true.shape != want:
            raise ShapeError(f"y_true has shape {list(y_true.shape)}; for y_pred of shape {list(y_pred.shape)} the "
                             f"class indices must have shape {list(want)}.", ("y_true",))
        return checks.as_labels(y_true, "y_true", y_pred.shape[k]), y_pred

    def evaluate(self, labels, x, p) -> Evaluation:
        squeeze = x.ndim == 1
        x2 = x.reshape(1, -1) if squeeze else x
        lab = labels.reshape(1) if squeeze else labels
        dt = x.dtype.type
        n_classes = x2.shape[1]
        idx = lab[:, None]
        xy = np.take_along_axis(x2, idx, axis=1)
        z = dt(p["margin"]) - xy + x2
        active = z > 0
        np.put_along_axis(active, idx, False, axis=1)
        wy = (np.ones(lab.shape, dtype=x.dtype) if p["weight"] is None else p["weight"][lab])[:, None] / dt(n_classes)
        zp = np.where(active, z if p["p"] == 1 else z * z, 0)
        per_sample = (wy * zp).sum(axis=1)
        slope = np.where(active, wy * (1 if p["p"] == 1 else 2 * z), 0)
        curve = np.where(active, wy * (0 if p["p"] == 1 else 2), 0)

        def vjp(up):
            g = slope * up.reshape(-1, 1)
            np.put_along_axis(g, idx, -g.sum(axis=1, keepdims=True), axis=1)
            return g.reshape(x.shape)

        def hess(up):
            h = curve * up.reshape(-1, 1)
            np.put_along_axis(h, idx, h.sum(axis=1, keepdims=True), axis=1)
            return h.reshape(x.shape)

        return Evaluation(per_sample.reshape(labels.shape), vjp, hess)


@register
class TripletMarginLoss(_TorchLoss):
    name, aliases, references = torch_names("triplet_margin_loss", "TripletMarginLoss")
    summary = "Triplet margin loss of stacked anchor, positive and negative embeddings (PyTorch)."
    formula = (r"\ell_n = \max(0, d(a_n, p_n) - d(a_n, n_n) + m),\quad d(u, v) = \|u - v + \epsilon\|_p"
               r"\ (\text{swap: } d(a, n) \leftarrow \min(d(a, n), d(p, n)))")
    params = (Param("margin", FLOAT, 1.0, "the margin m", REAL),
              Param("p", FLOAT, 2.0, "the norm degree", POSITIVE),
              Param("eps", FLOAT, 1e-6, "added to each difference before the norm", NON_NEGATIVE),
              Param("swap", BOOL, False, "use the smaller of d(a, n) and d(p, n) (Balntas et al. 2016)"))
    y_true_required = False
    y_true_doc = "unused (may be omitted; any array sent is ignored)"
    y_pred_doc = "anchor, positive and negative stacked along axis 1: shape (N, 3, D)"
    per_sample_doc = "(N,) (reduction='none')"
    sample_shape = (4, 3, 3)
    notes = ("As PyTorch, eps is added to the difference (d = ||u - v + eps||_p). max(0, .) is clamp_min: at exactly "
             "the margin the gradient is passed in full. Hessian: the active terms' d²‖w‖_p/dw_i² = (p - 1) ‖w‖^(1-p) "
             "|w_i|^(p-2) (1 - |w_i|^p/‖w‖^p), signed as the distance enters (0 for p = 1).")
    hessian = True
    examples = ({"y_pred": [[[0.0, 1.0], [0.1, 0.9], [1.0, 0.0]], [[0.5, 0.5], [0.9, 0.1], [0.4, 0.6]]]},)

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 3 or y_pred.shape[1] != 3:
            raise ShapeError(f"y_pred must stack anchor, positive and negative along axis 1, shape (N, 3, D); got "
                             f"shape {list(y_pred.shape)}.", ("y_pred",))
        return None, y_pred

    def sample(self, rng, shape, p, decimals=None):
        # y_true is unused: a placeholder of zeros, one per triplet, keeps the exercise's shape simple
        return {"y_true": np.zeros(shape[:1]), "y_pred": sampling.draw("real", rng, shape, decimals)}

    @staticmethod
    def _distance(u, v, p, eps):
        """(||u - v + eps||_p, its gradient and the diagonal of its Hessian with respect to u; the
        Hessian is the same with respect to v, the gradient its negative)."""
        w = u - v + eps
        if p == 2:
            d = np.sqrt(axis_dot(w, w, -1))
            safe = np.where(d > 0, d, 1)[:, None]
            grad = np.divide(w, safe, out=w)  # w is not read again
            curv = (1 - grad * grad) / safe
        elif p == 1:
            d = np.abs(w).sum(axis=-1)
            grad = np.sign(w)
            curv = np.zeros_like(w)
        else:
            a = np.abs(w)
            d = (a ** p).sum(axis=-1) ** (1 / p)
            safe = np.where(d > 0, d, 1)[:, None]
            grad = np.sign(w) * a ** (p - 1) / safe ** (p - 1)
            with np.errstate(divide="ignore", invalid="ignore"):  # |w_i| = 0 with p < 2: a kink, 0 taken
                curv = np.where(a > 0, (p - 1) * a ** (p - 2) / safe ** (p - 1) * (1 - (a / safe) ** p), 0)
        return d, grad, curv

    def evaluate(self, y_true, x, p) -> Evaluation:
        dt = x.dtype.type
        order, eps = dt(p["p"]), dt(p["eps"])
        a, pos, neg = x[:, 0], x[:, 1], x[:, 2]
        d_ap, g_ap, h_ap = self._distance(a, pos, order, eps)
        d_an, g_an, h_an = self._distance(a, neg, order, eps)
        use_pn = np.zeros(d_an.shape, dtype=bool)
        if p["swap"]:
            d_pn, g_pn, h_pn = self._distance(pos, neg, order, eps)
            use_pn = d_pn < d_an
            d_neg = np.where(use_pn, d_pn, d_an)
        else:
            d_neg = d_an
        z = d_ap - d_neg + dt(p["margin"])
        active = (z >= 0).astype(x.dtype)

        def vjp(up):
            c = (active * up)[:, None]
            if not p["swap"]:  # the same numbers as below, written straight into the stacked gradient
                out = np.empty_like(x)
                pull, push = c * g_ap, c * g_an
                np.subtract(pull, push, out=out[:, 0])
                np.negative(pull, out=out[:, 1])
                out[:, 2] = push
                return out
            ga, gp, gn = c * g_ap, -c * g_ap, np.zeros_like(a)
            an = np.where(use_pn[:, None], 0, 1).astype(x.dtype)
            ga = ga - c * an * g_an
            gn = gn + c * an * g_an
            if p["swap"]:
                pn = 1 - an
                gp = gp - c * pn * g_pn
                gn = gn + c * pn * g_pn
            return np.stack([ga, gp, gn], axis=1)

        def hess(up):
            c = (active * up)[:, None]
            an = np.where(use_pn[:, None], 0, 1).astype(x.dtype)
            ha, hp, hn = c * (h_ap - an * h_an), c * h_ap, -c * an * h_an
            if p["swap"]:
                hp = hp - c * (1 - an) * h_pn
                hn = hn - c * (1 - an) * h_pn
            return np.stack([ha, hp, hn], axis=1)

        return Evaluation(np.maximum(z, 0), vjp, hess)


@register
class MultiLabelMarginLoss(_TorchLoss):
    name, aliases, references = torch_names("multilabel_margin_loss", "MultiLabelMarginLoss")
    summary = "Multi-label hinge loss of scores against lists of target classes padded with -1 (PyTorch)."
    formula = (r"\ell_n = \frac{1}{C}\sum_{j \in T_n}\sum_{i \notin T_n} \max(0, 1 - (x_{n,j} - x_{n,i})),\quad "
               r"T_n = \text{the entries of } y_n \text{ before its first } -1")
    hessian = True
    y_true_doc = ("class indices in [0, C) shaped like y_pred, each row's targets first and then -1 (everything from "
                  "the first -1 on is ignored)")
    y_pred_doc = "scores, shape (N, C) or (C)"
    per_sample_doc = "(N,) (reduction='none'; () for a 1-D y_pred)"
    work_doc = "N·C·C: every (target, non-target) pair of each row"
    sample_shape = (3, 4)
    notes = ("As PyTorch: a target repeated in a row counts twice, everything after the first -1 is ignored, and a "
             "term exactly at the margin has gradient 0. The Hessian is 0 (piecewise linear).")
    examples = ({"y_true": [[3, 0, -1, 1]], "y_pred": [[0.1, 0.2, 0.4, 0.8]]},)

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim not in (1, 2) or y_true.shape != y_pred.shape:
            raise ShapeError(f"y_pred must have shape (N, C) or (C) and y_true the same shape; got y_true "
                             f"{list(y_true.shape)} and y_pred {list(y_pred.shape)}.", ("y_true",))
        labels = checks.as_labels(y_true, "y_true", None)
        rows = labels.reshape(-1, labels.shape[-1])
        kept = np.cumprod(rows != -1, axis=1).astype(bool).reshape(labels.shape)  # before the first -1
        bad = kept & ((labels < 0) | (labels >= y_pred.shape[-1]))
        if bad.any():
            idx = checks.first_index(bad)
            raise DomainError(f"y_true's targets (before a row's first -1) must be class indices in [0, "
                              f"{y_pred.shape[-1] - 1}] or -1; y_true{''.join(f'[{i}]' for i in idx)} = "
                              f"{int(labels[tuple(idx)])}.", ("y_true", *idx))
        return np.where(kept, labels, -1), y_pred

    def work(self, y_true, y_pred, p):
        return int(y_pred.size * y_pred.shape[-1])

    def sample(self, rng, shape, p, decimals=None):
        n_classes = shape[-1]
        rows = int(np.prod(shape[:-1]))
        labels = -np.ones((rows, n_classes))
        for r in range(rows):
            k = int(rng.integers(1, n_classes))
            labels[r, :k] = rng.permutation(n_classes)[:k]
        return {"y_true": labels.reshape(shape), "y_pred": sampling.draw("real", rng, shape, decimals)}

    def evaluate(self, labels, x, p) -> Evaluation:
        dt = x.dtype.type
        n_classes = x.shape[-1]
        lab, x2 = labels.reshape(-1, n_classes), x.reshape(-1, n_classes)
        counts = np.zeros_like(x2)
        rows = np.repeat(np.arange(lab.shape[0]), n_classes)
        kept = lab.ravel() >= 0
        np.add.at(counts, (rows[kept], lab.ravel()[kept]), 1)  # a repeated target counts twice
        other = (counts == 0).astype(x.dtype)
        # one (N, C, C) array of margins z[n, j (target), i (other)], used in place: its positive part and then its
        # indicator, each contracted with the (N, C) target counts and non-target mask by batched matrix products
        # (the pair weight counts_j other_i / C is never built): 3-5x faster than the broadcast products
        z = (1 - x2)[:, :, None] + x2[:, None, :]
        np.maximum(z, 0, out=z)
        per_target = np.matmul(z, other[:, :, None])[:, :, 0]  # sum over the others i of max(z, 0)
        per_sample = np.einsum("nj,nj->n", counts, per_target) / dt(n_classes)
        np.greater(z, 0, out=z)  # the kernel counts only z > 0: gradient 0 at the margin
        pulled = np.matmul(counts[:, None, :], z)[:, 0, :]  # per other i: the targets it is within the margin of
        pushed = np.matmul(z, other[:, :, None])[:, :, 0]  # per target j: the others within its margin
        direction = (other * pulled - counts * pushed) / dt(n_classes)

        def vjp(up):
            return (direction * up.reshape(-1, 1)).reshape(x.shape)

        return Evaluation(per_sample.reshape(x.shape[:-1]), vjp, lambda up: np.zeros_like(x))
