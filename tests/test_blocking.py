"""Large inputs of the elementwise losses are computed in blocks of rows (``MeanOverAxis``, and the
unreduced ``Elementwise`` losses of the PyTorch family): the blocked path must give what the
one-block path gives, for every such loss and parameter set."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses, compute
from service.engine._math import Elementwise, MeanOverAxis, axis_sum
from service.engine.sampling import rng_for
from tests.test_gradients import param_variants

OUTPUTS = ("loss", "per_sample", "gradient", "hessian")
ELEMENTWISE = [loss for loss in all_losses() if isinstance(loss, MeanOverAxis)]
CASES = [(loss, params) for loss in ELEMENTWISE for params in param_variants(loss)]
UNREDUCED = [loss for loss in all_losses() if isinstance(loss, Elementwise) and loss.axis_reduction == "none"]
UNREDUCED_CASES = [(loss, params) for loss in UNREDUCED for params in param_variants(loss)]


def assert_same_outputs(whole, blocked, dtype: str) -> None:
    """Every output of the one-block result equals the blocked one's up to rounding (at least loss,
    per_sample and gradient are compared)."""
    rtol = 1e-12 if dtype == "float64" else 1e-5
    compared = 0
    for name in OUTPUTS:
        a, b = getattr(whole, name), getattr(blocked, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=0, err_msg=name)
            compared += 1
    assert compared >= 3


def _run(loss, inputs, params, dtype, block, monkeypatch):
    monkeypatch.setattr(type(loss), "blocked", True)  # every such loss must be safe to block, opted in or not
    monkeypatch.setattr(MeanOverAxis, "BLOCK_ELEMENTS", block)
    shape = compute(loss, inputs["y_true"], inputs["y_pred"], params=params, outputs=("per_sample",)).per_sample.shape
    weights = np.linspace(0.5, 2.0, int(np.prod(shape))).reshape(shape)
    outputs = OUTPUTS if loss.hessian else OUTPUTS[:3]
    return compute(loss, inputs["y_true"], inputs["y_pred"], params=params, sample_weight=weights,
                   outputs=outputs, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,params", CASES, ids=[f"{loss.name}-{params}" for loss, params in CASES])
def test_blocks_of_rows_agree_with_one_block(loss, params, dtype, monkeypatch):
    p = {q.name: q.default for q in loss.params} | params
    # 41 rows of 7: blocks of 2 rows (BLOCK_ELEMENTS 16) leave a shorter last block
    inputs = loss.sample(rng_for(4107), (41, 7), p)
    whole = _run(loss, inputs, params, dtype, 1 << 30, monkeypatch)
    blocked = _run(loss, inputs, params, dtype, 16, monkeypatch)
    assert_same_outputs(whole, blocked, dtype)


def test_only_requested_derivatives_are_computed():
    loss = next(loss for loss in ELEMENTWISE if loss.name == "mean_squared_error")
    x = np.arange(12.0).reshape(3, 4)
    evaluation = loss.evaluate_for(np.zeros_like(x), x, {}, frozenset())
    assert evaluation.vjp is None and evaluation.hess is None
    np.testing.assert_allclose(evaluation.per_sample, (x * x).mean(axis=1))
    with_gradient = loss.evaluate_for(np.zeros_like(x), x, {}, frozenset({"gradient"}))
    np.testing.assert_allclose(with_gradient.vjp(np.ones(3)), 2 * x / 4)
    assert with_gradient.hess is None


def _run_unreduced(loss, inputs, params, dtype, reduction, block, monkeypatch):
    monkeypatch.setattr(type(loss), "blocked", True)  # as above: safe to block, opted in or not
    monkeypatch.setattr(Elementwise, "BLOCK_ELEMENTS", block)
    outputs = OUTPUTS if loss.hessian else OUTPUTS[:3]
    return compute(loss, inputs["y_true"], inputs["y_pred"], params=params, reduction=reduction, outputs=outputs,
                   dtype=dtype)


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss,params", UNREDUCED_CASES, ids=[f"{loss.name}-{params}" for loss, params in UNREDUCED_CASES])
def test_unreduced_blocks_of_rows_agree_with_one_block(loss, params, dtype, reduction, monkeypatch):
    # array parameters along the last axis, the ones blocks of rows take (one per column of the 41 x 7 inputs)
    params = {k: np.linspace(0.5, 2.0, 7).tolist() if isinstance(v, list) else v for k, v in params.items()}
    p = {q.name: q.default for q in loss.params} | params
    # a loss of 1-D inputs (the sklearn.* objectives: one value per sample) is one row of 287
    inputs = loss.sample(rng_for(4107), (41, 7) if len(loss.sample_shape) > 1 else (287,), p)
    whole = _run_unreduced(loss, inputs, params, dtype, reduction, 1 << 30, monkeypatch)
    blocked = _run_unreduced(loss, inputs, params, dtype, reduction, 16, monkeypatch)
    assert_same_outputs(whole, blocked, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sums_over_a_column_of_width_one_are_the_blas_products_numbers(dtype):
    """axis_sum skips the matrix-vector product for (N, 1) columns (scikit-learn's metrics' layout): the
    numbers must stay the product's bit for bit, -0 turned into +0 as the product turns it."""
    finfo = np.finfo(dtype)
    a = np.array([[-0.0], [0.0], [1.5], [-3.25], [finfo.tiny], [-finfo.max], [finfo.smallest_subnormal]], dtype=dtype)
    product = (a.reshape(-1, 1) @ np.ones(1, dtype=dtype)).reshape(-1)
    assert axis_sum(a, -1).tobytes() == product.tobytes()
    assert axis_sum(a.reshape(1, 7, 1), -1, keepdims=True).tobytes() == product.tobytes()
    assert axis_sum(a.reshape(1, 7, 1), -1, keepdims=True).shape == (1, 7, 1)
