"""What the reference scripts (scripts/*_reference.py) share: the request values a client would send,
non-finite answers as strings, and how a reference file is written. Plain NumPy and the standard
library, so each script's own virtual environment (PyTorch, JAX) can import it from beside the script."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def wire(array, dtype: str):
    """The JSON value a client sends: integers stay integers, floats are rounded to the dtype."""
    if array is None:
        return None
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return array.tolist()
    return array.astype(dtype).tolist()


def nonfinite_to_str(value):
    """NaN and ±infinity as the strings "nan", "inf", "-inf" (JSON has no such numbers)."""
    if isinstance(value, list):
        return [nonfinite_to_str(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_reference(out: Path, doc: dict, n_losses: int) -> None:
    """``doc`` (with ``cases`` and ``nonfinite``) as sorted, indented JSON at ``out``, and a line saying so."""
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(doc, sort_keys=True, indent=1, allow_nan=False) + "\n")
    print(f"wrote {len(doc['cases'])} cases and {len(doc['nonfinite'])} non-finite cases of {n_losses} losses "
          f"to {out.relative_to(out.parents[2])} ({out.stat().st_size / 1e6:.2f} MB)")
