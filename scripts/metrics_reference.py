"""Write tests/data/metrics_reference.json: the peers' own answers for the "Other losses" they compute.

losses.md ("Other losses") names the peer each loss must match: scikit-learn's mean_pinball_loss,
zero_one_loss, mean_tweedie_deviance, mean_poisson_deviance, mean_gamma_deviance and
brier_score_loss, and XGBoost's pseudo-Huber (its eval metric mphe, the weighted mean of the
reg:pseudohubererror value). This script runs them on small seeded inputs (numpy.random.default_rng),
unweighted and with sample_weight, for each parameter variant, and records each case as the request
the service receives, with the reduction under which the service's loss is the metric:
sum_over_batch_size for the unweighted mean over samples, mean_with_sample_weight for the weighted
one (np.average(values, weights=w)). Cases that scikit-learn refuses (ValueError) go to the list
"refused" with the field the service must name in its 422. The test suite reads the file without
the peers (tests/test_metrics_reference.py).

The peers are never runtime or CI dependencies. To regenerate, in an environment of its own:
    pip install numpy scikit-learn xgboost-cpu
    python scripts/metrics_reference.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics

try:
    import xgboost
except ImportError:  # pseudo_huber's cases need XGBoost; the rest do not
    xgboost = None

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "metrics_reference.json"
SEED = 20261202
N = 7


def rounded(a):
    # Four decimals keep the inputs short in the file; the values stay generic.
    return np.round(a, 4)


def request(y_true, y_pred, params=None, weights=None, dtype="float64"):
    body = {"y_true": np.asarray(y_true).tolist(), "y_pred": np.asarray(y_pred).tolist(), "params": params or {},
            "reduction": "sum_over_batch_size" if weights is None else "mean_with_sample_weight", "dtype": dtype}
    if weights is not None:
        body["sample_weight"] = np.asarray(weights).tolist()
    return body


def column(a):
    """A 1-D metric input as the service's (N, 1) column: one per-sample value per row."""
    return np.asarray(a)[:, None]


class Recorder:
    def __init__(self):
        self.cases, self.refused = [], []

    def case(self, loss, name, peer, req, expected, **extra):
        self.cases.append({"id": f"{loss}/{name}/{req['dtype']}", "loss": loss, "peer": peer, "request": req,
                           "expected": {"loss": float(expected)}, **extra})

    def refuse(self, loss, name, peer_call, req, field):
        try:
            peer_call()
        except ValueError as err:  # scikit-learn's InvalidParameterError is a ValueError too
            why = str(err).splitlines()[0][:200]
        else:  # pragma: no cover - the peer changed: the case is not a refusal any more
            raise AssertionError(f"{loss}/{name}: the peer did not refuse")
        self.refused.append({"id": f"{loss}/{name}", "loss": loss, "request": req, "field": field,
                             "peer_error": why})


def weighted_variants(rng, n=N):
    return (("unweighted", None), ("weighted", rounded(rng.uniform(0.2, 2.0, n))))


def quantile(rec, rng):
    for q in (0.1, 0.5, 0.9):
        y, x = rounded(rng.normal(0, 1, (N, 3))), rounded(rng.normal(0, 1, (N, 3)))
        x[0, 0] = y[0, 0]  # a tie
        for label, w in weighted_variants(rng):
            for dtype in ("float64", "float32"):
                cast = np.float32 if dtype == "float32" else np.float64
                expected = metrics.mean_pinball_loss(y.astype(cast), x.astype(cast), alpha=q, sample_weight=w)
                rec.case("quantile", f"q={q}/(N,3)/{label}", "sklearn.metrics.mean_pinball_loss",
                         request(y, x, {"quantile": q}, w, dtype), expected)
        y1, x1 = rounded(rng.normal(0, 2, N)), rounded(rng.normal(0, 2, N))
        # a 1-D array is one sample (the mean over its last axis): the unweighted metric all the same
        rec.case("quantile", f"q={q}/(N,)", "sklearn.metrics.mean_pinball_loss", request(y1, x1, {"quantile": q}),
                 metrics.mean_pinball_loss(y1, x1, alpha=q))
        w = rounded(rng.uniform(0.2, 2.0, N))
        rec.case("quantile", f"q={q}/(N,1)/weighted", "sklearn.metrics.mean_pinball_loss",
                 request(column(y1), column(x1), {"quantile": q}, w), metrics.mean_pinball_loss(y1, x1, alpha=q,
                                                                                               sample_weight=w))
    y, x = rounded(rng.normal(0, 1, N)), rounded(rng.normal(0, 1, N))
    rec.refuse("quantile", "q=1.5", lambda: metrics.mean_pinball_loss(y, x, alpha=1.5),
               request(y, x, {"quantile": 1.5}), ["params", "quantile"])
    rec.refuse("quantile", "q=-0.2", lambda: metrics.mean_pinball_loss(y, x, alpha=-0.2),
               request(y, x, {"quantile": -0.2}), ["params", "quantile"])


