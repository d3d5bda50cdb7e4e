"""Write tests/data/pytorch_reference.json: PyTorch 2.13's own answers for the twenty torch.* losses.

The service's PyTorch family (losses.md, "PyTorch family") must give PyTorch's numbers and autograd's
gradients. This script runs PyTorch itself on small seeded inputs (numpy.random.default_rng) for every
loss of the spec's table, every reduction it accepts, the parameter combinations where
reimplementations go wrong (class weights with label smoothing and ignored targets, KL's mean vs
batchmean, BCE's log clamp, Gaussian NLL's straight-through variance clamp, CTC's lengths, kinks
exactly at a margin, ...), in float64 and float32, and records each case as the request the service
will receive (wire format: y_true = PyTorch's target, y_pred = PyTorch's input, several inputs stacked
along a new axis 1 in PyTorch's argument order) with PyTorch's loss, reduction='none' output and
autograd's d loss / d input (of the sum, for reduction none). Cases where PyTorch answers NaN or
infinity go to the separate list "nonfinite" (non-finite numbers written as the strings "nan", "inf",
"-inf"); the service refuses those with a 422. The test suite reads the file without PyTorch
(tests/pytorch_reference.py, tests/test_pytorch_reference_file.py).

PyTorch is a benchmark extra, never a runtime or CI dependency. To regenerate, in an environment of
its own:
    pip install torch==2.13.0 numpy        # the `bench` extra of pyproject.toml
    python scripts/pytorch_reference.py
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/_reference_json.py, run from anywhere
from _reference_json import nonfinite_to_str, wire, write_reference  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "pytorch_reference.json"
SEED = 20261201
TORCH_VERSION = "2.13"  # the version the spec's rules were verified on

# The spec's table, in its order (tests/test_pytorch_reference_file.py compares them).
LOSSES = (
    "torch.l1_loss",
    "torch.mse_loss",
    "torch.huber_loss",
    "torch.smooth_l1_loss",
    "torch.binary_cross_entropy",
    "torch.binary_cross_entropy_with_logits",
    "torch.cross_entropy",
    "torch.nll_loss",
    "torch.kl_div",
    "torch.poisson_nll_loss",
    "torch.gaussian_nll_loss",
    "torch.margin_ranking_loss",
    "torch.hinge_embedding_loss",
    "torch.soft_margin_loss",
    "torch.multilabel_soft_margin_loss",
    "torch.multilabel_margin_loss",
    "torch.multi_margin_loss",
    "torch.cosine_embedding_loss",
    "torch.triplet_margin_loss",
    "torch.ctc_loss",
)
REDUCTIONS = ("mean", "sum", "none")
EXTRA_REDUCTIONS = {"torch.kl_div": ("batchmean",)}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
FLOAT_ARRAY_PARAMS = ("weight", "pos_weight")
# Losses whose float32 kernel rounds by more than the tests' float32 tolerance: CTC's log-space recursion
# in float32 over tens of frames loses about 1e-5 on gradients of magnitude 1 (exp(res + nll - lp) of
# numbers near 100). For them each float32 case records PyTorch's own rounding (max |float32 - float64|
# per output); the service, which runs the recursion in float64, is checked within it.
ROUNDING_RECORDED = {"torch.ctc_loss"}
INT_ARRAY_PARAMS = ("input_lengths", "target_lengths")


@dataclass
class Variant:
    """One input set of a loss. y_true holds integers where PyTorch wants class indices (int64) and
    floats otherwise; y_pred is the stacked input; params are PyTorch's keyword arguments."""

    name: str
    y_true: np.ndarray | None
    y_pred: np.ndarray
    params: dict = field(default_factory=dict)
    nonfinite: tuple[str, ...] = ()  # reductions under which PyTorch is expected to answer NaN/inf


def normal(rng, *shape, scale=1.0):
    # Four decimals keep the float64 inputs short in the file; the values stay generic.
    return np.round(rng.normal(0.0, scale, shape), 4)


def uniform(rng, *shape, low=0.0, high=1.0):
    return np.round(rng.uniform(low, high, shape), 4)


