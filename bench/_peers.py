"""The peers of issue 11's losses for bench/bench_losses.py: scikit-learn's Cython objectives for the
``sklearn.*`` family, and for the "other" family Optax (``jax.jit`` on CPU), scikit-learn's metrics
(value only: they have no gradient) or the same formula written in torch ops.

Each peer is optional: a row whose library is not installed is skipped with a printed line. JAX is
held to one CPU thread (``XLA_FLAGS``, set before it is imported), as torch and the engine are, and
runs in float64 where asked (``jax_enable_x64``); its inputs are device arrays made before timing
and its jitted function is compiled before the first timed call; each call ends with
``block_until_ready``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@dataclass(frozen=True)
class Peer:
    """One row's peer: what ours computes for the row and how the peer computes the same numbers.

    ``build(data, dtype)`` returns a zero-argument call (timed) or None where the peer refuses the dtype;
    ``extract`` turns its result into the numbers to compare (untimed): ``loss`` (a float) and any of
    ``per_sample``, ``gradient``, ``hessian`` (arrays)."""

    library: str  # the module whose absence skips the row: torch, sklearn or optax
    kind: str  # for the table: "torch ops", "scikit-learn Cython", ...
    what: str  # the call, for the table
    build: Callable[[dict, str], Callable[[], Any] | None]
    extract: Callable[[Any], dict[str, Any]]
    outputs: tuple[str, ...] = ("loss", "gradient")  # what ours computes (what the peer gives)
    reduction: str | None = None  # ours: None = the loss's default
    weighted: bool = False  # draw a sample_weight uniform in [0.5, 2) and give it to both sides
    params: dict[str, Any] = field(default_factory=dict)  # the row's parameters (overrides of the defaults)
    label: str = ""  # added to the row title (a second row of one loss)
    shape: tuple[int, ...] | None = None  # y_pred's shape, where the family default does not suit
    inputs: Callable | None = None  # (rng, shape, params) -> {"y_true", "y_pred"}, where loss.sample does not suit


# --- torch ops: the formula written in torch, forward + backward on a zero-copy leaf -------------------------

def _torch_peer(what: str, formula: Callable, **kw) -> Peer:
    """``formula(x, y, params) -> scalar``; ``x`` is the leaf y_pred, ``y`` y_true as a tensor of its dtype."""
    def build(d, dt):
        y = torch.from_numpy(np.ascontiguousarray(d["y_true"]))
        x_np, params = d["y_pred"], d["params"]

        def run():
            x = torch.from_numpy(x_np).requires_grad_(True)
            value = formula(x, y, params)
            value.backward()
            return value.detach(), x.grad
        return run
    return Peer("torch", "torch ops", what, build, lambda r: {"loss": float(r[0]), "gradient": r[1].numpy()}, **kw)


def _quantile(x, y, p):
    q = p["quantile"]
    e = x - y
    return torch.where(e > 0, (1 - q) * e, -q * e).mean()


def _fbeta(x, y, p):
    b2, eps = p["beta"] ** 2, p["epsilon"]
    tp = (y * x).sum()
    fp = ((1 - y) * x).sum()
    fn = (y * (1 - x)).sum()
    precision, recall = tp / (tp + fp + eps), tp / (tp + fn + eps)
    return 1 - (1 + b2) * precision * recall / (b2 * precision + recall + eps)


def _pseudo_huber(x, y, p):
    e = x - y
    u = e / p["delta"]
    return (e * e / (torch.sqrt(1 + u * u) + 1)).mean()  # delta^2 (sqrt(1 + u^2) - 1), without the cancellation


def _expectile(x, y, p):
    tau = p["expectile"]
    e = x - y
    return (torch.where(e > 0, 1 - tau, tau) * e * e).mean()


def _split(x, k):
    """The k embeddings of each sample, from (B, k, D) or from (B, k·D) as tf.split(x, k, axis=-1) reads it."""
    return x.unbind(1) if x.ndim == 3 else torch.chunk(x, k, dim=-1)


def _sq(u, v):
    return (u - v).square().sum(-1)


def _triplet(x, y, p):
    a, pos, neg = _split(x, 3)
    return torch.relu(_sq(a, pos) - _sq(a, neg) + p["alpha"]).mean()


def _quadruplet(x, y, p):
    a, pos, n1, n2 = _split(x, 4)
    d_ap = _sq(a, pos)
    return (torch.relu(d_ap - _sq(a, n1) + p["alpha1"]) + torch.relu(d_ap - _sq(n1, n2) + p["alpha2"])).mean()


def _contrastive(x, y, p):
    return (y * x * x + (1 - y) * torch.relu(p["margin"] - x).square()).mean()


def _concatenated(k: int) -> Callable:
    """(B, k, D) embeddings drawn as the loss samples them, sent as the seed's concatenated (B, k·D)."""
    def inputs(rng, shape, p):
        b, d = shape[0], shape[1] // k
        return {"y_true": np.zeros(b), "y_pred": rng.normal(size=(b, k, d)).reshape(b, k * d)}
    return inputs