def zero_one(rec, rng):
    for label, w in weighted_variants(rng, 12):
        y, x = rng.integers(0, 4, 12), rng.integers(0, 4, 12)
        rec.case("zero_one", f"multiclass(N,)/{label}", "sklearn.metrics.zero_one_loss", request(y, x, {}, w),
                 metrics.zero_one_loss(y, x, sample_weight=w))
        yl, xl = rng.integers(0, 2, (12, 3)), rng.integers(0, 2, (12, 3))
        xl[:4] = yl[:4]  # some rows all-correct, so the loss is not 1
        rec.case("zero_one", f"multilabel(N,3)/{label}", "sklearn.metrics.zero_one_loss", request(yl, xl, {}, w),
                 metrics.zero_one_loss(yl, xl, sample_weight=w))
        scores = rounded(rng.uniform(0, 1, (12, 3)))
        rec.case("zero_one", f"scores(N,3)/threshold=0.5/{label}", "sklearn.metrics.zero_one_loss",
                 request(yl, scores, {"threshold": 0.5}, w),
                 metrics.zero_one_loss(yl, (scores > 0.5).astype(int), sample_weight=w))
        y01, s1 = rng.integers(0, 2, 12), rounded(rng.normal(0, 1, 12))
        rec.case("zero_one", f"scores(N,)/threshold=0/{label}", "sklearn.metrics.zero_one_loss",
                 request(y01, s1, {"threshold": 0.0}, w),
                 metrics.zero_one_loss(y01, (s1 > 0).astype(int), sample_weight=w))
    y, x = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.5, 2.0])
    rec.refuse("zero_one", "non-integral-y_pred", lambda: metrics.zero_one_loss(y, x), request(y, x),
               ["y_pred", 1])


def tweedie(rec, rng):
    powers = (-1.0, 0.0, 1.0, 1.5, 2.0, 3.0)
    for power in powers:
        if power <= 0:
            y = rounded(rng.normal(0.5, 1.5, N))
        elif power < 2:
            y = rng.poisson(2.0, N).astype(float)
            y[0] = 0.0  # 0 log 0 = 0, and 0^(2-p) = 0
        else:
            y = rounded(rng.uniform(0.1, 4.0, N))
        mu = rounded(rng.uniform(0.2, 4.0, N)) if power != 0 else rounded(rng.normal(0, 2, N))
        for label, w in weighted_variants(rng):
            expected = metrics.mean_tweedie_deviance(y, mu, power=power, sample_weight=w)
            rec.case("tweedie_deviance", f"power={power}/(N,1)/{label}", "sklearn.metrics.mean_tweedie_deviance",
                     request(column(y), column(mu), {"power": power}, w), expected)
            if power in (1.0, 2.0):
                name, peer = {1.0: ("poisson_deviance", metrics.mean_poisson_deviance),
                              2.0: ("gamma_deviance", metrics.mean_gamma_deviance)}[power]
                rec.case(name, f"(N,1)/{label}", f"sklearn.metrics.{peer.__name__}", request(column(y), column(mu), {}, w),
                         peer(y, mu, sample_weight=w))
        rec.case("tweedie_deviance", f"power={power}/(N,)", "sklearn.metrics.mean_tweedie_deviance",
                 request(y, mu, {"power": power}), metrics.mean_tweedie_deviance(y, mu, power=power))
    y, mu = np.array([1.0, 0.0, 2.0]), np.array([0.5, 1.0, 0.0])
    for power in (-1.0, 1.5):
        rec.refuse("tweedie_deviance", f"power={power}/y_pred=0", lambda: metrics.mean_tweedie_deviance(y, mu, power=power),
                   request(y, mu, {"power": power}), ["y_pred", 2])
    y_neg, mu_ok = np.array([1.0, -1.0, 2.0]), np.array([0.5, 1.0, 1.0])
    rec.refuse("tweedie_deviance", "power=1.5/y_true<0", lambda: metrics.mean_tweedie_deviance(y_neg, mu_ok, power=1.5),
               request(y_neg, mu_ok, {"power": 1.5}), ["y_true", 1])
    y_zero = np.array([1.0, 0.0, 2.0])
    rec.refuse("tweedie_deviance", "power=3/y_true=0", lambda: metrics.mean_tweedie_deviance(y_zero, mu_ok, power=3.0),
               request(y_zero, mu_ok, {"power": 3.0}), ["y_true", 1])
    rec.refuse("tweedie_deviance", "power=0.5", lambda: metrics.mean_tweedie_deviance(y_zero, mu_ok, power=0.5),
               request(y_zero, mu_ok, {"power": 0.5}), ["params", "power"])
    rec.refuse("poisson_deviance", "y_pred=0", lambda: metrics.mean_poisson_deviance(y, mu), request(y, mu),
               ["y_pred", 2])
    rec.refuse("gamma_deviance", "y_true=0", lambda: metrics.mean_gamma_deviance(y_zero, mu_ok),
               request(y_zero, mu_ok), ["y_true", 1])


