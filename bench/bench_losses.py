"""Issue 3 benchmark: every registered loss's value and gradient on ~1,000,000 elements, in-process,
beside PyTorch's CPU forward + backward for the same quantity.

Registry-driven: each loss in ``service.engine.all_losses()`` gets a y_pred shape of about 10^6
elements (``(10000, 100)`` unless listed in ``SHAPES``; Circle is O(B^2 D), CTC is (batch, time,
classes)), inputs from ``loss.sample(rng, shape, defaults)``, and is timed as
``compute(name, y_true, y_pred, outputs=("loss", "gradient"), dtype=...)`` -- validation,
forward, reduction, gradient and the finiteness check, exactly what a request pays after parsing.
Some losses get a second row with ``from_logits=true`` (where PyTorch users call the fused
built-ins). The PyTorch family (``torch.*``, issue 10) is compared with the same
``torch.nn.functional`` call (``TORCH_FAMILY``): its stacked inputs as separate leaves, its array
parameters as tensors, extra rows where a parameter makes PyTorch run another kernel (``VARIANTS``);
a name that is not registered is skipped with a printed line.

PyTorch (optional, a benchmark extra only: ``pip install torch==2.13.0``) computes the same
quantity on the same data in the same dtype: a ``torch.nn.functional`` built-in where one computes
exactly the Keras quantity, otherwise the Keras formula written with torch ops (the table says
which). Timed: building the leaf tensor (zero-copy ``from_numpy``), forward, ``backward()``.
``torch.set_num_threads(1)`` by default (NumPy's elementwise ops are single-threaded); the default
thread count is printed. Before timing, loss and gradient are checked against ours (float32: rtol
1e-4 on the loss, relative L2 error 1e-4 on the gradient; float64: 1e-8).

The service process reuses freed memory (``service.runtime.reuse_freed_memory``, on by default via
``LOSS_SERVICE_REUSE_MEMORY``); this script applies the same setting, so ours is timed as the service
runs it (``--no-reuse-memory`` times NumPy with glibc's default allocator instead). NumPy's BLAS
(row sums, Circle's matrix products) gets one thread like the service (``--blas-threads``), the
same single core torch gets.

Method: warm-up calls, then ``--repeats`` rounds in which ours and torch in each dtype run
interleaved (order rotating); medians reported. Losses whose ratio ours/torch exceeds 1.5 are
profiled line by line (``--profile``): the costliest source lines of one ``compute`` call.

Prints a Markdown table; raw samples go to ``bench/results/losses-*.json`` (gitignored).
Example: ``python bench/bench_losses.py --repeats 7`` with a Python that has torch (bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

import numpy as np

from bench._common import ROOT, describe_git, environment, fmt_ms, loadavg, relpath, summarize, write_results
from bench._lineprof import LineProfiler
from bench._peers import Peer, installed
from bench._peers import peers as issue11_peers
from service.engine import all_losses, compute, get_loss, vecmath
from service.engine.errors import UnknownLoss
from service.runtime import limit_math_threads, reuse_freed_memory

try:  # optional: the comparison needs it, the script does not
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
    F = None

EPS = 1e-7  # keras.backend.epsilon()
TARGET = 1.5  # issue 3: no loss slower than PyTorch by more than 1.5x

# y_pred shapes with ~1e6 elements where (10000, 100) does not suit the loss
SHAPES: dict[str, tuple[int, ...]] = {
    "circle": (1000, 1000),  # (B, D): the pairwise work is B^2 D = 1e9 multiply-adds, B x B = 1e6 pairs
    "ctc": (25, 400, 100),  # (B, T, C) logits; labels up to T // 2 = 200 tokens
    # the PyTorch family: stacked inputs along axis 1, about 1e6 numbers in all
    "torch.gaussian_nll_loss": (5000, 2, 100),  # (N, 2, D): input and var
    "torch.margin_ranking_loss": (500_000, 2),  # (N, 2): input1 and input2
    "torch.cosine_embedding_loss": (5000, 2, 100),  # (N, 2, D)
    "torch.triplet_margin_loss": (3333, 3, 100),  # (N, 3, D): anchor, positive, negative
    "torch.multilabel_margin_loss": (1000, 100),  # (N, C): the work is every (target, other) pair, N C C = 1e7
    "torch.ctc_loss": (400, 25, 100),  # (T, N, C) log-probabilities, PyTorch's layout: the Keras ctc row's size
}
DEFAULT_SHAPES = {1: (1_000_000,), 2: (10_000, 100), 3: (100, 100, 100), 4: (10, 100, 100, 10)}



@dataclass(frozen=True)
class Variant:
    """An extra row of a loss: other parameters and, where the row needs other data than the
    loss's ``sample`` draws (probability targets, an array parameter), its own inputs."""

    params: dict[str, Any]
    label: str = ""  # what else the row changes, for its title
    inputs: Callable | None = None  # (rng, shape, params) -> {"y_true", "y_pred"[, "params"]}


def _probability_targets(rng, shape, p):
    """Soft class-probability rows for torch.cross_entropy (PyTorch's other kernel), logits as y_pred."""
    z = rng.normal(size=shape)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return {"y_true": e / e.sum(axis=1, keepdims=True), "y_pred": rng.normal(0.0, 2.0, shape)}


def _pos_weight(rng, shape, p):
    """0/1 targets, logits and a positive-class weight per column (PyTorch's pos_weight kernel)."""
    return {"y_true": (rng.random(shape) < 0.5).astype(np.float64), "y_pred": rng.normal(0.0, 2.0, shape),
            "params": {"pos_weight": rng.uniform(0.5, 2.0, shape[-1])}}