def signs(rng, *shape):
    return rng.choice([-1.0, 1.0], size=shape)


def log_softmax(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis):
    return np.exp(log_softmax(x, axis))


def indices(values):
    return np.array(values, dtype=np.int64)


# --------------------------------------------------------------------------- input sets per loss


def regression(rng):
    """L1/MSE: an exact tie (|x - y| = 0: PyTorch's derivative there is 0) and a rank-3 input."""
    y, x = normal(rng, 4, 3), normal(rng, 4, 3)
    x[0, 0] = y[0, 0]
    return [Variant("N,D/tie", y, x), Variant("N,C,d", normal(rng, 2, 3, 2), normal(rng, 2, 3, 2)),
            Variant("N", normal(rng, 5), normal(rng, 5))]


def huber(rng):
    y, x = normal(rng, 4, 3), normal(rng, 4, 3)
    y[0, :3], x[0, :3] = [0.25, 0.25, 0.0], [0.75, -0.25, 0.0]  # |d| = delta exactly, and d = 0
    return [Variant("default", normal(rng, 4, 3), normal(rng, 4, 3)),
            Variant("delta=0.5/at-delta", y, x, {"delta": 0.5}),
            Variant("delta=2.0", normal(rng, 2, 3, 2), normal(rng, 2, 3, 2, scale=2.0), {"delta": 2.0})]


def smooth_l1(rng):
    y, x = normal(rng, 4, 3), normal(rng, 4, 3)
    y[0, :3], x[0, :3] = [0.25, 0.25, 0.0], [0.75, -0.25, 0.0]  # |d| = beta exactly, and d = 0
    y0, x0 = normal(rng, 4, 3), normal(rng, 4, 3)
    x0[0, 0] = y0[0, 0]
    return [Variant("default", normal(rng, 4, 3), normal(rng, 4, 3)),
            Variant("beta=0.5/at-beta", y, x, {"beta": 0.5}),
            Variant("beta=0/l1", y0, x0, {"beta": 0.0})]


def bce(rng):
    # Probabilities of exactly 0 and 1: the log is floored at -100, the gradient's denominator at 1e-12.
    x = uniform(rng, 4, 3, low=0.02, high=0.98)
    y = rng.integers(0, 2, (4, 3)).astype(float)
    x[0], y[0] = [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]
    x[1, :2], y[1, :2] = [1.0, 0.0], [1.0, 0.5]
    soft = uniform(rng, 3, 4)
    return [Variant("clamp-0-and-1", y, x),
            Variant("weight(C)", rng.integers(0, 2, (4, 3)).astype(float), uniform(rng, 4, 3, low=0.02, high=0.98),
                    {"weight": uniform(rng, 3, low=0.5, high=2.0)}),
            Variant("soft-targets/weight(N,1)", soft, uniform(rng, 3, 4, low=0.02, high=0.98),
                    {"weight": uniform(rng, 3, 1, low=0.5, high=2.0)}),
            Variant("weight(N,C)/rank-3", uniform(rng, 2, 2, 3), uniform(rng, 2, 2, 3, low=0.02, high=0.98),
                    {"weight": uniform(rng, 2, 2, 3, low=0.0, high=2.0)})]


def bce_logits(rng):
    x = normal(rng, 4, 3, scale=3.0)
    x[0, :2] = [30.0, -30.0]  # far tails: the stable max(-x, 0) form
    return [Variant("default/tails", rng.integers(0, 2, (4, 3)).astype(float), x),
            Variant("weight(C)", uniform(rng, 4, 3), normal(rng, 4, 3, scale=2.0),
                    {"weight": uniform(rng, 3, low=0.5, high=2.0)}),
            Variant("pos_weight(C)", rng.integers(0, 2, (4, 3)).astype(float), normal(rng, 4, 3, scale=2.0),
                    {"pos_weight": uniform(rng, 3, low=0.5, high=3.0)}),
            Variant("weight+pos_weight/rank-3", uniform(rng, 2, 2, 3), normal(rng, 2, 2, 3, scale=2.0),
                    {"weight": uniform(rng, 2, 1, 3, low=0.5, high=2.0),
                     "pos_weight": uniform(rng, 3, low=0.5, high=3.0)})]


