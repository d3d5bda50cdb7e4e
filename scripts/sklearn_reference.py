"""Write tests/data/sklearn_reference.json: scikit-learn's own answers for the eleven sklearn.* objectives.

The service's gradient-boosting family (losses.md, "Gradient-boosting objectives") must give the
numbers of scikit-learn's ``sklearn._loss`` classes: per-sample ``loss``, ``gradient_hessian`` and
the weighted average ``__call__``. This script runs those classes (``n_threads=1``) on seeded inputs
(numpy.random.default_rng) that cover their branches (ties y == raw for the absolute error and the
pinball loss, |e| == delta for Huber, the binomial's cut-offs at -37, -2, 18 and 33.3, y == 0 for
Tweedie, the special powers 0, 1 and 2), in float64 and float32 (scikit-learn's Cython takes both
and writes its outputs in the input's dtype), with and without ``sample_weight``, under every Keras
reduction. Each case is the request the service receives (y_true, raw predictions as y_pred,
sample_weight, reduction, params) with the expected ``loss``, ``per_sample``, ``gradient`` and
``hessian``:

    per_sample = loss(y, raw, sample_weight)                   (scikit-learn multiplies by the weight)
    gradient, hessian = gradient_hessian(y, raw, sample_weight) times d loss / d per_sample:
        sum: 1;  none: 1;  sum_over_batch_size / mean: 1 / n;
        mean_with_sample_weight: 1 / sum(w), whose loss is scikit-learn's __call__ itself

With ``params.hessian = "exact"`` the expected Hessian is scikit-learn's where it is the true second
derivative, and 0 for the absolute error and the pinball loss (scikit-learn's gradient is piecewise
constant there; its Hessian 1 is a deliberate replacement). Inputs on which scikit-learn overflows
to infinity go to "nonfinite"; the service answers them with a 422.

scikit-learn is never a runtime or CI dependency. To regenerate, in an environment of its own:
    pip install numpy==2.4.6 scikit-learn
    python scripts/sklearn_reference.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn._loss import loss as sk

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "sklearn_reference.json"
SEED = 20261202
N = 12
REDUCTIONS = ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight", "none")
APPROXIMATE = {"sklearn.absolute_error", "sklearn.pinball_loss"}  # Hessian 1 where the true one is 0


def _with(values: np.ndarray, *special: float) -> np.ndarray:
    """``values`` with its first entries replaced by the branch points to cover."""
    out = values.copy()
    out[:len(special)] = special
    return out


def inputs(name: str, params: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, raw) for one case, in the loss's domain, branch points included."""
    if name in ("sklearn.half_squared_error", "sklearn.absolute_error", "sklearn.pinball_loss",
                "sklearn.huber_loss"):
        y = np.round(rng.normal(0, 1.5, N), 3)
        raw = np.round(rng.normal(0, 1.5, N), 3)
        raw[:2] = y[:2]  # ties: the absolute error's gradient is -1 there, the pinball's -q
        if name == "sklearn.huber_loss":
            delta = params.get("delta", 0.5)
            raw[2], raw[3] = y[2] + delta, y[3] - delta  # |e| == delta: still quadratic, Hessian 1
        return y, raw
    if name in ("sklearn.half_binomial", "sklearn.exponential"):
        y = rng.integers(0, 2, N).astype(float)
        y[-2:] = (0.25, 0.8)  # soft labels in [0, 1]
        raw = rng.normal(0, 3, N)
        if name == "sklearn.half_binomial":
            raw = _with(raw, -40.0, -37.0, -2.0, 18.0, 25.0, 33.3, 36.0, -20.0)
        else:
            raw = _with(raw, -30.0, 30.0)
        return y, raw
    if name == "sklearn.half_multinomial":
        k = params["classes"]
        y = rng.integers(0, k, N).astype(float)
        raw = rng.normal(0, 2, (N, k))
        raw[0] = 50.0  # equal scores: p = 1/K
        raw[1, 0] = 700.0  # one huge score: the max is subtracted first
        return y, raw
    power = params.get("power")
    y = rng.poisson(2.0, N).astype(float)
    if name == "sklearn.half_gamma" or (power is not None and power >= 2):
        y = np.round(rng.uniform(0.1, 5.0, N), 3)
    elif power is not None and power <= 0:
        y = np.round(rng.normal(1.0, 1.5, N), 3)
    if name == "sklearn.half_tweedie_identity" and power != 0:
        raw = np.round(rng.uniform(0.1, 5.0, N), 3)
    else:
        raw = np.round(rng.normal(0.3, 1.0, N), 3)
    return y, raw


