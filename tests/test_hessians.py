"""Registry-driven Hessian checks: for every loss that offers ``hessian``, every parameter variant of
the gradient test, every reduction and sample-weight shape, and both dtypes, the analytic diagonal
Hessian against central differences of the analytic gradient.

Nothing here names a loss: a Hessian added to the registry later is covered automatically, and a loss
that says ``hessian = False`` must refuse the output (422) rather than answer something.

The inputs are the loss's sampled ones rounded to float32, so that one set of float64 central
differences serves both dtypes: float64 to rtol 1e-3 (the differences' own error at H = 1e-6 of a
gradient with kinks nearby), float32 to rtol 2e-3 against the same float64 differences.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import UnsupportedOutput, all_losses, compute
from service.engine.sampling import rng_for

from .test_gradients import CASES, H, _weights

pytestmark = pytest.mark.usefixtures("each_vector_math")

# a Hessian that replaces the second derivative on purpose (scikit-learn's 1 for the absolute error) is
# held to its peer by its reference file instead (tests/test_sklearn_conformance.py); the loss's "exact"
# variant is checked here
HESSIAN_CASES = [(loss, params, shape) for loss, params, shape in CASES if loss.hessian
                 and loss.hessian_is_second_derivative({**{q.name: q.default for q in loss.params}, **params})]
TOLERANCES = {"float64": (1e-3, 1e-4), "float32": (2e-3, 2e-4)}  # (rtol, atol relative to the largest entry)


def _as_float32(a):
    return None if a is None else np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("loss,params,shape", HESSIAN_CASES, ids=[f"{l.name}-{p}-{s}" for l, p, s in HESSIAN_CASES])
def test_hessian_matches_central_differences_of_the_gradient(loss, params, shape):
    rng = rng_for(1234)
    inputs = loss.sample(rng, shape, {**{q.name: q.default for q in loss.params}, **params})
    params = {**params, **inputs.get("params", {})}  # parameters drawn with the data (CTC's lengths)
    y_true = _as_float32(inputs["y_true"])
    x0 = _as_float32(inputs["y_pred"])
    base = compute(loss, y_true, x0, params=params, reduction="none", outputs=("per_sample",))
    checked = 0
    for weight in _weights(loss, rng, tuple(base.per_sample.shape)):
        weight = weight if np.isscalar(weight) else _as_float32(weight)

        def gradient(x, reduction):
            return compute(loss, y_true, x, params=params, sample_weight=weight, reduction=reduction,
                           outputs=("gradient",)).gradient

        for reduction in loss.reductions:
            numeric = np.zeros_like(x0)
            for idx in np.ndindex(x0.shape):
                up, down = x0.copy(), x0.copy()
                up[idx] += H
                down[idx] -= H
                numeric[idx] = (gradient(up, reduction)[idx] - gradient(down, reduction)[idx]) / (2 * H)
            scale = max(1.0, float(np.abs(numeric).max()))
            for dtype, (rtol, atol) in TOLERANCES.items():
                r = compute(loss, y_true, x0, params=params, sample_weight=weight, reduction=reduction,
                            outputs=("hessian",), dtype=dtype)
                assert r.hessian.shape == x0.shape and r.hessian.dtype == np.dtype(dtype)
                np.testing.assert_allclose(
                    r.hessian, numeric, rtol=rtol, atol=atol * scale,
                    err_msg=f"Hessian of {loss.name} ({dtype}) params={params} weight={weight!r} reduction={reduction}")
            checked += 1
    assert checked >= len(loss.reductions)


@pytest.mark.parametrize("loss", [loss for loss in all_losses() if not loss.hessian], ids=lambda loss: loss.name)
def test_a_loss_without_a_hessian_refuses_it(loss):
    shape = tuple(getattr(loss, "test_shapes", (loss.sample_shape,))[0])
    inputs = loss.sample(rng_for(7), shape, {q.name: q.default for q in loss.params})
    with pytest.raises(UnsupportedOutput):
        compute(loss, inputs["y_true"], inputs["y_pred"], params=inputs.get("params", {}), outputs=("hessian",))


def test_the_hessian_cases_cover_every_loss_that_offers_one():
    offered = {loss.name for loss in all_losses() if loss.hessian}
    assert {loss.name for loss, _, _ in HESSIAN_CASES} == offered
    assert "cosine_similarity" in offered and len(offered) >= 30


def test_every_loss_without_a_hessian_says_why_and_the_422_repeats_it():
    for loss in all_losses():
        entry = loss.describe()
        if loss.hessian:
            assert entry["without_hessian"] is None, loss.name
        else:
            assert len(entry["without_hessian"]) > 20, loss.name
            with pytest.raises(UnsupportedOutput, match="does not offer a Hessian") as refused:
                compute(loss, [0.0], [0.0], outputs=("hessian",))
            assert loss.without_hessian in refused.value.detail
