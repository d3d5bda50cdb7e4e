"""Write tests/data/optax_reference.json: the peers' own answers for poly1_cross_entropy, ntxent, triplet,
quadruplet and contrastive.

poly1_cross_entropy and ntxent are Optax's (``optax.losses.poly_loss_cross_entropy``, ``optax.ntxent``), run
here as they are. The others have no installable peer (the seed's ``triplet_loss`` and TensorFlow Addons'
``contrastive_loss`` are TensorFlow code), so their peer formula is written below in JAX as the peer writes it,
independently of the service's code: ``tf.split(y_pred, k, axis=-1)`` as ``jnp.split``, and ``tf.maximum(x, 0)``
as ``jnp.where(x >= 0, x, 0)``, which is what TensorFlow's gradient of ``maximum`` does at a tie (the gradient
goes to ``x`` where ``x >= y``; ``jnp.maximum`` would split it in halves).

Every case is seeded (numpy.random.default_rng), run in float64 (jax_enable_x64) and in float32 on the inputs
rounded to the dtype the wire carries, under each Keras reduction (the service's "Other losses" take Keras
requests: ``sample_weight``, default sum_over_batch_size); the reduction and the weights are applied here by
Keras's rules (``keras/src/losses/loss.py``: the weighted values; sum; their sum over the number of values;
over the summed weights for mean_with_sample_weight; a scalar loss is returned as it is). Recorded: ``loss``,
``per_sample`` (the weighted values, what Keras returns with reduction=None), ``gradient`` (``jax.grad`` of the
loss, of its sum for reduction none) and ``hessian`` (the diagonal of ``jax.hessian``). Where the peer answers
NaN (ntxent with no positive pair) the case goes to "nonfinite": the service answers 422 there.

Optax and JAX are reference-only, never runtime or CI dependencies. To regenerate, in an environment of its own:
    pip install numpy==2.4.6 jax==0.10.2 optax==0.2.8
    python scripts/optax_reference.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402 - after enabling float64
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/_reference_json.py, run from anywhere
from _reference_json import nonfinite_to_str, wire, write_reference  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "optax_reference.json"
SEED = 20261202
LOSSES = ("poly1_cross_entropy", "ntxent", "triplet", "quadruplet", "contrastive")
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none")
DTYPES = {"float64": jnp.float64, "float32": jnp.float32}


# --------------------------------------------------------------------------- the peers


def poly1(y_true, y_pred, params):
    return optax.losses.poly_loss_cross_entropy(y_pred, y_true, epsilon=params.get("epsilon", 2.0))


def ntxent(y_true, y_pred, params):
    return optax.losses.ntxent(y_pred, y_true, temperature=params.get("temperature", 0.07))


def tf_maximum_zero(x):
    """tf.maximum(x, 0.0) with TensorFlow's gradient: 1 where x >= 0 (a tie included)."""
    return jnp.where(x >= 0, x, jnp.zeros_like(x))


def embeddings(y_pred, k):
    """The seed's ``tf.split(y_pred, k, axis=-1)`` for (B, k·D); the stacked (B, k, D) layout by index."""
    if y_pred.ndim == 3:
        return [y_pred[:, i] for i in range(k)]
    return jnp.split(y_pred, k, axis=-1)


def triplet(y_true, y_pred, params):
    # the seed's triplet_loss (FaceNet), up to its final tf.reduce_sum over the batch (Keras's reduction here)
    anchor, positive, negative = embeddings(y_pred, 3)
    pos_dist = jnp.sum(jnp.square(anchor - positive), axis=-1)
    neg_dist = jnp.sum(jnp.square(anchor - negative), axis=-1)
    basic_loss = pos_dist - neg_dist + params.get("alpha", 0.2)
    return tf_maximum_zero(basic_loss)


def quadruplet(y_true, y_pred, params):
    # Chen et al. 2017 with squared distances, written as the seed writes its triplet loss
    anchor, positive, negative1, negative2 = embeddings(y_pred, 4)
    ap = jnp.sum(jnp.square(anchor - positive), axis=-1)
    an = jnp.sum(jnp.square(anchor - negative1), axis=-1)
    nn = jnp.sum(jnp.square(negative1 - negative2), axis=-1)
    return (tf_maximum_zero(ap - an + params.get("alpha1", 1.0))
            + tf_maximum_zero(ap - nn + params.get("alpha2", 0.5)))