def sklearn_loss(name: str, params: dict):
    p = {k: v for k, v in params.items() if k not in ("hessian", "classes")}
    cls = {"sklearn.half_squared_error": sk.HalfSquaredError, "sklearn.absolute_error": sk.AbsoluteError,
           "sklearn.pinball_loss": sk.PinballLoss, "sklearn.huber_loss": sk.HuberLoss,
           "sklearn.half_poisson": sk.HalfPoissonLoss, "sklearn.half_gamma": sk.HalfGammaLoss,
           "sklearn.half_tweedie": sk.HalfTweedieLoss, "sklearn.half_tweedie_identity": sk.HalfTweedieLossIdentity,
           "sklearn.half_binomial": sk.HalfBinomialLoss, "sklearn.exponential": sk.ExponentialLoss,
           "sklearn.half_multinomial": sk.HalfMultinomialLoss}[name]
    if name == "sklearn.half_multinomial":
        return cls(n_classes=params["classes"])
    return cls(**p)


VARIANTS = (
    ("sklearn.half_squared_error", {}),
    ("sklearn.absolute_error", {}),
    ("sklearn.absolute_error", {"hessian": "exact"}),
    ("sklearn.pinball_loss", {}),
    ("sklearn.pinball_loss", {"quantile": 0.9}),
    ("sklearn.pinball_loss", {"quantile": 0.1, "hessian": "exact"}),
    ("sklearn.huber_loss", {}),
    ("sklearn.huber_loss", {"delta": 1.25}),
    ("sklearn.half_poisson", {}),
    ("sklearn.half_gamma", {}),
    ("sklearn.half_tweedie", {}),
    ("sklearn.half_tweedie", {"power": 0.0}),
    ("sklearn.half_tweedie", {"power": 1.0}),
    ("sklearn.half_tweedie", {"power": 2.0}),
    ("sklearn.half_tweedie", {"power": 3.0, "hessian": "exact"}),
    ("sklearn.half_tweedie_identity", {}),
    ("sklearn.half_tweedie_identity", {"power": 0.0}),
    ("sklearn.half_tweedie_identity", {"power": 1.0}),
    ("sklearn.half_tweedie_identity", {"power": 2.0}),
    ("sklearn.half_tweedie_identity", {"power": 3.0}),
    ("sklearn.half_binomial", {}),
    ("sklearn.exponential", {}),
    ("sklearn.half_multinomial", {"classes": 3}),
    ("sklearn.half_multinomial", {"classes": 5, "hessian": "exact"}),
)