# --- scikit-learn: its metrics (value only) and its Cython objectives --------------------------------------

def _metric_peer(metric: str, call: Callable, **kw) -> Peer:
    """``call(metrics_module, y_true, y_pred, params) -> float``: the metric on the row's arrays."""
    def build(d, dt):
        from sklearn import metrics
        y, x, params = d["y_true"], d["y_pred"], d["params"]
        return lambda: call(metrics, y, x, params)
    return Peer("sklearn", "scikit-learn metric; value only, it has no gradient: ours computes the loss alone",
                f"sklearn.metrics.{metric}", build, lambda r: {"loss": float(r)}, outputs=("loss",), **kw)


def _binary_labels_and_probabilities(rng, shape, p):
    """A (N, 1) column of 0/1 labels and one of positive-class probabilities: the binary Brier score."""
    return {"y_true": (rng.random(shape) < 0.5).astype(np.float64), "y_pred": rng.uniform(0.0, 1.0, shape)}


SKLEARN_CLASSES = {
    "sklearn.half_squared_error": "HalfSquaredError", "sklearn.absolute_error": "AbsoluteError",
    "sklearn.pinball_loss": "PinballLoss", "sklearn.huber_loss": "HuberLoss",
    "sklearn.half_poisson": "HalfPoissonLoss", "sklearn.half_gamma": "HalfGammaLoss",
    "sklearn.half_tweedie": "HalfTweedieLoss", "sklearn.half_tweedie_identity": "HalfTweedieLossIdentity",
    "sklearn.half_binomial": "HalfBinomialLoss", "sklearn.exponential": "ExponentialLoss",
    "sklearn.half_multinomial": "HalfMultinomialLoss",
}


def _sklearn_objective(name: str) -> Peer:
    cls_name = SKLEARN_CLASSES[name]

    def build(d, dt):
        from sklearn._loss import loss as sk
        params = {k: v for k, v in d["params"].items() if k != "hessian"}
        raw = d["y_pred"]
        objective = getattr(sk, cls_name)(n_classes=raw.shape[1]) if raw.ndim == 2 else getattr(sk, cls_name)(**params)
        y, w = d["y_true"], d["sample_weight"]

        def run():
            per_sample, _ = objective.loss_gradient(y, raw, sample_weight=w, n_threads=1)
            gradient, hessian = objective.gradient_hessian(y, raw, sample_weight=w, n_threads=1)
            return per_sample, gradient, hessian
        return run

    return Peer("sklearn", "scikit-learn Cython", f"{cls_name}: loss_gradient + gradient_hessian (n_threads=1)",
                build, lambda r: {"per_sample": r[0], "gradient": r[1], "hessian": r[2]},
                outputs=("loss", "per_sample", "gradient", "hessian"), reduction="sum", weighted=True,
                shape=(200_000, 5) if name == "sklearn.half_multinomial" else None)


# --- Optax: jax.jit of value_and_grad on CPU ------------------------------------------------------------------

_jax_ready = False


def _jax():
    global _jax_ready
    import jax
    if not _jax_ready:
        jax.config.update("jax_enable_x64", True)  # float64 rows in float64 (float32 inputs stay float32)
        _jax_ready = True
    return jax


def _optax_peer(what: str, make_loss: Callable, label_dtype=None, **kw) -> Peer:
    """``make_loss(optax, params) -> f(x, y) -> scalar``; jitted with value_and_grad in x, compiled before timing."""
    def build(d, dt):
        jax = _jax()
        import optax
        f = jax.jit(jax.value_and_grad(make_loss(optax, d["params"])))
        x = jax.device_put(d["y_pred"])
        y = jax.device_put(d["y_true"] if label_dtype is None else d["y_true"].astype(label_dtype))
        jax.block_until_ready(f(x, y))  # compile

        def run():
            return jax.block_until_ready(f(x, y))
        return run
    return Peer("optax", "Optax, jax.jit on CPU, 1 thread", what, build,
                lambda r: {"loss": float(r[0]), "gradient": np.asarray(r[1])}, **kw)


