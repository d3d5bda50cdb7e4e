"""Every case of ../shared/conformance against the engine (the API tests repeat a sample over HTTP)."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import compute, get_loss
from service.engine.errors import UnknownLoss

from .conftest import load_conformance

pytestmark = pytest.mark.usefixtures("each_vector_math")  # Keras's numbers under MKL's and NumPy's exp/log

SEED = load_conformance("seed_examples.json")
KERAS = load_conformance("keras_test_suite_cases.json")


def _id(i: int, case: dict) -> str:
    return f"{i}-{case['loss']}-{case.get('reduction') or 'none'}"


def _registered(name: str) -> bool:
    try:
        get_loss(name)
    except UnknownLoss:
        return False
    return True


@pytest.mark.parametrize("case", SEED, ids=[_id(i, c) for i, c in enumerate(SEED)])
def test_seed_example(case):
    result = compute(case["loss"], case["y_true"], case["y_pred"], params=case["params"],
                     sample_weight=case.get("sample_weight"), reduction=case["reduction"])
    np.testing.assert_allclose(float(result.loss), case["expected"], rtol=1e-6, atol=0)
    if "printed_in_article" in case:
        np.testing.assert_allclose(float(result.loss), case["printed_in_article"], rtol=1e-5, atol=0)


KERAS_CASES = [c for c in KERAS if _registered(c["loss"])]


@pytest.mark.parametrize("dtype,key,rtol", [("float64", "keras_float64", 1e-6), ("float32", "keras_float32", 1e-5)])
@pytest.mark.parametrize("case", KERAS_CASES, ids=[_id(i, c) for i, c in enumerate(KERAS_CASES)])
def test_keras_case(case, dtype, key, rtol):
    result = compute(case["loss"], case["y_true"], case["y_pred"], params=case["params"],
                     sample_weight=case["sample_weight"], reduction=case["reduction"] or "none", dtype=dtype)
    got = np.asarray(result.loss)
    expected = np.asarray(case[key])
    assert got.dtype == np.dtype(dtype)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0)


def test_every_conformance_loss_is_registered():
    missing = sorted({c["loss"] for c in KERAS + SEED if not _registered(c["loss"])})
    assert missing == [], f"conformance cases name losses the registry lacks: {missing}"
