"""PyTorch 2.13's own answers for the torch.* losses, and the comparison a service response must pass.

The cases live in tests/data/pytorch_reference.json, written by scripts/pytorch_reference.py (which
needs PyTorch; reading them does not). Each case has ``id``, ``loss`` (the canonical name),
``request`` (the body to POST to /v1/losses/{loss}) and ``expected`` (PyTorch's ``loss``,
``per_sample`` and autograd's ``gradient``). A test of the service is

    for case in cases():
        check(case, post(path(case), case["request"]))

and the cases PyTorch answers with NaN or infinity (``nonfinite_cases()``) go to ``check_refused``.

Tolerances, per number: |actual - expected| <= atol + rtol * |expected|, with
    float64: rtol 1e-10, atol 1e-12
    float32: rtol 2e-5,  atol 1e-6
(float32 leaves room for a different summation order or a fused kernel; float64 for last-bit
differences of exp/log between NumPy, MKL and PyTorch's SLEEF kernels). A float32 case may record
``float32_rounding``: per output, PyTorch's own float32 error (max |float32 - float64| of PyTorch on the
same inputs; CTC only, whose float32 log-space recursion loses about 1e-5); twice that is added to atol.
"""

from __future__ import annotations

from typing import Any

from . import reference_files

REFERENCE_PATH = reference_files.DATA / "pytorch_reference.json"
TOLERANCES = {"float64": (1e-10, 1e-12), "float32": (2e-5, 1e-6)}  # (rtol, atol)
OUTPUTS = ("loss", "per_sample", "gradient")


def reference() -> dict:
    """The whole file: torch_version, seed, cases, nonfinite."""
    return reference_files.load(REFERENCE_PATH.name)


def cases() -> list[dict]:
    """The cases where PyTorch's answer is finite: the service must give the same numbers."""
    return reference()["cases"]


def nonfinite_cases() -> list[dict]:
    """The cases where PyTorch answers NaN or infinity (written as the strings "nan", "inf", "-inf"):
    the service refuses them with a 422."""
    return reference()["nonfinite"]


def path(case: dict) -> str:
    return f"/v1/losses/{case['loss']}"


def _body(response: Any, status: int) -> dict:
    """A parsed response body, from an httpx response (whose status must be ``status``) or a dict."""
    if hasattr(response, "status_code"):
        assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
        return response.json()
    return response


def assert_close(actual: Any, expected: Any, dtype: str, where: str, rounding: float = 0.0) -> None:
    """``actual`` has ``expected``'s shape and each number is within the dtype's tolerance, widened by
    twice the reference's own recorded ``rounding``."""
    rtol, atol = TOLERANCES[dtype]
    reference_files.assert_close(actual, expected, where, rtol=rtol, atol=atol + 2 * rounding, peer="PyTorch")


def check(case: dict, response: Any) -> None:
    """The service's answer to ``case["request"]`` (an httpx response or its parsed body) is
    PyTorch's loss, per_sample and gradient within the tolerances of the case's dtype."""
    body = _body(response, 200)
    dtype = case["request"]["dtype"]
    for key in OUTPUTS:
        assert_close(body.get(key), case["expected"][key], dtype, f"{case['id']}: {key}",
                     case.get("float32_rounding", {}).get(key, 0.0))


def check_refused(case: dict, response: Any) -> None:
    """Where PyTorch answers NaN/inf the service answers a 422 problem+json."""
    assert response.status_code == 422, f"{case['id']}: expected 422, got {response.status_code}: {response.text}"
    assert response.headers["content-type"] == "application/problem+json", case["id"]