def cross_entropy(rng):
    C = 4
    w = uniform(rng, C, low=0.25, high=2.0)
    probs = lambda *shape: np.round(softmax(normal(rng, *shape), 1 if len(shape) > 1 else 0), 4)  # noqa: E731
    # probability targets need not sum to 1 in PyTorch; rounding keeps the file short
    return [
        Variant("indices/N,C", indices([0, 3, 1, 2, 1]), normal(rng, 5, C, scale=2.0)),
        Variant("indices/N,C/ignored", indices([0, -100, 3, 1, -100]), normal(rng, 5, C, scale=2.0)),
        Variant("indices/N,C/weight+ignored+smoothing", indices([2, -100, 0, 3, 3, 1]), normal(rng, 6, C, scale=2.0),
                {"weight": w, "label_smoothing": 0.1}),
        Variant("indices/N,C/weight+ignore_index=1", indices([1, 0, 1, 3, 2]), normal(rng, 5, C, scale=2.0),
                {"weight": w, "ignore_index": 1}),
        Variant("indices/N,C,d1/weight+ignored+smoothing", indices([[0, 3, -100], [2, 2, 1]]),
                normal(rng, 2, C, 3, scale=2.0), {"weight": w, "label_smoothing": 0.25}),
        Variant("indices/C", np.array(2, dtype=np.int64), normal(rng, C, scale=2.0)),
        Variant("indices/C/smoothing", np.array(0, dtype=np.int64), normal(rng, C, scale=2.0),
                {"label_smoothing": 0.2}),
        Variant("indices/all-ignored/weight", indices([-100, -100, -100]), normal(rng, 3, C), {"weight": w},
                nonfinite=("mean",)),
        Variant("probabilities/N,C", probs(5, C), normal(rng, 5, C, scale=2.0)),
        Variant("probabilities/N,C/weight+smoothing", probs(5, C), normal(rng, 5, C, scale=2.0),
                {"weight": w, "label_smoothing": 0.1}),
        Variant("probabilities/N,C,d1/weight", probs(2, C, 3), normal(rng, 2, C, 3, scale=2.0), {"weight": w}),
        Variant("probabilities/C", probs(C), normal(rng, C, scale=2.0)),
    ]


def nll(rng):
    C = 4
    w = uniform(rng, C, low=0.25, high=2.0)
    return [
        Variant("N,C", indices([0, 3, 1, 2]), log_softmax(normal(rng, 4, C, scale=2.0), 1)),
        Variant("N,C/weight+ignored", indices([3, -100, 0, 3, 2]), log_softmax(normal(rng, 5, C, scale=2.0), 1),
                {"weight": w}),
        Variant("N,C,d1/weight+ignore_index=0", indices([[0, 3, 1], [2, 0, 1]]),
                log_softmax(normal(rng, 2, C, 3, scale=2.0), 1), {"weight": w, "ignore_index": 0}),
        Variant("C", np.array(1, dtype=np.int64), log_softmax(normal(rng, C, scale=2.0), 0)),
        Variant("all-ignored", indices([-100, -100]), log_softmax(normal(rng, 2, C), 1), nonfinite=("mean",)),
    ]


def kl_div(rng):
    target = np.round(softmax(normal(rng, 3, 4), 1), 4)
    target[0, 1] = 0.0  # y = 0 contributes 0 (and the gradient there is 0)
    return [
        Variant("probabilities/zero-target", target, log_softmax(normal(rng, 3, 4), 1)),
        Variant("log_target", log_softmax(normal(rng, 3, 4), 1), log_softmax(normal(rng, 3, 4), 1),
                {"log_target": True}),
        Variant("N,C,d1", np.round(softmax(normal(rng, 2, 3, 2), 1), 4), log_softmax(normal(rng, 2, 3, 2), 1),
                {"log_target": False}),
    ]