def _list(a: np.ndarray) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def cases_of(name: str, params: dict, rng: np.random.Generator) -> list[dict]:
    y64, raw64 = inputs(name, params, rng)
    w64 = np.round(rng.uniform(0.5, 2.0, N), 3)
    loss = sklearn_loss(name, params)
    request_params = {k: v for k, v in params.items() if k != "classes"}
    out = []
    for dtype, dt in (("float64", np.float64), ("float32", np.float32)):
        y, raw, w = (np.ascontiguousarray(a, dtype=dt) for a in (y64, raw64, w64))
        for weighted in (False, True):
            sw = w if weighted else None
            per_sample = loss.loss(y, raw, sample_weight=sw, n_threads=1)
            grad, hess = loss.gradient_hessian(y, raw, sample_weight=sw, n_threads=1)
            grad_only = loss.gradient(y, raw, sample_weight=sw, n_threads=1)
            assert np.array_equal(grad, grad_only), name  # gradient and gradient_hessian agree
            if params.get("hessian") == "exact" and name in APPROXIMATE:
                hess = np.zeros_like(hess)
            weights = np.ones(N, dtype=dt) if sw is None else sw
            for reduction in REDUCTIONS:
                if reduction == "none":
                    total, scale = per_sample, np.ones((), dtype=dt)
                elif reduction == "sum":
                    total, scale = per_sample.sum(dtype=dt), np.ones((), dtype=dt)
                elif reduction == "mean_with_sample_weight":
                    total = loss(y, raw, sample_weight=sw, n_threads=1)  # scikit-learn's weighted average
                    scale = dt(1) / weights.sum(dtype=dt)
                else:
                    total, scale = per_sample.sum(dtype=dt) / dt(N), dt(1) / dt(N)
                request = {"y_true": _list(y), "y_pred": _list(raw), "reduction": reduction, "dtype": dtype,
                           "params": request_params, "outputs": ["loss", "per_sample", "gradient", "hessian"]}
                if weighted:
                    request["sample_weight"] = _list(w)
                finite = all(np.isfinite(a).all() for a in (per_sample, grad, hess, np.asarray(total)))
                suffix = "-".join(f"{k}={v}" for k, v in request_params.items())
                out.append({
                    "id": f"{name}{'-' + suffix if suffix else ''}-{dtype}-{reduction}{'-weighted' if weighted else ''}",
                    "loss": name, "finite": finite, "request": request,
                    "expected": {"loss": _list(total), "per_sample": _list(per_sample),
                                 "gradient": _list(grad * scale), "hessian": _list(hess * scale)} if finite else None,
                })
    return out


def overflow_cases() -> list[dict]:
    """Raw predictions where scikit-learn's exp overflows (to inf in float64, or in the float32 output)."""
    cases = []
    for name, raw, dtype in (("sklearn.half_poisson", 710.0, "float64"), ("sklearn.half_poisson", 100.0, "float32"),
                             ("sklearn.half_gamma", -710.0, "float64"), ("sklearn.exponential", 720.0, "float64"),
                             ("sklearn.half_tweedie", 1500.0, "float64")):
        dt = np.dtype(dtype).type
        y = np.array([1.0, 0.0 if name == "sklearn.exponential" else 2.0], dtype=dt)  # in each domain
        r = np.array([0.5, raw], dtype=dt)
        loss = sklearn_loss(name, {})
        grad, hess = loss.gradient_hessian(y, r, n_threads=1)
        values = loss.loss(y, r, n_threads=1)
        assert not all(np.isfinite(a).all() for a in (grad, hess, values)), (name, raw)
        cases.append({"id": f"{name}-overflow-{dtype}", "loss": name, "finite": False,
                      "request": {"y_true": _list(y), "y_pred": _list(r), "reduction": "sum", "dtype": dtype,
                                  "params": {}, "outputs": ["loss", "per_sample", "gradient", "hessian"]},
                      "expected": None})
    return cases


def main() -> None:
    rng = np.random.default_rng(SEED)
    cases = [case for name, params in VARIANTS for case in cases_of(name, params, rng)]
    finite = [c for c in cases if c["finite"]]
    nonfinite = [c for c in cases if not c["finite"]] + overflow_cases()
    for c in finite + nonfinite:
        del c["finite"]
        if c["expected"] is None:
            del c["expected"]
    doc = {"sklearn_version": sklearn.__version__, "numpy_version": np.__version__, "seed": SEED,
           "losses": sorted({name for name, _ in VARIANTS}), "cases": finite, "nonfinite": nonfinite}
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {len(finite)} cases and {len(nonfinite)} non-finite cases (scikit-learn {sklearn.__version__}) "
          f"to {OUT.name}")


if __name__ == "__main__":
    main()
