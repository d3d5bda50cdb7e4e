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

    return create_app(Settings())


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