def _poly1(optax, p):
    eps = p["epsilon"]
    return lambda x, y: optax.losses.poly_loss_cross_entropy(x, y, epsilon=eps).mean()


def _ntxent(optax, p):
    tau = p["temperature"]
    return lambda x, labels: optax.losses.ntxent(x, labels, temperature=tau)


# B^2 = 1e6 similarities (the loss's declared work); Optax broadcasts the cosine similarity over (B, B, D), 1.6e7
# numbers (at B = 2000, D = 100 that is 4e8 numbers, 3.2 GB in float64, and a minute per call)
NTXENT_SHAPE = (1000, 16)


def peers() -> dict[str, list[Peer]]:
    """The rows of issue 11's losses, by loss name (several rows where a loss has two peers or layouts)."""
    column = (1_000_000, 1)  # scikit-learn's metrics take 1-D arrays: one value per sample, as the README says
    sk_metric = {
        "quantile": _metric_peer("mean_pinball_loss",
                                 lambda m, y, x, p: m.mean_pinball_loss(y, x, alpha=p["quantile"]),
                                 label="vs scikit-learn"),
        "zero_one": _metric_peer("zero_one_loss", lambda m, y, x, p: m.zero_one_loss(y, x)),
        "tweedie_deviance": _metric_peer("mean_tweedie_deviance(power=1.5)",
                                         lambda m, y, x, p: m.mean_tweedie_deviance(y[:, 0], x[:, 0], power=p["power"]),
                                         params={"power": 1.5}, shape=column),
        "poisson_deviance": _metric_peer("mean_poisson_deviance",
                                         lambda m, y, x, p: m.mean_poisson_deviance(y[:, 0], x[:, 0]), shape=column),
        "gamma_deviance": _metric_peer("mean_gamma_deviance",
                                       lambda m, y, x, p: m.mean_gamma_deviance(y[:, 0], x[:, 0]), shape=column),
        "brier": _metric_peer("brier_score_loss (binary: (N, 1) probabilities of the positive class)",
                              lambda m, y, x, p: m.brier_score_loss(y[:, 0], x[:, 0]), shape=column,
                              inputs=_binary_labels_and_probabilities),
    }
    rows: dict[str, list[Peer]] = {name: [peer] for name, peer in sk_metric.items()}
    rows["quantile"].append(_torch_peer("where(e > 0, (1-q) e, -q e).mean()", _quantile, label="vs torch ops"))
    rows["fbeta"] = [_torch_peer("1 - (1+b^2) P R / (b^2 P + R + eps), batch sums", _fbeta)]
    rows["l1_penalty"] = [_torch_peer("factor * x.abs().sum()", lambda x, y, p: p["factor"] * x.abs().sum())]
    rows["l2_penalty"] = [_torch_peer("factor * x.square().sum()", lambda x, y, p: p["factor"] * x.square().sum())]
    rows["pseudo_huber"] = [_torch_peer("e^2 / (sqrt(1 + (e/delta)^2) + 1)", _pseudo_huber)]
    rows["expectile"] = [_torch_peer("where(e > 0, 1-tau, tau) e^2", _expectile)]
    rows["triplet"] = [_torch_peer("x.unbind(1), relu(|a-p|^2 - |a-n|^2 + alpha)", _triplet, shape=(3333, 3, 100)),
                       _torch_peer("torch.chunk(x, 3, -1), relu(|a-p|^2 - |a-n|^2 + alpha)", _triplet,
                                   shape=(3333, 300), label="concatenated (B, 3·D)", inputs=_concatenated(3))]
    rows["quadruplet"] = [_torch_peer("x.unbind(1), two relu hinges on squared distances", _quadruplet,
                                      shape=(2500, 4, 100))]
    rows["contrastive"] = [_torch_peer("y d^2 + (1-y) relu(m - d)^2", _contrastive)]
    rows["poly1_cross_entropy"] = [_optax_peer("optax.losses.poly_loss_cross_entropy(...).mean()", _poly1)]
    rows["ntxent"] = [_optax_peer("optax.losses.ntxent (int32 labels)", _ntxent, label_dtype=np.int32,
                                  shape=NTXENT_SHAPE)]
    for name in SKLEARN_CLASSES:
        rows[name] = [_sklearn_objective(name)]
    return rows