def contrastive(y_true, y_pred, params):
    # tfa.losses.contrastive_loss
    margin = params.get("margin", 1.0)
    return y_true * jnp.square(y_pred) + (1.0 - y_true) * jnp.square(tf_maximum_zero(margin - y_pred))


PEERS = {"poly1_cross_entropy": poly1, "ntxent": ntxent, "triplet": triplet, "quadruplet": quadruplet,
         "contrastive": contrastive}
LABEL_INPUTS = {"ntxent"}  # y_true holds integer labels (sent as JSON integers)


# --------------------------------------------------------------------------- input sets


def normal(rng, *shape, scale=1.0):
    return np.round(rng.normal(0.0, scale, shape), 4)


def one_hot(rng, n, c):
    return np.eye(c)[rng.integers(0, c, n)]


def poly1_variants(rng):
    soft = rng.uniform(0.0, 1.0, (4, 5))
    soft = np.round(soft / soft.sum(axis=1, keepdims=True), 4)
    return [("one_hot", one_hot(rng, 4, 3), normal(rng, 4, 3, scale=2.0), {}),
            ("soft/epsilon=-1", soft, normal(rng, 4, 5, scale=2.0), {"epsilon": -1.0}),
            ("large_logits/epsilon=0.5", one_hot(rng, 3, 4), normal(rng, 3, 4, scale=30.0), {"epsilon": 0.5}),
            ("rank3", one_hot(rng, 6, 3).reshape(2, 3, 3), normal(rng, 2, 3, 3), {})]


def ntxent_variants(rng):
    return [("pairs", np.array([0, 0, 1, 1, 2, 2]), normal(rng, 6, 3), {}),
            ("groups/temperature=0.5", np.array([3, 1, 3, 3, 1, 7, 5]), normal(rng, 7, 4), {"temperature": 0.5}),
            ("one_class_no_negatives", np.array([2, 2, 2]), normal(rng, 3, 2), {"temperature": 0.2}),
            ("scaled_rows", np.array([0, 1, 0, 1]), normal(rng, 4, 3) * np.array([[1e-3], [50.0], [1.0], [7.0]]),
             {"temperature": 1.0}),
            # a row whose squared norm is under finfo.eps in both dtypes: Optax's floor of the norm at sqrt(eps)
            ("tiny_row", np.array([0, 1, 0, 1, 1]), normal(rng, 5, 3) * np.array([[1e-9], [1.0], [1.0], [2.0], [1.0]]),
             {"temperature": 0.3})]


def ntxent_nonfinite(rng):
    return [("no_positive_pair", np.array([0, 1, 2, 3]), normal(rng, 4, 3), {})]


def triplet_variants(rng):
    kink = np.zeros((2, 3, 2))
    kink[0, 2] = [0.5, 0.0]  # |a - p|^2 - |a - n|^2 + 0.25 = 0 exactly: the hinge at its kink
    kink[1] = [[0.0, 1.0], [0.25, 0.75], [1.0, 0.0]]
    stacked = normal(rng, 5, 3, 4, scale=0.5)
    return [("stacked", None, stacked, {}),
            ("concatenated", None, stacked.reshape(5, 12), {}),  # the same triplets as tf.split reads them
            ("concatenated/alpha=1", None, normal(rng, 4, 9, scale=0.5), {"alpha": 1.0}),
            ("kink/alpha=0.25", None, kink, {"alpha": 0.25})]


def quadruplet_variants(rng):
    stacked = normal(rng, 5, 4, 3, scale=0.6)
    return [("stacked", None, stacked, {}),
            ("concatenated", None, stacked.reshape(5, 12), {}),
            ("concatenated/alpha1=0.3,alpha2=0.1", None, normal(rng, 4, 8, scale=0.6),
             {"alpha1": 0.3, "alpha2": 0.1})]


def contrastive_variants(rng):
    labels = np.array([1, 0, 0, 1, 0, 1, 0, 1], dtype=np.float64)
    distances = np.round(rng.uniform(0.0, 2.0, 8), 4)
    distances[2] = 1.0  # exactly the margin: the kink of max(m - d, 0)
    distances[3] = 0.0
    return [("pairs", labels, distances, {}),
            ("margin=2", labels, np.round(rng.uniform(0.0, 3.0, 8), 4), {"margin": 2.0}),
            ("column", labels[:6, None], np.round(rng.uniform(0.0, 2.0, (6, 1)), 4), {})]


VARIANTS = {"poly1_cross_entropy": poly1_variants, "ntxent": ntxent_variants, "triplet": triplet_variants,
            "quadruplet": quadruplet_variants, "contrastive": contrastive_variants}