def poisson(rng):
    counts = lambda *shape: rng.choice([0.0, 1.0, 2.0, 3.0, 5.0], size=shape)  # noqa: E731
    y_full = counts(3, 4)
    y_full[0] = [0.0, 1.0, 2.0, 7.0]  # the Stirling term only where target > 1
    rates = uniform(rng, 3, 4, low=0.1, high=4.0)
    rates[0, 0] = 0.0  # a zero rate: log(x + eps)
    return [
        Variant("log_input", counts(3, 4), normal(rng, 3, 4)),
        Variant("log_input/full", y_full, normal(rng, 3, 4), {"log_input": True, "full": True}),
        Variant("rates", counts(3, 4), rates, {"log_input": False}),
        Variant("rates/full/eps=0.1", y_full, uniform(rng, 3, 4, low=0.0, high=4.0),
                {"log_input": False, "full": True, "eps": 0.1}),
    ]


def gaussian_nll(rng):
    def stacked(mean, var):
        return np.stack([mean, var], axis=1)

    var = uniform(rng, 3, 4, low=0.1, high=2.0)
    var[0, :3] = [0.0, 1e-8, 5e-7]  # below eps: clamped without gradient tracking (straight-through)
    var_eps = uniform(rng, 4, low=0.1, high=2.0)
    var_eps[:2] = [0.001, 0.0]
    return [
        Variant("N", normal(rng, 5), stacked(normal(rng, 5), uniform(rng, 5, low=0.1, high=2.0))),
        Variant("N,D/var-below-eps", normal(rng, 3, 4), stacked(normal(rng, 3, 4), var)),
        Variant("N,D/full", normal(rng, 3, 4), stacked(normal(rng, 3, 4), uniform(rng, 3, 4, low=0.1, high=2.0)),
                {"full": True}),
        Variant("N/full/eps=0.01/var-below-eps", normal(rng, 4), stacked(normal(rng, 4), var_eps),
                {"full": True, "eps": 0.01}),
    ]


def margin_ranking(rng):
    x = normal(rng, 5, 2)
    x[0] = [0.5, 0.5]  # -y(x1 - x2) + 0 = 0: clamp_min passes the full gradient
    x2 = normal(rng, 5, 2)
    x2[0] = [0.75, 0.25]  # y = 1, margin 0.5: exactly at the margin
    y2 = signs(rng, 5)
    y2[0] = 1.0
    return [Variant("default/at-margin", signs(rng, 5), x),
            Variant("margin=0.5/at-margin", y2, x2, {"margin": 0.5})]


def hinge_embedding(rng):
    y = signs(rng, 4, 3)
    x = np.abs(normal(rng, 4, 3))
    y[0, :2], x[0, :2] = [-1.0, -1.0], [1.0, 0.25]  # y = -1 exactly at the margin, and inside it
    y2 = signs(rng, 6)
    x2 = np.abs(normal(rng, 6, scale=2.0))
    y2[0], x2[0] = -1.0, 2.0
    return [Variant("default/at-margin", y, x), Variant("margin=2.0/at-margin", y2, x2, {"margin": 2.0})]


def soft_margin(rng):
    return [Variant("N,D", signs(rng, 4, 3), normal(rng, 4, 3, scale=2.0)), Variant("N", signs(rng, 6), normal(rng, 6))]


def multilabel_soft_margin(rng):
    return [Variant("default", rng.integers(0, 2, (4, 5)).astype(float), normal(rng, 4, 5, scale=2.0)),
            Variant("weight(C)", rng.integers(0, 2, (4, 5)).astype(float), normal(rng, 4, 5, scale=2.0),
                    {"weight": uniform(rng, 5, low=0.25, high=2.0)})]


def multilabel_margin(rng):
    # Rows: two targets; a repeated target (counted twice); entries after the first -1 that PyTorch
    # ignores; no target at all; every class a target (no non-target: loss 0).
    y = indices([[3, 0, -1, -1], [1, 1, -1, -1], [2, -1, 0, 3], [-1, 1, 2, 0], [0, 1, 2, 3]])
    x = normal(rng, 5, 4)
    x[0, :2] = [0.25, -0.75]  # x[y=0] - x[1] = 1: exactly at the margin (gradient 0 there)
    x[0, 3] = 0.25
    return [Variant("padded/repeated/at-margin", y, x), Variant("single-targets", indices([[2, -1, -1, -1]] * 3),
                                                                normal(rng, 3, 4))]


