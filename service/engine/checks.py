"""Input checks shared by every loss: shapes, domains, integer labels.

Each failure is a typed engine error naming the field, the rule and the first offending index,
so the client can fix the request without guessing.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .errors import DomainError, ShapeError
from .params import Interval


def first_index(bad: np.ndarray) -> list[int]:
    """The first index (row-major) where ``bad`` is true."""
    flat = int(np.flatnonzero(bad.ravel())[0])
    return [int(i) for i in np.unravel_index(flat, bad.shape)] if bad.ndim else []


def _at(field: str, index: list[int]) -> str:
    return field + "".join(f"[{i}]" for i in index)


def _value(x: np.ndarray, index: list[int]) -> str:
    v = x[tuple(index)] if index else x[()]
    return f"{float(v):.6g}"


_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _from_zero_fast(x: np.ndarray, interval: Interval) -> bool:
    """One pass for ``[0, high]`` domains (probabilities, rates): read as unsigned integers, the
    bits of the floats from +0.0 upwards grow with their value, and every negative number (sign
    bit set) reads larger than any positive one. False means "decide the slow way" (-0.0 too)."""
    bits = _BITS.get(x.dtype)
    if bits is None or interval.low != 0 or not interval.low_inclusive or not x.size:
        return False
    limit = int(np.asarray(interval.high, dtype=x.dtype).view(bits))
    if not interval.high_inclusive:
        limit -= 1  # the next float below high
    return int(x.view(bits).max()) <= limit


def check_interval(x: np.ndarray, interval: Interval, field: str, what: str = "values") -> None:
    # min and max decide it in two passes without temporaries (inputs are finite by now); the
    # elementwise mask is built only to name the first offending index
    if _from_zero_fast(x, interval):
        return
    if x.size and interval.contains(x.min()) and interval.contains(x.max()):
        return
    ok = interval.contains(x)
    if not np.all(ok):
        idx = first_index(~ok)
        raise DomainError(
            f"{field} {what} must be {interval.describe()}; {_at(field, idx)} = {_value(x, idx)}.",
            (field, *idx))


def check_in_set(x: np.ndarray, allowed: Iterable[float], field: str, what: str) -> None:
    allowed = tuple(allowed)
    ok = np.isin(x, allowed)
    if not np.all(ok):
        idx = first_index(~ok)
        choices = ", ".join(f"{a:g}" for a in allowed)
        raise DomainError(f"{field} must be {what} ({{{choices}}}); {_at(field, idx)} = {_value(x, idx)}.",
                          (field, *idx))


_EXACT_INTEGERS = 2.0 ** 53


def as_labels(x: np.ndarray, field: str, n_classes: int | None, *, allow: int | None = None,
              allow_name: str = "ignore_class") -> np.ndarray:
    """Integer class labels in [0, n_classes) (``allow`` is one extra value, e.g. ``ignore_class``)."""
    bad = x != np.round(x)
    if np.any(bad):
        idx = first_index(bad)
        raise DomainError(f"{field} must hold integer class labels; {_at(field, idx)} = {_value(x, idx)}.",
                          (field, *idx))
    bad = np.abs(x) > _EXACT_INTEGERS  # beyond 2**53 float64 merges neighbouring integers (and int64 overflows)
    if np.any(bad):
        idx = first_index(bad)
        raise DomainError(f"{field} labels must be integers of magnitude at most 2**53; {_at(field, idx)} = "
                          f"{_value(x, idx)}.", (field, *idx))
    labels = x.astype(np.int64)
    if n_classes is not None:
        bad = (labels < 0) | (labels >= n_classes)
        if allow is not None:
            bad &= labels != allow
        if np.any(bad):
            idx = first_index(bad)
            extra = f" or the {allow_name} {allow}" if allow is not None else ""
            raise DomainError(
                f"{field} labels must be in [0, {n_classes - 1}] (y_pred has {n_classes} classes){extra}; "
                f"{_at(field, idx)} = {int(labels[tuple(idx)] if idx else labels[()])}.", (field, *idx))
    return labels


def labelled_embeddings(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The integer labels of a batch of embeddings: y_pred (batch, dim), y_true one label per row
    (the metric-learning losses that take labels, circle and ntxent)."""
    if y_pred.ndim != 2:
        raise ShapeError(f"y_pred must be embeddings of shape (batch, dim); got shape {list(y_pred.shape)}.",
                         ("y_pred",))
    if y_true.shape != y_pred.shape[:1]:
        raise ShapeError(f"y_true must be one integer label per embedding, shape {[y_pred.shape[0]]}; "
                         f"got shape {list(y_true.shape)}.", ("y_true",))
    return as_labels(y_true, "y_true", None)


def same_shape(y_true: np.ndarray, y_pred: np.ndarray, hint: str = "") -> None:
    if y_true.shape != y_pred.shape:
        raise ShapeError(
            f"y_true has shape {list(y_true.shape)} but y_pred has shape {list(y_pred.shape)}; this loss needs "
            f"them equal{hint}.", ("y_true",))


def min_rank(x: np.ndarray, rank: int, field: str, what: str) -> None:
    if x.ndim < rank:
        raise ShapeError(f"{field} must have at least {rank} dimension{'s' if rank > 1 else ''} ({what}); "
                         f"got shape {list(x.shape)}.", (field,))