NONFINITE = {"ntxent": ntxent_nonfinite}


# --------------------------------------------------------------------------- Keras's reduction, run


def reduced(values, weights, reduction):
    """Keras's reduce_weighted_values for weights of the values' shape (or none)."""
    weighted = values if weights is None else values * weights
    if reduction == "none" or weighted.ndim == 0:
        return weighted, weighted
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total, weighted
    if reduction == "mean_with_sample_weight" and weights is not None:
        return total / jnp.sum(weights), weighted
    return total / weighted.size, weighted


def run(loss, y_true, y_pred, params, weights, reduction, dtype):
    fn = PEERS[loss]

    def scalar(x):
        value, _ = reduced(fn(y_true, x, params), weights, reduction)
        return jnp.sum(value)

    value, per_sample = reduced(fn(y_true, y_pred, params), weights, reduction)
    gradient = jax.grad(scalar)(y_pred)
    flat = y_pred.reshape(-1)
    hessian = jax.hessian(lambda v: scalar(v.reshape(y_pred.shape)))(flat)
    diagonal = jnp.diagonal(hessian).reshape(y_pred.shape)
    return {k: np.asarray(v, dtype=np.float64) for k, v in
            {"loss": value, "per_sample": per_sample, "gradient": gradient, "hessian": diagonal}.items()}


def case(loss, name, y_true, y_pred, params, weights, reduction, dtype):
    jdt = DTYPES[dtype]
    wired_pred = np.asarray(y_pred).astype(dtype)
    x = jnp.asarray(wired_pred, dtype=jdt)
    if y_true is None:
        t = None
    elif loss in LABEL_INPUTS:
        t = jnp.asarray(y_true)
    else:
        t = jnp.asarray(np.asarray(y_true).astype(dtype), dtype=jdt)
    w = None if weights is None else jnp.asarray(np.asarray(weights).astype(dtype), dtype=jdt)
    expected = run(loss, t, x, params, w, reduction, dtype)
    request = {"y_pred": wire(y_pred, dtype), "params": params, "reduction": reduction, "dtype": dtype,
               "outputs": ["loss", "per_sample", "gradient", "hessian"]}
    if y_true is not None:
        request["y_true"] = wire(y_true, dtype)
    if weights is not None:
        request["sample_weight"] = wire(weights, dtype)
    weighted = "" if weights is None else "/weighted"
    return {"id": f"{loss}/{name}{weighted}/{reduction}/{dtype}", "loss": loss, "request": request,
            "expected": {k: nonfinite_to_str(v.tolist()) for k, v in expected.items()}}


def per_sample_shape(loss, y_true, y_pred, params):
    values = PEERS[loss](None if y_true is None else jnp.asarray(y_true), jnp.asarray(y_pred), params)
    return np.shape(values)


def build() -> dict:
    cases, nonfinite = [], []
    for index, loss in enumerate(LOSSES):
        rng = np.random.default_rng([SEED, index])
        for name, y_true, y_pred, params in VARIANTS[loss](rng):
            shape = per_sample_shape(loss, y_true, y_pred, params)
            weights = np.round(rng.uniform(0.5, 2.0, shape), 3) if shape else np.asarray(0.7)
            for dtype in DTYPES:
                for reduction in REDUCTIONS:
                    for w in (None, weights):
                        made = case(loss, name, y_true, y_pred, params, w, reduction, dtype)
                        if not all(np.isfinite(np.asarray(v, dtype=float)).all() for v in made["expected"].values()):
                            raise AssertionError(f"{made['id']}: the peer's answer is not finite")
                        cases.append(made)
        for name, y_true, y_pred, params in NONFINITE.get(loss, lambda _: [])(rng):
            for dtype in DTYPES:
                made = case(loss, name, y_true, y_pred, params, None, "sum_over_batch_size", dtype)
                if np.isfinite(np.asarray(made["expected"]["loss"], dtype=float)).all():
                    raise AssertionError(f"{made['id']}: the peer's answer is finite")
                nonfinite.append(made)
    return {"jax_version": jax.__version__, "optax_version": optax.__version__, "numpy_version": np.__version__,
            "seed": SEED, "generated_by": "scripts/optax_reference.py", "cases": cases, "nonfinite": nonfinite}


def main() -> None:
    out = build()
    write_reference(OUT, out, len(LOSSES))


if __name__ == "__main__":
    main()
