"""Loss curves: each loss's per-sample value, gradient and Hessian along its natural axis.

Every loss declares, in ``DESIGNS`` (the one table), how a scalar ``x`` on its axis becomes inputs:
``y_pred = build(x)`` with everything else fixed (``fixed`` says what). The values are then the
engine's own (``compute`` with reduction "none", the path POST /v1/losses/{name} takes), and the
derivatives along x come from its analytic gradient and Hessian diagonal by the chain rule:

    dL/dx   = sum_j g_j y_j'(x)
    d2L/dx2 = H_jj y_j'(x)^2 + g_j y_j''(x)     (only when x moves ONE element y_j)

With several elements moving, d2L/dx2 needs the Hessian's off-diagonal terms, which the service does
not compute: the Hessian is then null with the reason. Pure NumPy (no web imports).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from . import registry
from .compute import compute
from .errors import InvalidInput
from .params import ARRAY_KINDS, AXES, AXIS, Interval, bind

OPEN_REAL = Interval(-math.inf, math.inf, False, False)
OPEN_POSITIVE = Interval(0.0, math.inf, False, False)
OPEN_UNIT = Interval(0.0, 1.0, False, False)
OPEN_SIGNED_UNIT = Interval(-1.0, 1.0, False, False)


@dataclass(frozen=True)
class AxisKind:
    """One kind of axis: losses overlay on one plot only when their kinds are equal."""

    kind: str
    label: str
    domain: Interval  # open: x stays strictly inside
    x_range: tuple[float, float]  # the default range, inside the domain


AXIS_KINDS = {a.kind: a for a in (
    AxisKind("error", "error e = y_pred - y_true", OPEN_REAL, (-3.0, 3.0)),
    AxisKind("probability", "predicted probability p of the true class", OPEN_UNIT, (0.01, 0.99)),
    AxisKind("logit", "logit (raw score) z of the true class", OPEN_REAL, (-6.0, 6.0)),
    AxisKind("margin", "margin m = y_true * y_pred (true-class score minus the other scores)", OPEN_REAL, (-2.0, 3.0)),
    AxisKind("distance", "distance d between the embeddings of the pair", OPEN_POSITIVE, (0.01, 3.0)),
    AxisKind("similarity", "cosine similarity s of the pair", OPEN_SIGNED_UNIT, (-0.99, 0.99)),
    AxisKind("prediction", "predicted mean mu = y_pred (y_true fixed)", OPEN_POSITIVE, (0.05, 4.0)),
    AxisKind("raw_prediction", "raw prediction r = log(mu), the log of the predicted mean (y_true fixed)", OPEN_REAL,
             (-3.0, 3.0)),
)}


@dataclass
class Inputs:
    """The inputs of one compute call for the samples at ``x`` (one sample per x on ``batch_axis``)."""

    y_true: Any
    y_pred: np.ndarray
    dydx: np.ndarray  # d y_pred / dx, y_pred's shape
    d2ydx2: np.ndarray | None = None  # d2 y_pred / dx2 (None: y_pred is affine in x)
    params: dict = field(default_factory=dict)  # array parameters the design fixes (CTC's lengths)
    batch_axis: int = 0  # of y_pred (PyTorch's CTC is time-first); per_sample always leads with the batch


Builder = Callable[[np.ndarray, dict], Inputs]


@dataclass(frozen=True)
class Design:
    kind: str | Callable[[dict], str]
    fixed: str
    build: Builder
    independent: bool = True  # the samples of one batch do not interact: one call serves every x
    kinks: Callable[[dict], tuple[float, ...]] = lambda p: ()  # where the loss or a derivative jumps
    domain: Interval | None = None  # overrides the kind's (MSLE: y_pred = 1 + x > 0)
    x_range: tuple[float, float] | None = None

    def kind_for(self, p: dict) -> str:
        return self.kind(p) if callable(self.kind) else self.kind


# --- builders ---------------------------------------------------------------------------------------

def _col(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)[:, None]


def elementwise(y_true: float = 0.0, offset: float = 0.0, flat: bool = False) -> Builder:
    """y_pred = offset + x, one element per sample ((n, 1), or (n,) with ``flat``), y_true constant."""
    def build(x: np.ndarray, p: dict) -> Inputs:
        shape = (x.size,) if flat else (x.size, 1)
        return Inputs(np.full(shape, y_true), (offset + x).reshape(shape), np.ones(shape))
    return build


def log_of_x(y_true: float) -> Builder:
    """y_pred = log(x), one element (torch.kl_div's log-probability input)."""
    def build(x: np.ndarray, p: dict) -> Inputs:
        yt = np.full((x.size, 1), np.log(y_true) if p.get("log_target") else y_true)
        return Inputs(yt, _col(np.log(x)), _col(1.0 / x), _col(-1.0 / x**2))
    return build


def classes(mode: str, target: str, c: int = 3) -> Builder:
    """C classes, the true one first. ``mode``: "simplex" y_pred = [x, (1-x)/(C-1), ...] (C elements move),
    "logit" y_pred = [x, 0, ...] (one element), "log_simplex" the log of the simplex row. ``target``:
    "one_hot" rows, "index" labels (n,), "index_col" labels (n, 1)."""
    def build(x: np.ndarray, p: dict) -> Inputs:
        n = x.size
        if mode == "logit":
            y = np.zeros((n, c))
            y[:, 0] = x
            d = np.zeros((n, c))
            d[:, 0] = 1.0
            d2 = None
        else:
            rest = (1.0 - x) / (c - 1)
            y = np.column_stack([x] + [rest] * (c - 1))
            d = np.column_stack([np.ones(n)] + [np.full(n, -1.0 / (c - 1))] * (c - 1))
            d2 = None
            if mode == "log_simplex":
                y, d = np.log(y), d / y
                d2 = -d**2
        if target == "one_hot":
            yt: Any = np.zeros((n, c))
            yt[:, 0] = 1.0
        else:
            yt = np.zeros(n if target == "index" else (n, 1))
        return Inputs(yt, y, d, d2)
    return build


def segmentation(x: np.ndarray, p: dict) -> Inputs:
    """One probability of a 1x4 mask varies; one call per x (the default axis=null mixes the batch)."""
    n = x.size
    y = np.tile([0.0, 0.7, 0.2, 0.1], (n, 1))
    y[:, 0] = x
    d = np.zeros((n, 4))
    d[:, 0] = 1.0
    return Inputs(np.tile([1.0, 1.0, 0.0, 0.0], (n, 1)), y, d)


SEGMENTATION_FIXED = "y_true = [1, 1, 0, 0]; y_pred = [x, 0.7, 0.2, 0.1] (one mask of four pixels)"


def stacked(rows: Callable[[np.ndarray], list[np.ndarray]], moving: int, y_true: Any = None, dim_axis: bool = True,
            deriv: Callable[[np.ndarray], np.ndarray] | None = None) -> Builder:
    """(n, k, 1) stacked embeddings (k = len(rows)): row ``moving`` is x (or deriv's map)."""
    def build(x: np.ndarray, p: dict) -> Inputs:
        y = np.stack(rows(x), axis=1)  # (n, k)
        d = np.zeros_like(y)
        d[:, moving] = 1.0
        if dim_axis:  # (n, k, D = 1)
            y, d = y[..., None], d[..., None]
        yt = None if y_true is None else np.full(x.size, y_true)
        return Inputs(yt, y, d)
    return build


def unit_pair(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """a = e1 and b = (x, sqrt(1 - x^2), 0): cos(a, b) = x. Returns a, b, db/dx, d2b/dx2 (rows (n, 3))."""
    n = x.size
    s = np.sqrt(1.0 - x**2)
    a = np.tile([1.0, 0.0, 0.0], (n, 1))
    b = np.column_stack([x, s, np.zeros(n)])
    db = np.column_stack([np.ones(n), -x / s, np.zeros(n)])
    d2b = np.column_stack([np.zeros(n), -1.0 / s**3, np.zeros(n)])
    return a, b, db, d2b


def cosine_similarity(x: np.ndarray, p: dict) -> Inputs:
    _, b, db, d2b = unit_pair(x)
    return Inputs(np.tile([1.0, 0.0, 0.0], (x.size, 1)), b, db, d2b)


def cosine_embedding(x: np.ndarray, p: dict) -> Inputs:
    a, b, db, d2b = unit_pair(x)
    z = np.zeros_like(a)
    return Inputs(np.ones(x.size), np.stack([a, b], 1), np.stack([z, db], 1), np.stack([z, d2b], 1))


def three_embeddings(x: np.ndarray, p: dict) -> Inputs:
    """One x per call: a and b share label 0 with cos(a, b) = x; c (label 1) is orthogonal to both."""
    a, b, db, d2b = unit_pair(x)
    c = np.array([[0.0, 0.0, 1.0]])
    z = np.zeros((1, 3))
    return Inputs(np.array([0.0, 0.0, 1.0]), np.concatenate([a, b, c]), np.concatenate([z, db, z]),
                  np.concatenate([z, d2b, z]))


THREE_EMBEDDINGS_FIXED = ("three embeddings in R^3: a = (1, 0, 0) and b = (x, sqrt(1 - x^2), 0) with label 0, "
                          "c = (0, 0, 1) with label 1 (orthogonal to both); the value is the sum of the per-sample "
                          "values of this batch of three")


def keras_ctc(x: np.ndarray, p: dict) -> Inputs:
    """T = 3 frames of logits (0, logit(x)): softmax gives the target label 1 probability x at every frame."""
    n, t = x.size, 3
    logit = np.log(x) - np.log1p(-x)
    y = np.zeros((n, t, 2))
    y[:, :, 1] = logit[:, None]
    d = np.zeros((n, t, 2))
    d[:, :, 1] = (1.0 / (x * (1.0 - x)))[:, None]
    return Inputs(np.ones((n, 1)), y, d)


def torch_ctc(x: np.ndarray, p: dict) -> Inputs:
    """T = 3 frames of log-probabilities (log(1-x), log(x)), PyTorch's (T, N, C) layout."""
    n, t = x.size, 3
    lp = np.stack([np.log1p(-x), np.log(x)], axis=-1)  # (n, 2)
    dlp = np.stack([-1.0 / (1.0 - x), 1.0 / x], axis=-1)
    y = np.broadcast_to(lp, (t, n, 2)).copy()
    d = np.broadcast_to(dlp, (t, n, 2)).copy()
    return Inputs(np.ones((n, 1)), y, d, params={"input_lengths": [t] * n, "target_lengths": [1] * n}, batch_axis=1)


CTC_FIXED = ("one sequence of T = 3 frames over the blank and one label; target = [1]; at every frame the label's "
             "probability is x and the blank's 1 - x")


def zero_one(x: np.ndarray, p: dict) -> Inputs:
    """y_true = 1; y_pred = x as a score with a threshold, else the label [x > 0.5]."""
    y = x.copy() if p.get("threshold") is not None else (x > 0.5).astype(np.float64)
    return Inputs(np.ones(x.size), y, np.ones(x.size))


def gaussian_nll(x: np.ndarray, p: dict) -> Inputs:
    n = x.size
    y = np.stack([x, np.ones(n)], axis=1)
    d = np.stack([np.ones(n), np.zeros(n)], axis=1)
    return Inputs(np.zeros(n), y, d)


def _logit_if(p: dict) -> str:
    return "logit" if p.get("from_logits") else "probability"


def probabilistic(binary: bool, target: str = "one_hot") -> Design:
    """Keras's cross-entropies: the probability of the true class, or its logit with from_logits."""
    def build(x: np.ndarray, p: dict) -> Inputs:
        if binary:
            return elementwise(1.0)(x, p)
        return classes("logit" if p.get("from_logits") else "simplex", target)(x, p)
    fixed = ("y_true = 1; y_pred = x (the probability, or with from_logits the logit, of the positive class)"
             if binary else "C = 3 classes, the true one first; y_pred = [x, (1 - x)/2, (1 - x)/2] (probabilities), "
                            "or with from_logits the logits [x, 0, 0]")
    return Design(_logit_if, fixed, build)


def _at(*values: str) -> Callable[[dict], tuple[float, ...]]:
    """Kinks at named parameters (a leading '-' negates), or at numbers."""
    def kinks(p: dict) -> tuple[float, ...]:
        out = []
        for v in values:
            sign = -1.0 if v.startswith("-") else 1.0
            key = v.lstrip("-")
            out.append(sign * float(p[key]) if key in p else sign * float(key))
        return tuple(out)
    return kinks


ERR = "y_true = 0; y_pred = x (one sample of one value)"
ERR1 = "y_true = 1; y_pred = 1 + x (one sample of one value)"
PROB1 = "y_true = 1; y_pred = x (one sample of one value)"
LOGIT1 = "y_true = 1; y_pred = x, the logit (one sample of one value)"
PRED1 = "y_true = 1; y_pred = x (one sample of one value)"
RAW1 = "y_true = 1; y_pred = x, the raw (log-link) prediction (one sample of one value)"
CLASS3_LOGIT = "C = 3 classes, the true one first; logits [x, 0, 0]"
CLASS3_SIMPLEX = "C = 3 classes, the true one first; y_pred = [x, (1 - x)/2, (1 - x)/2]"


def _error(kinks: Callable[[dict], tuple[float, ...]] = lambda p: (), flat: bool = False) -> Design:
    return Design("error", ERR, elementwise(0.0, flat=flat), kinks=kinks)


_ZERO = _at("0")
_TRIPLET_NEGATIVE = 2.0  # the negative's distance from the anchor: the hinges fall inside the default range

DESIGNS: dict[str, Design] = {
    # regression: the error
    "mean_squared_error": _error(),
    "mean_absolute_error": _error(_ZERO),
    "huber": _error(_at("-delta", "delta")),
    "log_cosh": _error(),
    "quantile": _error(_ZERO),
    "expectile": _error(_ZERO),
    "pseudo_huber": _error(),
    "l1_penalty": Design("error", "y_pred = x, one value (the penalty needs no y_true: y_true = 0)",
                         elementwise(0.0), independent=False, kinks=_ZERO),
    "l2_penalty": Design("error", "y_pred = x, one value (the penalty needs no y_true: y_true = 0)",
                         elementwise(0.0), independent=False),
    "mean_absolute_percentage_error": Design("error", ERR1, elementwise(1.0, 1.0), kinks=_ZERO),
    "mean_squared_logarithmic_error": Design("error", ERR1, elementwise(1.0, 1.0),
                                             domain=Interval(-1.0, math.inf, False, False),
                                             x_range=(-0.9, 3.0)),
    "torch.l1_loss": _error(_ZERO),
    "torch.mse_loss": _error(),
    "torch.huber_loss": _error(_at("-delta", "delta")),
    "torch.smooth_l1_loss": _error(_at("-beta", "beta")),
    "torch.gaussian_nll_loss": Design("error", "y_true = 0; the mean mu = x with the variance fixed at 1",
                                      gaussian_nll),
    "sklearn.half_squared_error": _error(flat=True),
    "sklearn.absolute_error": _error(_ZERO, flat=True),
    "sklearn.huber_loss": _error(_at("-delta", "delta"), flat=True),
    "sklearn.pinball_loss": _error(_ZERO, flat=True),
    # probabilistic classification
    "binary_crossentropy": probabilistic(True),
    "binary_focal_crossentropy": probabilistic(True),
    "categorical_crossentropy": probabilistic(False),
    "categorical_focal_crossentropy": probabilistic(False),
    "sparse_categorical_crossentropy": probabilistic(False, "index"),
    "categorical_generalized_cross_entropy": Design("probability", CLASS3_SIMPLEX + "; label 0",
                                                    classes("simplex", "index")),
    "brier": Design("probability", CLASS3_SIMPLEX + "; one-hot y_true", classes("simplex", "one_hot")),
    "kl_divergence": Design("probability", CLASS3_SIMPLEX + "; y_true = [1, 0, 0]", classes("simplex", "one_hot")),
    "poly1_cross_entropy": Design("logit", CLASS3_LOGIT + "; one-hot y_true", classes("logit", "one_hot")),
    "torch.cross_entropy": Design("logit", CLASS3_LOGIT + "; class index 0", classes("logit", "index")),
    "torch.nll_loss": Design("probability", "C = 3 classes, class index 0; y_pred = log([x, (1 - x)/2, (1 - x)/2])",
                             classes("log_simplex", "index")),
    "torch.binary_cross_entropy": Design("probability", PROB1, elementwise(1.0)),
    "torch.binary_cross_entropy_with_logits": Design("logit", LOGIT1, elementwise(1.0)),
    "torch.multilabel_soft_margin_loss": Design("logit", "one label (C = 1), y_true = 1; y_pred = x, its logit",
                                                elementwise(1.0)),
    "torch.kl_div": Design("probability", "y_true = 1 (log 1 = 0 with log_target); y_pred = log(x), the "
                                          "log-probability PyTorch takes", log_of_x(1.0)),
    "sklearn.half_binomial": Design("logit", LOGIT1, elementwise(1.0, flat=True)),
    "sklearn.half_multinomial": Design("logit", CLASS3_LOGIT + "; label 0", classes("logit", "index")),
    "zero_one": Design("probability", "y_true = 1; y_pred = x as a score when threshold is set, else the label "
                                      "[x > 0.5]", zero_one, kinks=lambda p: (0.5 if p.get("threshold") is None
                                                                              else p["threshold"],)),
    "ctc": Design("probability", CTC_FIXED, keras_ctc),
    "torch.ctc_loss": Design("probability", CTC_FIXED, torch_ctc),
    # segmentation and F-beta: one call per x (the default axis=null reduces the whole batch)
    "dice": Design("probability", SEGMENTATION_FIXED, segmentation, independent=False),
    "tversky": Design("probability", SEGMENTATION_FIXED, segmentation, independent=False),
    "fbeta": Design("probability", SEGMENTATION_FIXED, segmentation, independent=False),
    # hinges: the margin
    "hinge": Design("margin", "y_true = +1; y_pred = x (one sample of one value)", elementwise(1.0), kinks=_at("1")),
    "squared_hinge": Design("margin", "y_true = +1; y_pred = x (one sample of one value)", elementwise(1.0),
                            kinks=_at("1")),
    "categorical_hinge": Design("margin", "C = 3 classes, one-hot y_true = [1, 0, 0]; y_pred = [x, 0, 0]",
                                classes("logit", "one_hot"), kinks=_at("1")),
    "torch.soft_margin_loss": Design("margin", "y_true = +1; y_pred = x", elementwise(1.0)),
    "torch.multi_margin_loss": Design("margin", "C = 3 classes, class index 0; y_pred = [x, 0, 0]",
                                      classes("logit", "index"), kinks=_at("margin")),
    "torch.multilabel_margin_loss": Design(
        "margin", "C = 4 classes, target class 0 only (y_true = [0, -1, -1, -1]); y_pred = [x, 0, 0, 0]",
        lambda x, p: _multilabel(x), kinks=_at("1")),
    "torch.margin_ranking_loss": Design("margin", "y_true = +1; y_pred = (x, 0): x1 - x2 = x",
                                        stacked(lambda x: [x, np.zeros_like(x)], 0, 1.0, dim_axis=False),
                                        kinks=_at("margin")),
    "sklearn.exponential": Design("margin", "y_true = 1; y_pred = x, the raw score", elementwise(1.0, flat=True)),
    # embeddings: the distance or similarity
    "torch.hinge_embedding_loss": Design("distance", "y_true = -1 (a dissimilar pair); y_pred = x, their distance",
                                         elementwise(-1.0), kinks=_at("margin")),
    "contrastive": Design("distance", "y_true = 0 (a dissimilar pair); y_pred = x, their distance",
                          elementwise(0.0, flat=True), kinks=_at("margin")),
    "triplet": Design("distance", f"1-D embeddings: anchor 0, positive x, negative {_TRIPLET_NEGATIVE:g} (squared "
                                  f"distances inside the loss)",
                      stacked(lambda x: [np.zeros_like(x), x, np.full_like(x, _TRIPLET_NEGATIVE)], 1),
                      kinks=lambda p: _sqrt_kinks(_TRIPLET_NEGATIVE**2 - p["alpha"])),
    "quadruplet": Design("distance", f"1-D embeddings: anchor 0, positive x, negative1 {_TRIPLET_NEGATIVE:g}, "
                                     f"negative2 {2 * _TRIPLET_NEGATIVE:g} (squared distances inside the loss)",
                         stacked(lambda x: [np.zeros_like(x), x, np.full_like(x, _TRIPLET_NEGATIVE),
                                            np.full_like(x, 2 * _TRIPLET_NEGATIVE)], 1),
                         kinks=lambda p: _sqrt_kinks(_TRIPLET_NEGATIVE**2 - p["alpha1"],
                                                     _TRIPLET_NEGATIVE**2 - p["alpha2"])),
    "torch.triplet_margin_loss": Design(
        "distance", f"1-D embeddings: anchor 0, positive x, negative {_TRIPLET_NEGATIVE:g}",
        stacked(lambda x: [np.zeros_like(x), x, np.full_like(x, _TRIPLET_NEGATIVE)], 1),
        kinks=lambda p: (_TRIPLET_NEGATIVE - p["margin"], 0.0, 2 * _TRIPLET_NEGATIVE)),
    "cosine_similarity": Design("similarity", "y_true = (1, 0, 0); y_pred = (x, sqrt(1 - x^2), 0)", cosine_similarity),
    "torch.cosine_embedding_loss": Design("similarity", "y_true = +1 (a similar pair); input1 = (1, 0, 0), input2 = "
                                                        "(x, sqrt(1 - x^2), 0)", cosine_embedding,
                                          kinks=_at("margin")),
    "circle": Design("similarity", THREE_EMBEDDINGS_FIXED, three_embeddings, independent=False,
                     kinks=lambda p: (1.0 + p["margin"], -p["margin"], 1.0 - p["margin"])),
    "ntxent": Design("similarity", THREE_EMBEDDINGS_FIXED, three_embeddings, independent=False),
    # positive domains: the prediction with y_true fixed
    "poisson": Design("prediction", PRED1, elementwise(1.0)),
    "poisson_deviance": Design("prediction", PRED1, elementwise(1.0)),
    "gamma_deviance": Design("prediction", PRED1, elementwise(1.0)),
    "tweedie_deviance": Design("prediction", PRED1, elementwise(1.0)),
    "sklearn.half_tweedie_identity": Design("prediction", PRED1, elementwise(1.0, flat=True)),
    "sklearn.half_poisson": Design("raw_prediction", RAW1, elementwise(1.0, flat=True)),
    "sklearn.half_gamma": Design("raw_prediction", RAW1, elementwise(1.0, flat=True)),
    "sklearn.half_tweedie": Design("raw_prediction", RAW1, elementwise(1.0, flat=True)),
    "torch.poisson_nll_loss": Design(lambda p: "raw_prediction" if p["log_input"] else "prediction",
                                     "y_true = 1; y_pred = x (the log-rate with log_input, else the rate)",
                                     elementwise(1.0)),
}


def _sqrt_kinks(*squares: float) -> tuple[float, ...]:
    return tuple(math.sqrt(s) for s in squares if s > 0)


def _multilabel(x: np.ndarray) -> Inputs:
    n = x.size
    y = np.zeros((n, 4))
    y[:, 0] = x
    d = np.zeros((n, 4))
    d[:, 0] = 1.0
    yt = np.tile([0.0, -1.0, -1.0, -1.0], (n, 1))
    return Inputs(yt, y, d)


# --- the curve ----------------------------------------------------------------------------------------

class AxisMismatch(InvalidInput):
    def __init__(self, detail: str, loc: tuple) -> None:
        super().__init__(detail, loc, slug="axis-mismatch", title="Curves on different axes")


class InvalidRange(InvalidInput):
    def __init__(self, detail: str, loc: tuple) -> None:
        super().__init__(detail, loc, slug="invalid-range", title="Invalid curve range")


def design(loss: registry.Loss) -> Design:
    return DESIGNS[loss.name]


def axis_of(loss: registry.Loss, p: dict) -> dict[str, Any]:
    """The axis of ``loss`` at the bound parameters ``p``: kind, name, label, fixed, domain, default range."""
    d = design(loss)
    kind = AXIS_KINDS[d.kind_for(p)]
    domain = d.domain or kind.domain
    return {"kind": kind.kind, "name": kind.kind, "label": kind.label, "fixed": d.fixed, "domain": domain,
            "range": d.x_range or kind.x_range}


def grid(loss: registry.Loss, p: dict, points: int, x_min: float | None = None,
         x_max: float | None = None) -> np.ndarray:
    """``points`` increasing values strictly inside the axis' domain (a 422 naming the query otherwise)."""
    axis = axis_of(loss, p)
    lo, hi = axis["range"]
    lo = lo if x_min is None else x_min
    hi = hi if x_max is None else x_max
    domain: Interval = axis["domain"]
    for name, value in (("x_min", x_min), ("x_max", x_max)):
        if value is None:
            continue
        if not math.isfinite(value) or not domain.contains(value):
            raise InvalidRange(f"{name} must be a finite number {domain.describe()} (the domain of the {axis['kind']} "
                               f"axis of {loss.name}); got {value!r}.", ("query", name))
    if not lo < hi:
        which = "x_min" if x_min is not None else "x_max"
        raise InvalidRange(f"x_min must be below x_max; the range is [{lo!r}, {hi!r}].", ("query", which))
    x = np.linspace(lo, hi, points)
    if not np.all(np.diff(x) > 0):
        raise InvalidRange(f"[{lo!r}, {hi!r}] is too narrow for {points} distinct float64 points.", ("query", "x_min"))
    return x


def hessian_unavailable(loss: registry.Loss, p: dict, inputs: Inputs | None = None) -> str | None:
    """Why d2L/dx2 cannot be given along this axis, or None."""
    if not loss.hessian:
        return f"{loss.name} offers no Hessian: {loss.without_hessian}"
    if not loss.hessian_is_second_derivative(p):
        return ("with these parameters the service returns scikit-learn's Hessian, not the second derivative "
                "(hessian=\"exact\" gives it)")
    if inputs is not None:
        per_sample = np.moveaxis(inputs.dydx, inputs.batch_axis, 0)
        moving = np.count_nonzero(per_sample.reshape(per_sample.shape[0], -1), axis=1)
        if moving.size and moving.max() > 1:
            return (f"x moves {int(moving.max())} elements of y_pred at once, and the service's Hessian is "
                    f"diagonal: d2L/dx2 needs its off-diagonal terms")
    return None


def _per_sample_sums(a: np.ndarray, batch_axis: int, n: int) -> np.ndarray:
    return np.moveaxis(np.asarray(a), batch_axis, 0).reshape(n, -1).sum(axis=1)


def evaluate(loss: registry.Loss, p: dict, x: np.ndarray) -> dict[str, Any]:
    """Values, d/dx and d2/dx2 at ``x`` (None with the reason where the loss cannot give them)."""
    d = design(loss)
    with np.errstate(all="ignore"):
        probe = d.build(x[:1], p)
    h_note = hessian_unavailable(loss, p, probe)
    g_note = None if loss.differentiable else f"{loss.name} is not differentiable"
    outputs = ("per_sample",) + (() if g_note else ("gradient",)) + (() if h_note else ("hessian",))
    chunks = [x] if d.independent else [x[i:i + 1] for i in range(x.size)]
    values, grads, hess = [], [], []
    for chunk in chunks:
        with np.errstate(all="ignore"):  # a build at an extreme x may overflow: compute then refuses it (a 422)
            inputs = d.build(chunk, p)
        r = compute(loss, inputs.y_true, inputs.y_pred, params={**p, **inputs.params}, reduction="none",
                    outputs=outputs)
        n = chunk.size if d.independent else 1
        if not d.independent:  # one x: every value of the call belongs to it
            values.append(np.atleast_1d(np.sum(r.per_sample)))
        else:
            values.append(_per_sample_sums(r.per_sample, 0, n))  # per_sample leads with the batch (CTC's too)
        if not g_note:
            g = r.gradient * inputs.dydx
            grads.append(_per_sample_sums(g, inputs.batch_axis, n) if d.independent else np.atleast_1d(g.sum()))
        if not h_note:
            h = r.hessian * inputs.dydx**2
            if inputs.d2ydx2 is not None:
                h = h + r.gradient * inputs.d2ydx2
            hess.append(_per_sample_sums(h, inputs.batch_axis, n) if d.independent else np.atleast_1d(h.sum()))
    return {
        "x": x,
        "loss_values": np.concatenate(values),
        "gradient": None if g_note else np.concatenate(grads),
        "gradient_note": g_note,
        "hessian": None if h_note else np.concatenate(hess),
        "hessian_note": h_note,
    }


def scalar_params(loss: registry.Loss) -> list:
    """The parameters a curve takes: the scalar ones (arrays and axes shape the inputs, which the design fixes)."""
    return [q for q in loss.params if q.kind not in (*ARRAY_KINDS, AXIS, AXES)]


def public_params(loss: registry.Loss, p: dict) -> dict:
    names = {q.name for q in scalar_params(loss)}
    return {k: v for k, v in p.items() if k in names}


@lru_cache(maxsize=128)  # at most 128 x 2001 points x a few series
def _curve_cached(name: str, params_key: tuple, with_names: tuple, points: int, x_min: float | None,
                  x_max: float | None) -> dict:
    loss = registry.get_loss(name)
    p = dict(params_key)
    x = grid(loss, p, points, x_min, x_max)
    axis = axis_of(loss, p)
    series = []
    for other_name in (loss.name, *with_names):
        other = registry.get_loss(other_name)
        q = p if other is loss else defaults(other)
        s = evaluate(other, q, x)
        series.append({"loss": other.name, "params": public_params(other, q), **s})
    return {"loss": loss.name,
            "axis": {k: axis[k] for k in ("kind", "name", "label", "fixed")},
            "params": public_params(loss, p), "series": series}


def check_overlays(loss: registry.Loss, p: dict, with_losses: list[registry.Loss]) -> None:
    """``AxisMismatch`` (loc query.with) when an overlaid loss (at its defaults) is on another axis kind."""
    kind = axis_of(loss, p)["kind"]
    for other in with_losses:
        other_kind = axis_of(other, defaults(other))["kind"]
        if other_kind != kind:
            raise AxisMismatch(f"with: {other.name} is plotted on the {other_kind} axis and {loss.name} (with these "
                               f"parameters) on the {kind} axis; overlay only losses with the same axis.",
                               ("query", "with"))


def defaults(loss: registry.Loss) -> dict:
    """The loss's parameters at their defaults, bound as POST binds an empty ``params``."""
    return bind(loss.params, {})


def work(loss: registry.Loss, p: dict | None, points: int) -> int:
    """The y_pred elements the curve of ``loss`` evaluates at ``points`` x values (``p`` None: defaults)."""
    q = defaults(loss) if p is None else p
    with np.errstate(all="ignore"):
        one = design(loss).build(np.array([sum(axis_of(loss, q)["range"]) / 2]), q)
    return points * int(one.y_pred.size)


def curve(loss: registry.Loss, p: dict, with_losses: list[registry.Loss], points: int = 201,
          x_min: float | None = None, x_max: float | None = None) -> dict[str, Any]:
    """The curve of ``loss`` at bound parameters ``p``, with ``with_losses`` (at their defaults) overlaid.
    Raises ``AxisMismatch`` (loc query.with) when an overlaid loss's axis kind differs."""
    check_overlays(loss, p, with_losses)
    key = tuple(sorted((k, _hashable(v)) for k, v in p.items()))
    return _curve_cached(loss.name, key, tuple(dict.fromkeys(o.name for o in with_losses if o is not loss)), points,
                         x_min, x_max)


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v
