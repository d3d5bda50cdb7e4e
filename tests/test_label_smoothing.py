"""Binary label smoothing is written once (probabilistic.binary_smoothed), as Keras writes it:
``y * (1.0 - s) + 0.5 * s`` with both factors Python floats, rounded once to the loss dtype."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import compute

RNG = np.random.default_rng(5)
Y = RNG.integers(0, 2, (50, 8)).astype(np.float64)
P = RNG.uniform(0.02, 0.98, (50, 8))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["binary_crossentropy", "binary_focal_crossentropy"])
def test_smoothing_is_keras_python_float_arithmetic(loss, dtype):
    s = 0.09  # float32(1) - float32(0.09) != float32(1.0 - 0.09): the two roundings differ here
    dt = np.dtype(dtype).type
    keras_targets = Y.astype(dtype) * dt(1.0 - s) + dt(0.5 * s)  # float32: 1 - 0.1 rounded once, not 1 - f32(0.1)
    params = {"gamma": 0.0} if loss == "binary_focal_crossentropy" else {}
    outputs = ("per_sample", "gradient")
    smoothed = compute(loss, Y, P, params={**params, "label_smoothing": s}, reduction="none", dtype=dtype,
                       outputs=outputs)
    by_hand = compute(loss, keras_targets, P, params=params, reduction="none", dtype=dtype, outputs=outputs)
    np.testing.assert_array_equal(smoothed.per_sample, by_hand.per_sample)
    np.testing.assert_array_equal(smoothed.gradient, by_hand.gradient)


def test_binary_focal_with_gamma_0_is_bce_in_float32_with_smoothing():
    params = {"label_smoothing": 0.16}  # another s where the roundings differ
    bce = compute("binary_crossentropy", Y, P, params=params, reduction="none", dtype="float32",
                  outputs=("gradient",))
    focal = compute("binary_focal_crossentropy", Y, P, params={**params, "gamma": 0.0}, reduction="none",
                    dtype="float32", outputs=("gradient",))
    np.testing.assert_allclose(focal.gradient, bce.gradient, rtol=2e-7)
