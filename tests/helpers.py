"""Helpers shared by the test modules."""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import Any

import httpx
import numpy as np
import pytest

from service.engine import LossServiceError, compute


@lru_cache(maxsize=1)
def _app():
    from service.app import create_app
    from service.config import Settings

    return create_app(Settings(executor="thread"))


def post(path: str, body: dict[str, Any]) -> httpx.Response:
    """POST a JSON body to the in-process app (for helpers called from synchronous tests)."""
    content = json.dumps(body, default=lambda a: a.tolist() if isinstance(a, np.ndarray) else str(a))

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://testserver") as c:
            return await c.post(path, content=content, headers={"content-type": "application/json"})

    return asyncio.run(send())


def assert_rejected(loss: str, body: dict[str, Any], field: str, status: int = 422) -> LossServiceError:
    """The engine rejects ``body`` with ``status``, naming ``field`` first in an error's loc, and the
    API answers the same request with that status as problem+json naming the field.

    ``body`` uses the wire names (y_true, y_pred, params, sample_weight, reduction, outputs, dtype)."""
    kwargs = {k: v for k, v in body.items() if k not in ("y_true", "y_pred")}
    with pytest.raises(LossServiceError) as info:
        compute(loss, body.get("y_true"), body.get("y_pred"), **kwargs)
    err = info.value
    assert err.status == status, f"{loss}: expected {status}, got {err.status}: {err.detail}"
    locs = [e.loc for e in err.errors]
    assert any(loc and loc[0] == field for loc in locs), f"{loss}: {field!r} not named in {locs}: {err.detail}"
    assert field in err.detail, f"{loss}: detail does not name {field!r}: {err.detail}"

    response = post(f"/v1/losses/{loss}", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == status, f"{loss} over HTTP: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in problem["detail"] and any(e["loc"][0] == field for e in problem["errors"]), problem
    return err


# --------------------------------------------------------------------------- machine-independent comparison

RESULT_OUTPUTS = ("loss", "per_sample", "gradient", "hessian")
ULPS = 4
"""Stored responses (service/data/examples.json, shown on /docs) are compared with the live ones to
ULPS units in the last place, not bit for bit: NumPy's SIMD kernels (AVX-512 or not, aarch64's NEON)
and the vector-math backend (MKL or NumPy) may round the last bit differently."""


def assert_response_close(actual: Any, expected: Any, ulps: int = ULPS, where: str = "response") -> None:
    """``actual`` equals ``expected`` (two loss responses as parsed JSON) except that each number of
    loss/per_sample/gradient/hessian may differ by up to ``ulps`` ulp of the response's dtype, at its
    own magnitude or at the magnitude of that output's largest value (an entry produced by
    cancellation, such as a gradient p - y, carries the error of its operands):
    |a - e| <= ulps * eps * (|e| + max|e|). Everything else (meta, shapes, nulls) must be equal."""
    assert isinstance(actual, dict) and isinstance(expected, dict), f"{where}: {actual!r} vs {expected!r}"
    assert set(actual) == set(expected), f"{where}: keys {sorted(actual)} vs {sorted(expected)}"
    dtype = (expected.get("meta") or {}).get("dtype", "float64")
    eps = float(np.finfo(np.float32 if dtype == "float32" else np.float64).eps)
    for key, value in expected.items():
        if key not in RESULT_OUTPUTS or value is None:
            assert actual[key] == value, f"{where}.{key}: {actual[key]!r} != {value!r}"
            continue
        a, e = np.asarray(actual[key], dtype=np.float64), np.asarray(value, dtype=np.float64)
        assert a.shape == e.shape, f"{where}.{key}: shape {a.shape} != {e.shape}"
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        tolerance = ulps * eps * (np.abs(e) + scale)
        bad = np.abs(a - e) > tolerance
        if bad.any():
            i = np.unravel_index(int(np.flatnonzero(bad)[0]), bad.shape) if bad.ndim else ()
            raise AssertionError(f"{where}.{key}{list(i)}: {a[i]!r} vs stored {e[i]!r}, more than {ulps} ulp "
                                 f"({dtype}) apart")