def _ctc_inputs(rng, shape, p):
    """log-probabilities (T, N, C), targets (N, S) padded with 0 after each target length (up to T / 2
    tokens, classes 1..C-1), input lengths between 3T/4 and T (frames after it get no gradient)."""
    t, n, c = shape
    z = rng.normal(size=shape)
    z -= z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    target_lengths = rng.integers(1, t // 2 + 1, n)
    targets = np.zeros((n, int(target_lengths.max())))
    for row, length in enumerate(target_lengths):
        targets[row, :length] = rng.integers(1, c, length)
    input_lengths = rng.integers(3 * t // 4, t + 1, n)
    return {"y_true": targets, "y_pred": log_probs,
            "params": {"input_lengths": input_lengths.tolist(), "target_lengths": target_lengths.tolist()}}


# extra rows with other parameters (PyTorch's fused built-ins work on logits; for the torch.* losses,
# the parameters that make PyTorch run another kernel)
VARIANTS: dict[str, list[Variant]] = {
    "binary_crossentropy": [Variant({"from_logits": True})],
    "categorical_crossentropy": [Variant({"from_logits": True})],
    "sparse_categorical_crossentropy": [Variant({"from_logits": True})],
    "torch.cross_entropy": [Variant({}, "probability targets", _probability_targets),
                            Variant({"label_smoothing": 0.1})],
    "torch.binary_cross_entropy_with_logits": [Variant({}, "pos_weight (C,)", _pos_weight)],
    "torch.kl_div": [Variant({"log_target": True})],
    "torch.poisson_nll_loss": [Variant({"log_input": False})],
}
INPUTS: dict[str, Callable] = {"torch.ctc_loss": _ctc_inputs}  # rows whose data the loss's sample cannot draw

BUILTIN, OPS = "torch.nn built-in", "torch ops"


# --- the PyTorch side ---------------------------------------------------------------------------------
# Each entry: (kind, description, target kind, factory(params) -> fn(x, target) -> scalar loss tensor).
# Target kinds: "same" (y_true as a tensor of x's dtype), "labels" (int64), "ctc" (labels + lengths).

def _keras_hinge_labels(y):
    return 2 * y - 1 if bool(torch.all((y == 0) | (y == 1))) else y


def _probs_or_softmax(x, from_logits: bool):
    return torch.softmax(x, -1) if from_logits else x


def _binary_focal(p):
    def fn(x, y):
        prob = torch.sigmoid(x) if p["from_logits"] else x
        if p["label_smoothing"]:
            y = y * (1 - p["label_smoothing"]) + 0.5 * p["label_smoothing"]
        pc = prob.clamp(EPS, 1 - EPS)
        bce = -(y * torch.log(pc) + (1 - y) * torch.log(1 - pc))
        u = (1 - (y * prob + (1 - y) * (1 - prob))).clamp_min(0)
        value = u.pow(p["gamma"]) * bce
        if p["apply_class_balancing"]:
            value = (y * p["alpha"] + (1 - y) * (1 - p["alpha"])) * value
        return value.mean()
    return fn


def _categorical_focal(p):
    def fn(x, y):
        s = _probs_or_softmax(x, p["from_logits"])
        if p["label_smoothing"]:
            y = y * (1 - p["label_smoothing"]) + p["label_smoothing"] / x.shape[-1]
        pc = (s / s.sum(-1, keepdim=True)).clamp(EPS, 1 - EPS)
        alpha = torch.as_tensor(p["alpha"], dtype=x.dtype)
        return (-(alpha * (1 - pc).pow(p["gamma"]) * y * torch.log(pc))).sum(-1).mean()
    return fn


def _cce_probs(p):
    def fn(x, y):
        if p["label_smoothing"]:
            y = y * (1 - p["label_smoothing"]) + p["label_smoothing"] / x.shape[-1]
        pc = (x / x.sum(-1, keepdim=True)).clamp(EPS, 1 - EPS)
        return -(y * torch.log(pc)).sum(-1).mean()
    return fn


def _cce_logits(p):
    return lambda x, y: F.cross_entropy(x, y, label_smoothing=p["label_smoothing"])


def _scce(p):
    if p["from_logits"]:
        return lambda x, labels: F.cross_entropy(x, labels)

    def fn(x, labels):
        pc = (x / x.sum(-1, keepdim=True)).clamp(EPS, 1 - EPS)
        return F.nll_loss(torch.log(pc), labels)
    return fn


def _circle(p):
    gamma, m = p["gamma"], p["margin"]

    def fn(x, labels):
        same = labels[:, None] == labels[None, :]
        pos = same & ~torch.eye(len(labels), dtype=torch.bool) if p["remove_diagonal"] else same
        neg = ~same
        dist = (1 - x @ x.T).clamp_min(0)
        wp = ((m + dist) * pos).clamp_min(0)
        wn = ((1 + m - dist) * neg).clamp_min(0)
        a = (-gamma * wp * (m - dist)).masked_fill(~pos, -math.inf)
        b = (gamma * wn * ((1 - m) - dist)).masked_fill(~neg, -math.inf)
        per_sample = F.softplus(torch.logsumexp(a, 1) + torch.logsumexp(b, 1))
        valid = per_sample > 0  # Keras masks the loss to its positive entries
        return (per_sample * valid).sum() / valid.sum().clamp_min(1)
    return fn


def _ctc(p):
    def fn(x, target):
        labels, lengths = target
        logp = F.log_softmax(x, -1).transpose(0, 1)  # (T, B, C)
        inputs = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
        return F.ctc_loss(logp, labels, inputs, lengths, blank=0, reduction="none").mean()
    return fn


def _dice(p):
    def fn(x, y):
        axes = _axes(p, x)
        inter = (y * x).sum(axes)
        return (1 - 2 * inter / (y.sum(axes) + x.sum(axes) + EPS)).mean()
    return fn


def _tversky(p):
    def fn(x, y):
        axes = _axes(p, x)
        tp = (y * x).sum(axes)
        fp = ((1 - y) * x).sum(axes)
        fn_ = (y * (1 - x)).sum(axes)
        return (1 - tp / (tp + p["alpha"] * fp + p["beta"] * fn_ + EPS)).mean()
    return fn


def _axes(p, x):
    axis = p.get("axis")
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)


TORCH: dict[str, tuple[str, str, str, Callable]] = {
    "mean_squared_error": (BUILTIN, "F.mse_loss", "same", lambda p: lambda x, y: F.mse_loss(x, y)),
    "mean_absolute_error": (BUILTIN, "F.l1_loss", "same", lambda p: lambda x, y: F.l1_loss(x, y)),
    "huber": (BUILTIN, "F.huber_loss", "same", lambda p: lambda x, y: F.huber_loss(x, y, delta=p["delta"])),
    "log_cosh": (OPS, "e + softplus(-2e) - log 2", "same",
                 lambda p: lambda x, y: ((x - y) + F.softplus(-2 * (x - y)) - math.log(2.0)).mean()),
    "mean_absolute_percentage_error": (OPS, "100 abs(y - x) / max(abs(y), eps)", "same",
                                       lambda p: lambda x, y: 100 * ((y - x) / y.abs().clamp_min(EPS)).abs().mean()),
    "mean_squared_logarithmic_error": (OPS, "(log(max(x,eps)+1) - log(max(y,eps)+1))^2", "same",
                                       lambda p: lambda x, y: (torch.log(x.clamp_min(EPS) + 1)
                                                               - torch.log(y.clamp_min(EPS) + 1)).square().mean()),
    "poisson": (BUILTIN, "F.poisson_nll_loss(log_input=False, eps=1e-7)", "same",
                lambda p: lambda x, y: F.poisson_nll_loss(x, y, log_input=False, full=False, eps=EPS)),
    "kl_divergence": (BUILTIN, "F.kl_div(log clamp(x), clamp(y), 'batchmean')", "same",
                      lambda p: lambda x, y: F.kl_div(torch.log(x.clamp(EPS, 1)), y.clamp(EPS, 1),
                                                      reduction="batchmean")),
    "binary_crossentropy": (BUILTIN, "F.binary_cross_entropy", "same",
                            lambda p: lambda x, y: F.binary_cross_entropy(x, y)),
    "binary_crossentropy|from_logits": (BUILTIN, "F.binary_cross_entropy_with_logits", "same",
                                        lambda p: lambda x, y: F.binary_cross_entropy_with_logits(x, y)),
    "binary_focal_crossentropy": (OPS, "Keras focal formula", "same", _binary_focal),
    "categorical_crossentropy": (OPS, "renormalise, clamp, -sum y log p", "same", _cce_probs),
    "categorical_crossentropy|from_logits": (BUILTIN, "F.cross_entropy (probability targets)", "same", _cce_logits),
    "sparse_categorical_crossentropy": (OPS, "renormalise, clamp, log + F.nll_loss", "labels", _scce),
    "sparse_categorical_crossentropy|from_logits": (BUILTIN, "F.cross_entropy (class indices)", "labels", _scce),
    "categorical_focal_crossentropy": (OPS, "Keras focal formula", "same", _categorical_focal),
    "categorical_generalized_cross_entropy": (OPS, "(1 - p_y^q) / q", "labels",
                                              lambda p: lambda x, labels: ((1 - x.gather(-1, labels[:, None])
                                                                            .squeeze(-1).pow(p["q"])) / p["q"]).mean()),
    "categorical_hinge": (OPS, "max(max (1-y)x - sum yx + 1, 0)", "same",
                          lambda p: lambda x, y: ((((1 - y) * x).amax(-1) - (y * x).sum(-1) + 1)
                                                  .clamp_min(0).mean())),
    "hinge": (OPS, "max(1 - y x, 0)", "same",
              lambda p: lambda x, y: (1 - _keras_hinge_labels(y) * x).clamp_min(0).mean()),
    "squared_hinge": (OPS, "max(1 - y x, 0)^2", "same",
                      lambda p: lambda x, y: (1 - _keras_hinge_labels(y) * x).clamp_min(0).square().mean()),
    "cosine_similarity": (BUILTIN, "-F.cosine_similarity", "same",
                          lambda p: lambda x, y: -F.cosine_similarity(x, y, dim=p["axis"]).mean()),
    "dice": (OPS, "1 - 2 sum yx / (sum y + sum x + eps)", "same", _dice),
    "tversky": (OPS, "1 - TP / (TP + a FP + b FN + eps)", "same", _tversky),
    "circle": (OPS, "Keras Circle formula (pairwise, logsumexp)", "labels", _circle),
    "ctc": (BUILTIN, "F.log_softmax + F.ctc_loss", "ctc", _ctc),
}




# --- the PyTorch family: the same torch.nn.functional call, with the same parameters -----------------------
# Each entry: (description, target kind, number of inputs stacked along y_pred's axis 1 (1: not stacked),
# factory(params) -> fn(*inputs, target) -> scalar loss). The stacked inputs are separate contiguous
# leaf tensors on PyTorch's side, as a PyTorch user has them; their gradients are stacked back (untimed)
# for the comparison. Array parameters arrive as tensors of the row's dtype (lengths as int64).

TORCH_FAMILY: dict[str, tuple[str, str, int, Callable]] = {
    "torch.l1_loss": ("F.l1_loss", "same", 1, lambda p: lambda x, y: F.l1_loss(x, y)),
    "torch.mse_loss": ("F.mse_loss", "same", 1, lambda p: lambda x, y: F.mse_loss(x, y)),
    "torch.huber_loss": ("F.huber_loss", "same", 1, lambda p: lambda x, y: F.huber_loss(x, y, delta=p["delta"])),
    "torch.smooth_l1_loss": ("F.smooth_l1_loss", "same", 1,
                             lambda p: lambda x, y: F.smooth_l1_loss(x, y, beta=p["beta"])),
    "torch.soft_margin_loss": ("F.soft_margin_loss", "same", 1, lambda p: lambda x, y: F.soft_margin_loss(x, y)),
    "torch.binary_cross_entropy": ("F.binary_cross_entropy", "same", 1,
                                   lambda p: lambda x, y: F.binary_cross_entropy(x, y, weight=p["weight"])),
    "torch.binary_cross_entropy_with_logits": (
        "F.binary_cross_entropy_with_logits", "same", 1,
        lambda p: lambda x, y: F.binary_cross_entropy_with_logits(x, y, weight=p["weight"], pos_weight=p["pos_weight"])),
    "torch.kl_div": ("F.kl_div", "same", 1, lambda p: lambda x, y: F.kl_div(x, y, log_target=p["log_target"])),
    "torch.poisson_nll_loss": ("F.poisson_nll_loss", "same", 1,
                               lambda p: lambda x, y: F.poisson_nll_loss(x, y, log_input=p["log_input"], full=p["full"],
                                                                         eps=p["eps"])),
    "torch.hinge_embedding_loss": ("F.hinge_embedding_loss", "same", 1,
                                   lambda p: lambda x, y: F.hinge_embedding_loss(x, y, margin=p["margin"])),
    "torch.gaussian_nll_loss": ("F.gaussian_nll_loss(input, target, var)", "same", 2,
                                lambda p: lambda mu, var, y: F.gaussian_nll_loss(mu, y, var, full=p["full"],
                                                                                 eps=p["eps"])),
    "torch.cross_entropy": ("F.cross_entropy", "auto", 1,
                            lambda p: lambda x, y: F.cross_entropy(x, y, weight=p["weight"], ignore_index=p["ignore_index"],
                                                                   label_smoothing=p["label_smoothing"])),
    "torch.nll_loss": ("F.nll_loss", "labels", 1,
                       lambda p: lambda x, y: F.nll_loss(x, y, weight=p["weight"], ignore_index=p["ignore_index"])),
    "torch.margin_ranking_loss": ("F.margin_ranking_loss(x1, x2, target)", "same", 2,
                                  lambda p: lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y, margin=p["margin"])),
    "torch.cosine_embedding_loss": ("F.cosine_embedding_loss(x1, x2, target)", "same", 2,
                                    lambda p: lambda x1, x2, y: F.cosine_embedding_loss(x1, x2, y, margin=p["margin"])),
    "torch.multilabel_soft_margin_loss": ("F.multilabel_soft_margin_loss", "same", 1,
                                          lambda p: lambda x, y: F.multilabel_soft_margin_loss(x, y, weight=p["weight"])),
    "torch.multilabel_margin_loss": ("F.multilabel_margin_loss", "labels", 1,
                                     lambda p: lambda x, y: F.multilabel_margin_loss(x, y)),
    "torch.multi_margin_loss": ("F.multi_margin_loss", "labels", 1,
                                lambda p: lambda x, y: F.multi_margin_loss(x, y, p=p["p"], margin=p["margin"],
                                                                           weight=p["weight"])),
    "torch.triplet_margin_loss": ("F.triplet_margin_loss(anchor, positive, negative)", "none", 3,
                                  lambda p: lambda a, pos, neg, _: F.triplet_margin_loss(
                                      a, pos, neg, margin=p["margin"], p=p["p"], eps=p["eps"], swap=p["swap"])),
    "torch.ctc_loss": ("F.ctc_loss(log_probs (T, N, C), targets, input_lengths, target_lengths)", "labels", 1,
                       lambda p: lambda x, y: F.ctc_loss(x, y, p["input_lengths"], p["target_lengths"], blank=p["blank"],
                                                         zero_infinity=p["zero_infinity"])),
}