def multi_margin(rng):
    x = normal(rng, 4, 3)
    x[0] = [0.5, -0.5, 0.1]  # target 0, class 1: margin - x_y + x_i = 0 exactly (gradient 0 there)
    x2 = normal(rng, 4, 3)
    x2[0] = [0.1, 0.5, -0.3]  # the spec's example row: p=2, w[y]*z^2
    return [Variant("p=1/at-margin", indices([0, 2, 1, 1]), x),
            Variant("p=2/weight", indices([0, 1, 2, 0]), x2, {"p": 2, "weight": np.array([2.0, 1.0, 1.0])}),
            Variant("p=2/weight/margin=0.5", indices([2, 1, 0, 2]), normal(rng, 4, 3),
                    {"p": 2, "margin": 0.5, "weight": uniform(rng, 3, low=0.25, high=2.0)}),
            Variant("p=1/weight/margin=2.0", indices([1, 0, 2, 1]), normal(rng, 4, 3),
                    {"p": 1, "margin": 2.0, "weight": uniform(rng, 3, low=0.25, high=2.0)})]


def cosine_embedding(rng):
    x = normal(rng, 4, 2, 3)
    x[0] = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]  # cos = 0 exactly, y = -1, margin 0: at the kink
    y = signs(rng, 4)
    y[0] = -1.0
    return [Variant("default/at-margin", y, x),
            Variant("margin=0.5", signs(rng, 5), normal(rng, 5, 2, 3), {"margin": 0.5})]


def triplet(rng):
    at_margin = normal(rng, 3, 3, 2)
    at_margin[0] = [[0.0, 0.0], [0.5, 0.0], [1.5, 0.0]]  # p=1, eps=0: 0.5 - 1.5 + 1 = 0 exactly
    return [
        Variant("default", None, normal(rng, 4, 3, 3)),
        Variant("p=1/eps=0/at-margin", None, at_margin, {"p": 1.0, "eps": 0.0}),
        Variant("swap/margin=0.5", None, normal(rng, 4, 3, 3), {"swap": True, "margin": 0.5}),
        Variant("p=3/eps=0.01", None, normal(rng, 3, 3, 4), {"p": 3.0, "eps": 0.01}),
    ]


def ctc(rng):
    T, C = 6, 5
    log_probs = lambda N: log_softmax(normal(rng, T, N, C, scale=1.5), 2)  # noqa: E731
    return [
        # repeated labels need a blank between them; sequence 2 has an empty target
        Variant("blank=0", indices([[1, 1, 2], [3, 4, 0], [0, 0, 0]]), log_probs(3),
                {"input_lengths": [6, 5, 4], "target_lengths": [3, 2, 0]}),
        Variant("blank=4/short-inputs", indices([[0, 2, 2, 1], [3, 3, 4, 4]]), log_probs(2),
                {"input_lengths": [6, 4], "target_lengths": [4, 2], "blank": 4}),
        # 3 labels with a repeat need 4 frames: sequence 1 (3 frames) cannot produce its target
        Variant("zero_infinity/impossible", indices([[1, 2, 3], [2, 2, 1]]), log_probs(2),
                {"input_lengths": [6, 3], "target_lengths": [3, 3], "zero_infinity": True}),
        Variant("impossible", indices([[1, 2, 3], [2, 2, 1]]), log_probs(2),
                {"input_lengths": [6, 3], "target_lengths": [3, 3]}, nonfinite=REDUCTIONS),
        # no frames: an empty target has probability 1 (loss 0), a non-empty one is impossible
        Variant("no-frames", indices([[0, 0], [2, 3]]), log_probs(2),
                {"input_lengths": [0, 6], "target_lengths": [0, 2]}),
        Variant("zero_infinity/no-frames", indices([[1, 0], [2, 3]]), log_probs(2),
                {"input_lengths": [0, 6], "target_lengths": [1, 2], "zero_infinity": True}),
        # PyTorch's other target layout: the targets concatenated, sum(target_lengths) long
        Variant("concatenated-targets", indices([1, 3, 3, 2, 4]), log_probs(3),
                {"input_lengths": [6, 6, 5], "target_lengths": [3, 0, 2]}),
        Variant("blank=1", indices([[2, 4, 3], [3, 3, 0]]), log_probs(2),
                {"input_lengths": [6, 6], "target_lengths": [3, 2], "blank": 1}),
        # log_probs as sent, not normalised: autograd's gradient is still exp(x) - γ
        Variant("unnormalised", indices([[1, 2], [3, 3]]), normal(rng, T, 2, C, scale=2.0),
                {"input_lengths": [6, 5], "target_lengths": [2, 2]}),
        long_ctc(rng),
    ]


