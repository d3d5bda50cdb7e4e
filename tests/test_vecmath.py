"""The engine's exp/log/tanh backends (engine.vecmath): MKL's vector math and NumPy's give the same
numbers to the last bit or so, for every registered loss, and the service picks one at start-up."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses, compute, vecmath
from service.engine.params import bind
from service.engine.sampling import rng_for

from .conftest import make_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def restore_backend():
    previous = vecmath.backend
    yield
    vecmath.use(previous)


def test_the_backends_are_what_is_installed(restore_backend):
    """MKL's vector math is optional (mkl-umath has wheels for x86-64 Linux only, and an image built with
    VECTOR_MATH=numpy leaves it out): the engine offers it exactly when it imports, NumPy's always,
    and "auto" takes MKL where it is there."""
    import importlib.util

    installed = importlib.util.find_spec("mkl_umath") is not None
    assert vecmath.available() == (("numpy", "mkl") if installed else ("numpy",))
    assert vecmath.use("auto") == ("mkl" if installed else "numpy")
    assert vecmath.use("numpy") == "numpy" and vecmath.exp is np.exp


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", all_losses(), ids=lambda loss: loss.name)
def test_every_loss_agrees_across_backends(loss, dtype, restore_backend):
    """Values, gradients and Hessians on the loss's sampled inputs, with logits variants: at most a
    few ulps apart (each backend is within one ulp of the exact exp/log)."""
    p = bind(loss.params, {"from_logits": True} if any(q.name == "from_logits" for q in loss.params) else {})
    params = {"from_logits": True} if "from_logits" in p else {}
    s = loss.sample(rng_for(11), tuple(getattr(loss, "test_shapes", (loss.sample_shape,))[0]), p)
    params = {**params, **s.get("params", {})}  # parameters drawn with the data (CTC's lengths)
    outputs = ("loss", "per_sample") + (("gradient",) if loss.differentiable else ()) + (
        ("hessian",) if loss.hessian else ())
    results = {}
    for backend in vecmath.available():
        vecmath.use(backend)
        results[backend] = compute(loss, s["y_true"], s["y_pred"], params=params, outputs=outputs, dtype=dtype)
    reference = results["numpy"]
    rtol, atol = (1e-12, 1e-14) if dtype == "float64" else (2e-5, 1e-6)
    for backend, r in results.items():
        for name in outputs:
            np.testing.assert_allclose(getattr(r, name), getattr(reference, name), rtol=rtol, atol=atol,
                                       err_msg=f"{loss.name} {name} under {backend}")


def test_special_values_follow_ieee_in_every_backend(restore_backend):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -745.0, 709.0, 710.0, 5e-324, -1.0])
    for backend in vecmath.available():
        vecmath.use(backend)
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(vecmath.exp(x), np.exp(x))
            np.testing.assert_array_equal(vecmath.log(x), np.log(x))
            np.testing.assert_array_equal(vecmath.tanh(x), np.tanh(x))
        out = np.array([0.5, 1.0])
        assert vecmath.exp(out, out=out) is out  # ufuncs: in place as with NumPy


def test_unknown_or_missing_backend_is_refused(restore_backend, monkeypatch):  # monkeypatch undone first
    with pytest.raises(ValueError, match="one of auto, numpy, mkl"):
        vecmath.use("sleef")
    monkeypatch.setattr(vecmath, "_mkl", None)
    assert vecmath.available() == ("numpy",)
    assert vecmath.use("auto") == "numpy" and vecmath.exp is np.exp
    with pytest.raises(ValueError, match="mkl-umath"):
        vecmath.use("mkl")


async def test_service_setting_chooses_the_backend(restore_backend):
    async with make_client(vector_math="numpy") as client:
        assert (await client.get("/readyz")).json()["vector_math"] == "numpy"
        assert vecmath.exp is np.exp
    async with make_client(vector_math="auto") as client:
        assert (await client.get("/readyz")).json()["vector_math"] == vecmath.use("auto")


def test_the_suite_runs_under_the_backend_the_environment_names(vector_math_from_the_environment):
    import os

    named = os.environ.get("LOSS_SERVICE_VECTOR_MATH", "auto") or "auto"
    assert vecmath.backend == vector_math_from_the_environment
    assert vecmath.backend == (named if named != "auto" else vecmath.available()[-1])