def one_hot(labels, k):
    out = np.zeros((len(labels), k), dtype=int)
    out[np.arange(len(labels)), labels] = 1
    return out


def brier(rec, rng):
    for label, w in weighted_variants(rng, 10):
        y = rng.integers(0, 2, 10)
        p = rounded(rng.uniform(0, 1, 10))
        rec.case("brier", f"binary(N,1)/{label}", "sklearn.metrics.brier_score_loss",
                 request(column(y), column(p), {}, w), metrics.brier_score_loss(y, p, sample_weight=w))
        for k in (3, 4):
            labels = rng.integers(0, k, 10)
            labels[:k] = np.arange(k)  # every class present, as scikit-learn infers the classes from y_true
            z = rng.normal(0, 1, (10, k))
            probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
            rec.case("brier", f"multiclass(N,{k})/{label}", "sklearn.metrics.brier_score_loss",
                     request(one_hot(labels, k), probs, {}, w), metrics.brier_score_loss(labels, probs, sample_weight=w))
        two = np.stack([1 - p, p], axis=1)
        # scikit-learn halves two-column input ('auto'); unhalved it is Brier's sum over both columns, as here
        rec.case("brier", f"two-column(N,2)/{label}", "sklearn.metrics.brier_score_loss(scale_by_half=False)",
                 request(one_hot(y, 2), two, {}, w),
                 metrics.brier_score_loss(y, two, sample_weight=w, scale_by_half=False),
                 sklearn_auto=metrics.brier_score_loss(y, two, sample_weight=w))
    y, p = np.array([0, 1, 1]), np.array([0.2, 1.5, 0.7])
    rec.refuse("brier", "y_pred>1", lambda: metrics.brier_score_loss(y, p), request(column(y), column(p)),
               ["y_pred", 1, 0])


def pseudo_huber(rec, rng):
    """XGBoost's mphe (float32 inside XGBoost): the mean of delta^2 (sqrt(1 + (e/delta)^2) - 1)."""
    for delta in (1.0, 0.5, 2.5):
        y, x = rounded(rng.normal(0, 2, N)), rounded(rng.normal(0, 2, N))
        for label, w in weighted_variants(rng):
            dmat = xgboost.DMatrix(np.zeros((N, 1)), label=y, base_margin=x, weight=w)
            booster = xgboost.train({"objective": "reg:pseudohubererror", "huber_slope": delta, "eval_metric": "mphe"},
                                    dmat, num_boost_round=0)
            value = float(booster.eval(dmat).split(":")[1])
            rec.case("pseudo_huber", f"delta={delta}/(N,1)/{label}", "xgboost reg:pseudohubererror (mphe)",
                     request(column(y), column(x), {"delta": delta}, w), value, computed_in="float32")


def main():
    rng = np.random.default_rng(SEED)
    rec = Recorder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a peer warning (rows not summing to 1, ...) means a bad input set
        quantile(rec, rng)
        zero_one(rec, rng)
        tweedie(rec, rng)
        brier(rec, rng)
    peers = {"sklearn": sklearn.__version__}
    if xgboost is not None:
        pseudo_huber(rec, rng)
        peers["xgboost"] = xgboost.__version__
    OUT.write_text(json.dumps({"peers": peers, "seed": SEED, "cases": rec.cases, "refused": rec.refused},
                              indent=1) + "\n")
    print(f"wrote {len(rec.cases)} cases and {len(rec.refused)} refusals to {OUT.name}")


if __name__ == "__main__":
    main()