def long_ctc(rng) -> Variant:
    """Longer sequences, random lengths that fit, padding beyond each target that PyTorch ignores
    (whatever it holds: -1 and out-of-range indices here)."""
    T, N, C = 40, 4, 12
    input_lengths = rng.integers(T // 2, T + 1, N)
    target_lengths = rng.integers(0, input_lengths // 2 + 1)
    width = int(target_lengths.max()) + 2
    targets = rng.integers(1, C, (N, width))
    padding = np.arange(width)[None, :] >= target_lengths[:, None]
    targets[padding] = rng.choice([-1, 0, C + 5], size=int(padding.sum()))
    return Variant("long/padding-ignored", targets, log_softmax(normal(rng, T, N, C, scale=2.0), 2),
                   {"input_lengths": input_lengths.tolist(), "target_lengths": target_lengths.tolist()})


VARIANTS = {
    "torch.l1_loss": regression,
    "torch.mse_loss": regression,
    "torch.huber_loss": huber,
    "torch.smooth_l1_loss": smooth_l1,
    "torch.binary_cross_entropy": bce,
    "torch.binary_cross_entropy_with_logits": bce_logits,
    "torch.cross_entropy": cross_entropy,
    "torch.nll_loss": nll,
    "torch.kl_div": kl_div,
    "torch.poisson_nll_loss": poisson,
    "torch.gaussian_nll_loss": gaussian_nll,
    "torch.margin_ranking_loss": margin_ranking,
    "torch.hinge_embedding_loss": hinge_embedding,
    "torch.soft_margin_loss": soft_margin,
    "torch.multilabel_soft_margin_loss": multilabel_soft_margin,
    "torch.multilabel_margin_loss": multilabel_margin,
    "torch.multi_margin_loss": multi_margin,
    "torch.cosine_embedding_loss": cosine_embedding,
    "torch.triplet_margin_loss": triplet,
    "torch.ctc_loss": ctc,
}


# --------------------------------------------------------------------------- running PyTorch


def torch_params(params: dict, dtype: torch.dtype) -> dict:
    out = {}
    for key, value in params.items():
        if key in FLOAT_ARRAY_PARAMS:
            out[key] = torch.tensor(np.asarray(value), dtype=dtype)
        elif key in INT_ARRAY_PARAMS:
            out[key] = torch.tensor(value, dtype=torch.int64)
        else:
            out[key] = value
    return out


def call(loss: str, target, stacked, params: dict, reduction: str):
    """PyTorch's functional loss on the unstacked inputs, in PyTorch's argument order."""
    fn = getattr(F, loss.removeprefix("torch."))
    if loss == "torch.gaussian_nll_loss":
        return fn(stacked[:, 0], target, stacked[:, 1], reduction=reduction, **params)
    if loss in ("torch.margin_ranking_loss", "torch.cosine_embedding_loss"):
        return fn(stacked[:, 0], stacked[:, 1], target, reduction=reduction, **params)
    if loss == "torch.triplet_margin_loss":
        return fn(stacked[:, 0], stacked[:, 1], stacked[:, 2], reduction=reduction, **params)
    return fn(stacked, target, reduction=reduction, **params)


def wire_params(params: dict, dtype: str) -> dict:
    return {k: wire(v, dtype) if k in FLOAT_ARRAY_PARAMS else v for k, v in params.items()}


def run_torch(loss: str, variant: Variant, dtype: str, reduction: str, compute_dtype: torch.dtype) -> dict:
    """PyTorch's loss, reduction='none' output and autograd's gradient for the variant's inputs rounded
    to ``dtype`` (what the wire carries), computed in ``compute_dtype``."""
    y_true = None if variant.y_true is None else np.asarray(variant.y_true)
    if y_true is None:
        target = None
    elif y_true.dtype.kind in "iu":
        target = torch.tensor(y_true, dtype=torch.int64)
    else:
        target = torch.tensor(y_true.astype(dtype), dtype=compute_dtype)
    rounded = {k: np.asarray(v).astype(dtype) if k in FLOAT_ARRAY_PARAMS else v for k, v in variant.params.items()}
    params = torch_params(rounded, compute_dtype)
    stacked = torch.tensor(variant.y_pred.astype(dtype), dtype=compute_dtype, requires_grad=True)
    value = call(loss, target, stacked, params, reduction)
    (value.sum() if reduction == "none" else value).backward()
    with torch.no_grad():
        per_sample = call(loss, target, stacked, params, "none")
    return {"loss": value.detach().numpy(), "per_sample": per_sample.numpy(), "gradient": stacked.grad.numpy()}


def run_case(loss: str, variant: Variant, dtype: str, reduction: str) -> tuple[dict, bool]:
    expected = run_torch(loss, variant, dtype, reduction, DTYPES[dtype])
    finite = all(bool(np.isfinite(v).all()) for v in expected.values())
    request = {"y_pred": wire(variant.y_pred, dtype), "params": wire_params(variant.params, dtype),
               "reduction": reduction, "dtype": dtype, "outputs": ["loss", "per_sample", "gradient"]}
    if variant.y_true is not None:
        request["y_true"] = wire(np.asarray(variant.y_true), dtype)
    case = {"id": f"{loss}/{variant.name}/{reduction}/{dtype}", "loss": loss, "request": request,
            "expected": {k: nonfinite_to_str(v.tolist()) for k, v in expected.items()}}
    if dtype == "float32" and finite and loss in ROUNDING_RECORDED:
        # how far PyTorch's float32 answer is from its float64 answer on the same (float32) inputs: its own
        # rounding, which the tests allow on top of their tolerance
        exact = run_torch(loss, variant, dtype, reduction, torch.float64)
        case["float32_rounding"] = {k: float(np.max(np.abs(expected[k].astype(np.float64) - exact[k]), initial=0.0))
                                    for k in expected}
    return case, finite


def build() -> dict:
    torch.set_num_threads(1)  # one summation order, whatever the machine
    cases, nonfinite = [], []
    for index, loss in enumerate(LOSSES):
        rng = np.random.default_rng([SEED, index])
        for variant in VARIANTS[loss](rng):
            for dtype in DTYPES:
                for reduction in REDUCTIONS + EXTRA_REDUCTIONS.get(loss, ()):
                    case, finite = run_case(loss, variant, dtype, reduction)
                    if finite == (reduction in variant.nonfinite):
                        raise AssertionError(f"{case['id']}: PyTorch's answer is {'' if finite else 'not '}finite, "
                                             f"which the variant does not declare")
                    (cases if finite else nonfinite).append(case)
    return {"torch_version": torch.__version__, "numpy_version": np.__version__, "seed": SEED,
            "generated_by": "scripts/pytorch_reference.py", "cases": cases, "nonfinite": nonfinite}


def main() -> None:
    if not torch.__version__.startswith(TORCH_VERSION + "."):
        raise SystemExit(f"PyTorch {TORCH_VERSION} is required (pip install torch=={TORCH_VERSION}.0), "
                         f"found {torch.__version__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # kl_div's "mean" warns that batchmean is the true KL
        out = build()
    write_reference(OUT, out, len(LOSSES))


if __name__ == "__main__":
    main()
