"""Seeded inputs in a loss's valid domain.

Used by the exercises endpoint and by the registry-driven gradient tests, so every registered
loss can be exercised without writing inputs by hand. The algorithm is part of the public
contract (the same request gives the same numbers in every release): NumPy's ``PCG64`` bit
generator seeded with the request's seed, then one draw per array in the order y_true, y_pred,
sample_weight, each by the rule of its *kind* below, rounded to ``decimals`` places.
"""

from __future__ import annotations

import numpy as np

KINDS = {
    "real": "normal(0, 1)",
    "logits": "normal(0, 2)",
    "positive": "uniform(0.1, 3)",
    "probability": "uniform(0.05, 0.95)",
    "binary": "integers {0, 1}",
    "pm1": "integers {-1, 1}",
    "one_hot": "one-hot rows over the last axis (class uniform)",
    "labels": "integer class labels, uniform over the last axis of y_pred",
    "simplex": "softmax of normal(0, 1) over the last axis (rows sum to 1)",
    "counts": "poisson(2)",
    "unit_rows": "normal(0, 1) rows over the last axis, scaled to unit L2 norm",
    "weights": "uniform(0.5, 2)",
}


def rng_for(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def draw(kind: str, rng: np.random.Generator, shape: tuple[int, ...], decimals: int | None = None) -> np.ndarray:
    """One array of ``kind``. Labels are drawn for ``shape[:-1]`` with ``shape[-1]`` classes."""
    if kind == "real":
        out = rng.normal(0.0, 1.0, shape)
    elif kind == "logits":
        out = rng.normal(0.0, 2.0, shape)
    elif kind == "positive":
        out = rng.uniform(0.1, 3.0, shape)
    elif kind == "probability":
        out = rng.uniform(0.05, 0.95, shape)
    elif kind == "weights":
        out = rng.uniform(0.5, 2.0, shape)
    elif kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float64)
    elif kind == "pm1":
        return (2 * rng.integers(0, 2, shape) - 1).astype(np.float64)
    elif kind == "counts":
        return rng.poisson(2.0, shape).astype(np.float64)
    elif kind == "labels":
        return rng.integers(0, shape[-1], shape[:-1]).astype(np.float64)
    elif kind == "one_hot":
        labels = rng.integers(0, shape[-1], shape[:-1])
        one_hot = np.zeros(shape)
        np.put_along_axis(one_hot, labels[..., None], 1.0, axis=-1)  # no C x C identity: C may be large
        return one_hot
    elif kind == "simplex":
        out = _softmax(rng.normal(0.0, 1.0, shape))
        if decimals is not None:
            # round, then put the rounding residue on the largest entry so rows still sum to 1
            out = np.round(out, decimals)
            idx = np.argmax(out, axis=-1)[..., None]
            np.put_along_axis(out, idx, np.take_along_axis(out, idx, -1) + 1.0 - out.sum(-1, keepdims=True), -1)
            return np.round(out, decimals)
        return out
    elif kind == "unit_rows":
        out = rng.normal(0.0, 1.0, shape)
        out = out / np.linalg.norm(out, axis=-1, keepdims=True)
    else:  # pragma: no cover - a registry bug, caught by the registry tests
        raise ValueError(f"unknown sample kind {kind!r}")
    return np.round(out, decimals) if decimals is not None else out