def torch_entry(name: str, params: dict[str, Any]):
    """(kind, description, target kind, factory, inputs stacked along axis 1) of a row's PyTorch side."""
    if name in TORCH_FAMILY:
        what, target, stacked, factory = TORCH_FAMILY[name]
        return BUILTIN, what, target, factory, stacked
    key = f"{name}|from_logits" if params.get("from_logits") else name
    entry = TORCH.get(key)
    return None if entry is None else (*entry, 1)


def torch_params(params: dict[str, Any], dtype) -> dict[str, Any]:
    """A row's parameters for PyTorch: arrays as tensors of the row's dtype, CTC's lengths as int64."""
    out = {}
    for key, value in params.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            as_int = key.endswith("_lengths")
            value = torch.from_numpy(np.asarray(value, dtype=np.int64 if as_int else dtype))
        out[key] = value
    return out


def torch_target(kind: str, y_true: np.ndarray, dtype, y_pred_shape: tuple[int, ...]) -> Any:
    if kind == "none":
        return None
    if kind == "auto":  # class indices, or probabilities shaped like the input
        kind = "same" if y_true.shape == y_pred_shape else "labels"
    if kind == "labels":
        return torch.from_numpy(np.ascontiguousarray(y_true).astype(np.int64))
    if kind == "ctc":
        labels = np.ascontiguousarray(y_true).astype(np.int64)
        return torch.from_numpy(labels), torch.from_numpy(np.count_nonzero(labels, axis=1).astype(np.int64))
    return torch.from_numpy(np.ascontiguousarray(y_true, dtype=dtype))


