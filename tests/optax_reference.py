"""The peers' own answers for poly1_cross_entropy and ntxent (Optax) and for triplet, quadruplet and
contrastive (their peers' formulas, run in JAX), and the comparison a service response must pass.

The cases live in tests/data/optax_reference.json, written by scripts/optax_reference.py (which needs JAX
and Optax; reading them does not). Each case has ``id``, ``loss``, ``request`` (the body to POST to
/v1/losses/{loss}) and ``expected`` (the peer's ``loss``, ``per_sample``, ``jax.grad`` gradient and the
diagonal of ``jax.hessian``). ``nonfinite`` holds the cases where the peer answers NaN: the service
answers them with a 422.

Tolerances, per output: |actual - expected| <= rtol * |expected| + atol * max(1, max |expected|)
    float64: rtol 1e-10, atol 1e-12
    float32: rtol 2e-5,  atol 2e-6
(scaled by the output's largest magnitude: a Hessian entry of NT-Xent is a difference of terms of order
1/τ², so its rounding follows the largest entries, not its own size; measured worst, float32: 3e-7 of
that scale, float64: 1.2e-15).
"""

from __future__ import annotations

from typing import Any

from . import reference_files

REFERENCE_PATH = reference_files.DATA / "optax_reference.json"
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (2e-5, 2e-6)}  # (rtol, atol relative to the output's scale)
OUTPUTS = ("loss", "per_sample", "gradient", "hessian")


def reference() -> dict:
    return reference_files.load(REFERENCE_PATH.name)


def cases() -> list[dict]:
    return reference()["cases"]


def nonfinite_cases() -> list[dict]:
    return reference()["nonfinite"]


def path(case: dict) -> str:
    return f"/v1/losses/{case['loss']}"


def assert_close(actual: Any, expected: Any, dtype: str, where: str) -> None:
    rtol, atol = TOLERANCES[dtype]
    reference_files.assert_close(actual, expected, where, rtol=rtol, atol=atol, peer="the peer", scaled=True)


def check(case: dict, response: Any) -> None:
    """The service's answer (an httpx response or its parsed body) is the peer's, every output."""
    if hasattr(response, "status_code"):
        assert response.status_code == 200, f"{case['id']}: {response.status_code}: {response.text}"
        response = response.json()
    for key in OUTPUTS:
        assert_close(response.get(key), case["expected"][key], case["request"]["dtype"], f"{case['id']}: {key}")
