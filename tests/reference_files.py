"""The reference files under tests/data/, written by scripts/*_reference.py from the peers themselves
(PyTorch, Optax/JAX, scikit-learn, XGBoost), and the one number-by-number comparison a service
response must pass. Each reference module (tests/pytorch_reference.py, tests/optax_reference.py,
tests/test_sklearn_conformance.py, tests/test_metrics_reference.py) states its own tolerances and why.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=None)
def load(filename: str) -> dict:
    """A whole reference file (read once per test session; callers must not modify it)."""
    return json.loads((DATA / filename).read_text())


def assert_close(actual: Any, expected: Any, where: str, *, rtol: float, atol: float, peer: str,
                 scaled: bool = False) -> None:
    """``actual`` has ``expected``'s shape and every number satisfies
    |actual - expected| <= rtol * |expected| + atol, where ``scaled`` multiplies atol by the output's
    scale max(1, max |expected|) (for outputs whose rounding follows their largest entries)."""
    assert actual is not None, f"{where}: missing, {peer} gives {expected!r}"
    got, want = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape, f"{where}: shape {got.shape}, {peer}'s is {want.shape}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0))) if scaled else 1.0
    bad = ~(np.abs(got - want) <= rtol * np.abs(want) + atol * scale)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{where}{list(first)}: {got[first]!r}, {peer} gives {want[first]!r} "
                             f"({int(bad.sum())} of {bad.size} outside rtol {rtol}, "
                             f"atol {atol}{' x scale' if scaled else ''})")