# --- cases ----------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    params: dict[str, Any]  # overrides of the defaults
    shape: tuple[int, ...]
    label: str = ""
    inputs: Callable | None = None  # the row's own input builder (Variant.inputs, INPUTS), else loss.sample
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # dtype -> prepared inputs
    drawn_params: dict[str, Any] = field(default_factory=dict)  # array parameters drawn with the inputs
    peer: Peer | None = None  # issue 11's rows (bench/_peers.py); None: the PyTorch tables (TORCH, TORCH_FAMILY)

    @property
    def title(self) -> str:
        extra = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in self.params.items()]
        extra += [self.label] if self.label else []
        return f"{self.name} ({', '.join(extra)})" if extra else self.name


def shape_for(loss, overrides: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    if loss.name in overrides:
        return overrides[loss.name]
    if loss.name in SHAPES:
        return SHAPES[loss.name]
    return DEFAULT_SHAPES.get(len(loss.sample_shape), DEFAULT_SHAPES[2])


def registered(names: list[str]) -> list:
    """The losses of ``names`` that are registered; each missing one is skipped with a printed line
    (a row written ahead of its loss, e.g. torch.ctc_loss while it is being added)."""
    losses = []
    for name in names:
        try:
            losses.append(get_loss(name))
        except UnknownLoss:
            print(f"  skipped {name}: not a registered loss", flush=True)
    return losses


def build_cases(names: list[str] | None, overrides) -> list[Case]:
    if names:
        losses = registered(names)
    else:
        losses = all_losses()
        registered([n for n in TORCH_FAMILY if n not in {loss.name for loss in losses}])  # say which are missing
    cases = []
    other_peers = issue11_peers()
    for loss in losses:
        shape = shape_for(loss, overrides)
        if loss.name in other_peers:
            for peer in other_peers[loss.name]:
                if not installed(peer.library):
                    print(f"  skipped {loss.name}{' (' + peer.label + ')' if peer.label else ''}: its peer "
                          f"{peer.library} is not installed", flush=True)
                    continue
                row_shape = overrides.get(loss.name) or peer.shape or shape
                cases.append(Case(loss.name, dict(peer.params), row_shape, peer.label, peer.inputs, peer=peer))
            continue
        cases.append(Case(loss.name, {}, shape, inputs=INPUTS.get(loss.name)))
        for variant in VARIANTS.get(loss.name, []):
            if all(any(q.name == k for q in loss.params) for k in variant.params):
                cases.append(Case(loss.name, dict(variant.params), shape, variant.label, variant.inputs))
    return cases


def prepare(case: Case, dtypes: list[str], seed: int) -> None:
    loss = get_loss(case.name)
    params = {q.name: q.default for q in loss.params} | case.params
    rng = np.random.Generator(np.random.PCG64(seed))
    arrays = case.inputs(rng, case.shape, params) if case.inputs else loss.sample(rng, case.shape, params)
    case.drawn_params = dict(arrays.get("params", {}))
    params = params | case.drawn_params
    weights = rng.uniform(0.5, 2.0, case.shape[0]) if case.peer is not None and case.peer.weighted else None
    for dt in dtypes:
        npdt = np.dtype(dt)
        case.data[dt] = {"params": params,
                         "y_true": np.ascontiguousarray(arrays["y_true"], dtype=npdt),  # labels stay exact
                         "y_pred": np.ascontiguousarray(arrays["y_pred"], dtype=npdt),
                         "sample_weight": None if weights is None else weights.astype(npdt)}


# --- timing ---------------------------------------------------------------------------------------------

def ours_fn(case: Case, dt: str) -> Callable[[], Any]:
    d = case.data[dt]
    params = case.params | case.drawn_params
    outputs = case.peer.outputs if case.peer else ("loss", "gradient")
    reduction = case.peer.reduction if case.peer else None
    return lambda: compute(case.name, d["y_true"], d["y_pred"], params=params, sample_weight=d["sample_weight"],
                           reduction=reduction, outputs=outputs, dtype=dt)


def peer_fn(case: Case, dt: str, no_torch: bool) -> Callable[[], Any] | None:
    """The row's peer call in ``dt``, or None (no peer, torch switched off, or a dtype the peer refuses)."""
    if case.peer is not None:
        if no_torch and case.peer.library == "torch":
            return None
        return case.peer.build(case.data[dt], dt)
    return None if no_torch else torch_fn(case, dt)


def peer_info(case: Case) -> dict[str, str] | None:
    if case.peer is not None:
        return {"kind": case.peer.kind, "what": case.peer.what, "library": case.peer.library}
    entry = torch_entry(case.name, case.data[next(iter(case.data))]["params"]) if torch is not None else None
    return {"kind": entry[0], "what": entry[1], "library": "torch"} if entry else None


def peer_numbers(case: Case, theirs) -> dict[str, Any]:
    """The numbers of a peer's result to compare with ours: loss (float) and arrays (gradient, ...)."""
    if case.peer is not None:
        return case.peer.extract(theirs)
    return {"loss": float(theirs[0]), "gradient": torch_gradient(theirs)}


def torch_fn(case: Case, dt: str) -> Callable[[], Any] | None:
    entry = torch_entry(case.name, case.data[dt]["params"]) if torch is not None else None
    if entry is None:
        return None
    _, _, target_kind, factory, stacked = entry
    d = case.data[dt]
    loss_fn = factory(torch_params(d["params"], np.dtype(dt)))
    y_pred = d["y_pred"]
    target = torch_target(target_kind, d["y_true"], np.dtype(dt), y_pred.shape)
    # stacked inputs: one contiguous array each, split before timing (a PyTorch user holds them apart)
    inputs = [y_pred] if stacked == 1 else [np.ascontiguousarray(y_pred[:, i]) for i in range(stacked)]

    def run():
        xs = [torch.from_numpy(a).requires_grad_(True) for a in inputs]  # zero-copy leaves
        value = loss_fn(*xs, target)
        value.backward()
        return value.detach(), [x.grad for x in xs]
    return run


def torch_gradient(theirs) -> np.ndarray:
    """PyTorch's gradient of a run, its leaves' gradients stacked along axis 1 like y_pred."""
    grads = [g.numpy() for g in theirs[1]]
    return grads[0] if len(grads) == 1 else np.stack(grads, axis=1)


def agreement(ours, theirs: dict[str, Any], dt: str) -> dict[str, Any]:
    """Relative error of the loss and relative L2 errors of the arrays the peer gives (``theirs``:
    ``peer_numbers``); ``grad_rel_l2_err`` is the largest of the arrays' (gradient, per_sample, Hessian)."""
    tol = 1e-4 if dt == "float32" else 1e-8
    out: dict[str, Any] = {"tol": tol, "loss_rel_err": 0.0, "grad_rel_l2_err": 0.0, "errors": {}}
    if "loss" in theirs:
        lo, lt = float(np.asarray(ours.loss)), theirs["loss"]
        out.update(loss_ours=lo, loss_peer=lt, loss_rel_err=abs(lo - lt) / max(abs(lt), 1e-30))
    for name in ("per_sample", "gradient", "hessian"):
        if name not in theirs:
            continue
        mine = np.asarray(getattr(ours, name), dtype=np.float64)
        peer = np.asarray(theirs[name], dtype=np.float64)
        if mine.shape != peer.shape:
            return {"ok": False, "why": f"{name} shape {mine.shape} vs the peer's {peer.shape}"}
        out["errors"][name] = float(np.linalg.norm(mine - peer) / max(np.linalg.norm(peer), 1e-30))
    if out["errors"]:
        out["grad_rel_l2_err"] = max(out["errors"].values())
    out["ok"] = out["loss_rel_err"] <= tol and out["grad_rel_l2_err"] <= tol
    return out


def time_case(case: Case, args) -> dict[str, Any]:
    """Warm up, check agreement, then interleave ours/torch over dtypes for --repeats rounds."""
    fns: dict[str, Callable[[], Any]] = {}
    out: dict[str, Any] = {"loss": case.name, "params": case.params, "shape": list(case.shape), "agree": {}}
    for dt in args.dtypes:
        fns[f"ours {dt}"] = ours_fn(case, dt)
        tf = peer_fn(case, dt, args.no_torch)
        if tf is not None:
            fns[f"peer {dt}"] = tf
            if args.torch_default_threads and dt == "float32" and case.peer is None:
                fns[f"peer {dt} default threads"] = tf
    info = peer_info(case)
    if info:
        out["peer"] = info

    # warm-up and agreement (ours first: an invalid input fails here, not inside the timing)
    first: dict[str, Any] = {}
    for key, fn in fns.items():
        first[key] = fn()
        for _ in range(args.warmup - 1):
            fn()
    for dt in args.dtypes:
        if f"peer {dt}" in first:
            out["agree"][dt] = agreement(first[f"ours {dt}"], peer_numbers(case, first[f"peer {dt}"]), dt)
    a32, a64 = out["agree"].get("float32"), out["agree"].get("float64")
    if a32 and not a32["ok"] and a64 and a64["ok"] and "gradient" in a32.get("errors", {}):
        # float32 results differ: is it float32 rounding (both as far from the float64 result) or a bug?
        ref = np.asarray(first["ours float64"].gradient, dtype=np.float64)
        err = lambda g: float(np.linalg.norm(np.asarray(g, dtype=np.float64) - ref) / max(np.linalg.norm(ref), 1e-30))
        ours_err = err(first["ours float32"].gradient)
        torch_err = err(peer_numbers(case, first["peer float32"])["gradient"])
        a32.update(ours_grad_err_vs_f64=ours_err, torch_grad_err_vs_f64=torch_err)
        if ours_err <= max(a32["tol"], 2 * torch_err):
            a32["ok"] = True
            a32["note"] = f"float32 rounding: ours {ours_err:.0e}, torch {torch_err:.0e} from the float64 gradient"
    del first

    # budget: fewer rounds for slow cases so the script stays bounded (at least 3)
    t0 = time.perf_counter()
    for fn in fns.values():
        fn()
    one_round = time.perf_counter() - t0
    repeats = args.repeats
    if one_round * repeats > args.budget:
        repeats = max(3, int(args.budget / max(one_round, 1e-9)))
    out["repeats"] = repeats

    samples: dict[str, list[float]] = {k: [] for k in fns}
    keys = list(fns)
    for i in range(repeats):
        order = keys[i % len(keys):] + keys[:i % len(keys)]
        for key in order:
            threads = default_threads if key.endswith("default threads") else args.torch_threads
            if key.startswith("peer") and torch is not None:
                torch.set_num_threads(threads)
            gc.collect()
            t0 = time.perf_counter()
            fns[key]()
            samples[key].append(time.perf_counter() - t0)
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
    out["samples_s"] = samples
    out["stats"] = {k: summarize(v) for k, v in samples.items()}
    out["ratios"] = {}
    for dt in args.dtypes:
        if f"peer {dt}" in samples:
            out["ratios"][dt] = out["stats"][f"ours {dt}"]["median_ms"] / out["stats"][f"peer {dt}"]["median_ms"]
    return out


def profile_case(case: Case, dt: str, runs: int = 3, top: int = 12) -> dict[str, Any]:
    fn = ours_fn(case, dt)
    fn()
    prof = LineProfiler(ROOT)
    for _ in range(runs):
        gc.collect()
        prof.run(fn)
    return {"loss": case.title, "dtype": dt, "total_ms": prof.total_ms(), "lines": prof.top(top)}


# --- report ---------------------------------------------------------------------------------------------

TABLES = (  # (title, which rows, the peer's column name)
    ("Keras and PyTorch families, beside PyTorch", lambda name: not name.startswith("sklearn.") and
     get_loss(name).family != "other", "torch"),
    ("sklearn.* objectives: loss, gradient and Hessian per sample, beside scikit-learn's Cython", lambda name:
     name.startswith("sklearn."), "sklearn"),
    ("Other losses, beside Optax, scikit-learn's metrics or torch ops", lambda name: get_loss(name).family == "other",
     "peer"),
)


def report(results: list[dict], args, env: dict) -> str:
    lines = []
    v = env["versions"]
    threads = (f"torch threads {args.torch_threads} (default {default_threads})"
               if torch is not None else "PyTorch not installed") + (f", NumPy BLAS and MKL threads {env['blas_threads']}"
                                                                    f"; exp/log: {env['vector_math']}")
    peers = ", ".join(f"{k} {v[k]}" for k in ("scikit-learn", "jax", "optax") if v.get(k, "not installed") != "not installed")
    lines.append(f"Python {v['python']}, NumPy {v['numpy']}, torch {v['torch']}{', ' + peers if peers else ''}; "
                 f"{env['cpu_count']} CPUs; {threads}; JAX: {env.get('xla_flags') or 'default threads'}; "
                 f"median of {args.repeats} interleaved rounds (fewer for cases over the {args.budget:.0f} s budget) "
                 f"after {args.warmup} warm-up; load average {env['load_start']} at start, {env['load_end']} at end; "
                 f"{describe_git(env)}.")
    for title, belongs, peer_name in TABLES:
        rows = [r for r in results if belongs(r["loss"])]
        if rows:
            lines += ["", f"**{title}**", ""] + table(rows, args, peer_name)
    slow = [r for r in results if any(x > TARGET for x in r.get("ratios", {}).values())]
    lines.append("")
    if not any(r.get("ratios") for r in results):
        lines.append("No peer comparison in this run.")
    elif slow:
        lines.append(f"Slower than the peer by more than {TARGET}x: " + ", ".join(
            f"{r['title']} ({', '.join(f'{dt}: {x:.2f}x' for dt, x in r['ratios'].items())})" for r in slow))
    else:
        lines.append(f"Every compared loss is within {TARGET}x of its peer.")
    text = "\n".join(lines)
    print("\n" + text)
    return text


def table(results: list[dict], args, peer_name: str) -> list[str]:
    """One Markdown table; ``peer_name`` heads the peer's columns ("torch" for the PyTorch tables)."""
    lines = []
    compare = any("peer" in r for r in results)
    torch_table = peer_name == "torch"
    head = ["loss", "y_pred shape"] + ([("PyTorch equivalent" if torch_table else "peer")] if compare else [])
    for dt in args.dtypes:
        short = dt.replace("float", "f")
        head += [f"ours {short}"] + ([f"{peer_name} {short}", f"ours/{peer_name} {short}"] if compare else [])
    default_column = args.torch_default_threads and compare and torch_table
    if default_column:
        head.append(f"torch f32, {default_threads} threads")
    if compare:
        head.append("values agree")
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for res in results:
        if "error" in res:
            lines.append(f"| {res['title']} | {'x'.join(map(str, res['shape']))} | error: {res['error']} |")
            continue
        st = res["stats"]
        info = res.get("peer")
        row = [res["title"], "x".join(map(str, res["shape"]))]
        if compare:
            row.append(f"{info['what']} ({info['kind']})" if info else "– (no peer mapping)")
        for dt in args.dtypes:
            row.append(f"{fmt_ms(st[f'ours {dt}']['median_ms'])} ms")
            if not compare:
                continue
            if f"peer {dt}" in st:
                ratio = res["ratios"][dt]
                flag = " ⚠" if ratio > TARGET else ""
                row += [f"{fmt_ms(st[f'peer {dt}']['median_ms'])} ms", f"**{ratio:.2f}x**{flag}"]
            else:
                row += ["–", "–"]
        if default_column:
            key = "peer float32 default threads"
            row.append(f"{fmt_ms(st[key]['median_ms'])} ms" if key in st else "–")
        if compare:
            row.append(agree_cell(res["agree"]))
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return lines


def agree_cell(agree: dict[str, dict]) -> str:
    if not agree:
        return "–"
    bad = {dt: a for dt, a in agree.items() if not a["ok"]}
    if bad:
        return "**NO**: " + "; ".join(
            f"{dt} " + (a["why"] if "why" in a else ", ".join(
                [f"loss {a['loss_rel_err']:.0e}"] + [f"{k} {e:.0e}" for k, e in a.get("errors", {}).items()]))
            for dt, a in bad.items())
    worst = max(max(a["loss_rel_err"], a["grad_rel_l2_err"]) for a in agree.values() if a["tol"] > 1e-6) \
        if any(a["tol"] > 1e-6 for a in agree.values()) else 0.0
    notes = [a["note"] for a in agree.values() if a.get("note")]
    text = f"yes (f32 rel. err {worst:.0e})" if "float32" in agree else "yes"
    return text + (f"; {notes[0]}" if notes else "")


def print_profile(prof: dict) -> str:
    lines = [f"\n### {prof['loss']} ({prof['dtype']}): {prof['total_ms']:.1f} ms per compute() under the line tracer",
             "", "| ms | share | hits | where | line |", "|---|---|---|---|---|"]
    for row in prof["lines"]:
        src = row["source"].replace("|", "\\|")
        if len(src) > 110:
            src = src[:107] + "..."
        lines.append(f"| {row['ms']:.2f} | {row['share']:.0%} | {row['hits']} | {row['where']} | `{src}` |")
    text = "\n".join(lines)
    print(text)
    return text


# --- main -----------------------------------------------------------------------------------------------

default_threads = 0


def parse_shape_override(items: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for item in items:
        name, _, shape = item.partition("=")
        out[get_loss(name.strip()).name] = tuple(int(n) for n in shape.lower().split("x"))
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", default="", help="comma-separated names (default: every registered loss)")
    ap.add_argument("--dtypes", default="float32,float64", help="comma-separated (default float32,float64)")
    ap.add_argument("--repeats", type=int, default=7, help="timed rounds per case (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="warm-up calls per function (default 2, min 1)")
    ap.add_argument("--budget", type=float, default=30.0,
                    help="seconds of timed rounds per case; slow cases get fewer rounds, at least 3 (default 30)")
    ap.add_argument("--shape", action="append", default=[], metavar="NAME=AxB[xC]",
                    help="override a loss's y_pred shape, e.g. --shape circle=2000x500 (repeatable)")
    ap.add_argument("--no-variants", action="store_true", help="skip the extra rows (from_logits, other kernels)")
    ap.add_argument("--no-torch", action="store_true", help="time ours only")
    ap.add_argument("--no-reuse-memory", action="store_true",
                    help="time NumPy with glibc's default allocator (the service reuses freed memory)")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="NumPy's BLAS threads, as LOSS_SERVICE_BLAS_THREADS (default 1, the service's default "
                         "and the same one core torch gets; 0 = OpenBLAS's default)")
    ap.add_argument("--vector-math", choices=vecmath.BACKENDS, default="auto",
                    help="the engine's exp/log backend, as LOSS_SERVICE_VECTOR_MATH (default auto: mkl where installed)")
    ap.add_argument("--torch-threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--torch-default-threads", action="store_true",
                    help="add a float32 torch column with torch's default thread count")
    ap.add_argument("--profile", default="auto",
                    help="'auto': line-profile losses over 1.5x torch; 'none'; or comma-separated loss names")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if any(d not in ("float32", "float64") for d in args.dtypes) or not args.dtypes:
        ap.error("--dtypes takes float32 and/or float64")
    if args.repeats < 1 or args.warmup < 1 or args.torch_threads < 1:
        ap.error("--repeats, --warmup and --torch-threads must be >= 1")
    args.names = [n.strip() for n in args.losses.split(",") if n.strip()] or None
    args.shapes = parse_shape_override(args.shape)
    return args


def main(argv=None) -> int:
    global default_threads
    args = parse_args(argv)
    if torch is not None:
        default_threads = torch.get_num_threads()  # before the OpenMP limit below, which torch shares
    env_reuse = False if args.no_reuse_memory else reuse_freed_memory()
    vecmath.use(args.vector_math)
    env_blas = args.blas_threads if limit_math_threads(args.blas_threads) else "default"
    if torch is None:
        print("PyTorch is not installed, so only our timings are shown. It is a benchmark extra, never a runtime "
              "dependency: install torch==2.13.0 (CPU wheel) in a venv of its own to compare (bench/README.md).\n")
        args.no_torch = True
    else:
        torch.set_num_threads(args.torch_threads)
    env = environment("numpy", "torch", "scikit-learn", "jax", "optax")
    env["xla_flags"] = os.environ.get("XLA_FLAGS")
    env["load_start"] = loadavg()
    env["torch_default_threads"] = default_threads or None
    env["reuse_freed_memory"] = env_reuse
    env["blas_threads"] = env_blas
    env["vector_math"] = vecmath.backend

    cases = build_cases(args.names, args.shapes)
    if args.no_variants:
        cases = [c for c in cases if not c.params and not c.label]
    results = []
    print(f"{len(cases)} cases; dtypes {', '.join(args.dtypes)}; load average {env['load_start']}", flush=True)
    for case in cases:
        t0 = time.perf_counter()
        try:
            prepare(case, args.dtypes, args.seed)
            res = time_case(case, args)
        except Exception as exc:  # noqa: BLE001 - one broken or new loss must not stop the table
            res = {"loss": case.name, "params": case.params, "shape": list(case.shape),
                   "error": f"{type(exc).__name__}: {exc}"[:200], "traceback": traceback.format_exc()}
        res["title"] = case.title
        results.append(res)
        if "error" in res:
            print(f"  {case.title}: ERROR {res['error']}", flush=True)
        else:
            parts = [f"{k} {fmt_ms(s['median_ms'])}" for k, s in res["stats"].items()]
            print(f"  {case.title} {'x'.join(map(str, case.shape))}: " + ", ".join(parts)
                  + f" ms  [{time.perf_counter() - t0:.1f} s]", flush=True)
        case.data.clear()  # free the inputs

    env["load_end"] = loadavg()
    table = report(results, args, env)

    profiles = []
    if args.profile != "none":
        if args.profile == "auto":
            targets = [(r["title"], max(r["ratios"], key=r["ratios"].get)) for r in results
                       if any(x > TARGET for x in r.get("ratios", {}).values())]
        else:
            wanted = {loss.name for loss in registered([n.strip() for n in args.profile.split(",") if n.strip()])}
            targets = [(r["title"], args.dtypes[0]) for r in results if r["loss"] in wanted and "error" not in r]
        by_title = {c.title: c for c in cases}
        for title, dt in targets:
            case = by_title[title]
            prepare(case, [dt], args.seed)
            try:
                prof = profile_case(case, dt)
            finally:
                case.data.clear()
            prof["markdown"] = print_profile(prof)
            profiles.append(prof)

    path = write_results("losses", {"environment": env, "args": {k: v for k, v in vars(args).items()},
                                    "results": results, "profiles": profiles, "table_markdown": table})
    print(f"\nraw results: {relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
