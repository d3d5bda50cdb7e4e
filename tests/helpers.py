"""Helpers shared by the test modules."""

from __future__ import annotations

from typing import Any

import pytest

from service.engine import LossServiceError, compute


def assert_rejected(loss: str, body: dict[str, Any], field: str, status: int = 422) -> LossServiceError:
    """The engine rejects ``body`` with ``status``, naming ``field`` first in an error's loc.

    ``body`` uses the wire names (y_true, y_pred, params, sample_weight, reduction, outputs,
    dtype). The API tests run the same cases over HTTP (tests/test_api_domains.py)."""
    kwargs = {k: v for k, v in body.items() if k not in ("y_true", "y_pred")}
    with pytest.raises(LossServiceError) as info:
        compute(loss, body.get("y_true"), body.get("y_pred"), **kwargs)
    err = info.value
    assert err.status == status, f"{loss}: expected {status}, got {err.status}: {err.detail}"
    locs = [e.loc for e in err.errors]
    assert any(loc and loc[0] == field for loc in locs), f"{loss}: {field!r} not named in {locs}: {err.detail}"
    assert field in err.detail, f"{loss}: detail does not name {field!r}: {err.detail}"
    return err
