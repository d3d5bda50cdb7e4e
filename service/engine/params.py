"""Loss parameters: declaration, documentation and validation.

A loss declares its parameters as ``Param`` objects; ``bind`` validates what a client sent
(unknown names, wrong types, out-of-range values) and fills in the defaults, so every loss
receives a complete, typed ``dict``. Types are checked strictly: ``true`` is not a number and
``"0.5"`` is not a float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ErrorItem, InvalidInput, ParameterError, ShapeError


@dataclass(frozen=True)
class Interval:
    """A real interval, as scikit-learn's ``_loss`` declares domains."""

    low: float = -math.inf
    high: float = math.inf
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: Any) -> Any:
        """Elementwise membership (works on scalars and arrays)."""
        lo = value >= self.low if self.low_inclusive else value > self.low
        hi = value <= self.high if self.high_inclusive else value < self.high
        return lo & hi

    def describe(self) -> str:
        if self.low == -math.inf and self.high == math.inf:
            return "any real number"
        if self.high == math.inf:
            return f"{'>=' if self.low_inclusive else '>'} {_fmt(self.low)}"
        if self.low == -math.inf:
            return f"{'<=' if self.high_inclusive else '<'} {_fmt(self.high)}"
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


REAL = Interval()
POSITIVE = Interval(0.0, math.inf, low_inclusive=False)
NON_NEGATIVE = Interval(0.0, math.inf)
UNIT = Interval(0.0, 1.0)
UNIT_OPEN = Interval(0.0, 1.0, low_inclusive=False, high_inclusive=False)
UNIT_HALF_OPEN = Interval(0.0, 1.0, high_inclusive=False)

# kinds of parameter value
FLOAT, INT, BOOL, AXIS, AXES, OPTIONAL_INT, OPTIONAL_FLOAT, FLOAT_OR_FLOATS, ARRAY, INT_ARRAY, CHOICE = (
    "float", "int", "bool", "axis", "axes", "optional_int", "optional_float", "float_or_floats", "array", "int_array",
    "choice")
ARRAY_KINDS = (ARRAY, INT_ARRAY)  # array-valued: shape rules checked against the prepared inputs
_JSON_TYPE = {FLOAT: "number", INT: "integer", BOOL: "boolean", AXIS: "integer",
              AXES: "integer | integer[] | null", OPTIONAL_INT: "integer | null", OPTIONAL_FLOAT: "number | null",
              FLOAT_OR_FLOATS: "number | number[]", ARRAY: "number[] (nested) | null",
              INT_ARRAY: "integer[] (nested) | null", CHOICE: "string"}


@dataclass(frozen=True)
class ShapeRule:
    """How an array parameter's shape must relate to the prepared y_pred (``ARRAY`` parameters)."""

    text: str  # completes "must ...", e.g. "broadcast to y_pred's shape"
    fits: Callable[[tuple[int, ...], tuple[int, ...]], bool]  # (parameter shape, y_pred shape) -> ok


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


BROADCASTS_TO_Y_PRED = ShapeRule("broadcast to y_pred's shape", _broadcasts_to)
# PyTorch's class axis: 1, or 0 for a 1-D (C) input
ONE_PER_CLASS = ShapeRule("hold one value per class, shape [C] with C = y_pred.shape[1] (y_pred.shape[0] for a 1-D "
                          "y_pred), for y_pred of shape",
                          lambda shape, target: shape == (target[1 if len(target) > 1 else 0],))


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any
    description: str
    interval: Interval | None = None
    shape_rule: ShapeRule | None = None  # ARRAY: checked against the prepared inputs (check_arrays)
    excluded: Interval | None = None  # a gap inside ``interval`` (Tweedie's power: not in (0, 1))
    choices: tuple[str, ...] = ()  # CHOICE: the strings accepted

    @property
    def type_name(self) -> str:
        return _JSON_TYPE[self.kind]

    @property
    def constraints(self) -> str | None:
        parts = [f"values {self.interval.describe()}" if self.kind in ARRAY_KINDS else self.interval.describe()
                 ] if self.interval is not None else []
        if self.excluded is not None:
            parts.append(f"not {self.excluded.describe()}")
        if self.shape_rule is not None:
            parts.append(f"shape must {self.shape_rule.text}")
        if self.kind == CHOICE:
            parts.append("one of " + ", ".join(self.choices))
        return "; ".join(parts) or None

    def describe(self) -> dict:
        return {"name": self.name, "type": self.type_name, "default": self.default,
                "constraints": self.constraints, "description": self.description}

    def json_schema(self) -> dict:
        """Exactly the values ``validate`` accepts, as JSON Schema (for OpenAPI). What depends on the
        arrays (an axis y_pred has, one alpha per class) is checked later, as a shape problem."""
        number = {"type": "number", **_bounds(self.interval, -FLOAT_MAX, FLOAT_MAX)}
        if self.excluded is not None:
            gap = _bounds(self.excluded, -FLOAT_MAX, FLOAT_MAX)
            number["not"] = {"type": "number", **gap}
        integer = {"type": "integer", **_bounds(self.interval, _INT64_MIN, _INT64_MAX)}
        schema = {
            FLOAT: number, BOOL: {"type": "boolean"}, INT: integer, AXIS: integer,
            OPTIONAL_INT: {"anyOf": [integer, {"type": "null"}]},
            OPTIONAL_FLOAT: {"anyOf": [number, {"type": "null"}]},
            AXES: {"anyOf": [integer, {"type": "array", "items": integer, "minItems": 1, "uniqueItems": True},
                             {"type": "null"}]},
            FLOAT_OR_FLOATS: {"anyOf": [number, {"type": "array", "items": number, "minItems": 1}]},
            ARRAY: {"anyOf": [_nested_numbers(number), {"type": "null"}]},
            INT_ARRAY: {"anyOf": [_nested_numbers({"type": "integer", **_bounds(self.interval, -_EXACT_INT, _EXACT_INT)}),
                                  {"type": "null"}]},
            CHOICE: {"type": "string", "enum": list(self.choices)},
        }[self.kind]
        constraint = f" ({self.constraints})" if self.constraints else ""
        return {**schema, "default": self.default, "description": f"{self.description}{constraint}"}

    def validate(self, value: Any) -> Any:
        loc = ("params", self.name)
        if self.kind in ARRAY_KINDS:
            return None if value is None else self._array(value, loc)
        if self.kind == CHOICE:
            if not isinstance(value, str) or value not in self.choices:
                raise ParameterError(f"params.{self.name} must be one of {', '.join(map(repr, self.choices))}, "
                                     f"got {_show(value)}.", loc)
            return value
        if self.kind == BOOL:
            if not isinstance(value, bool):
                raise ParameterError(f"params.{self.name} must be true or false, got {_show(value)}.", loc)
            return value
        if self.kind in (INT, AXIS) or (self.kind == OPTIONAL_INT and value is not None):
            return self._check_interval(_as_int(value, self.name, loc), loc)
        if self.kind in (OPTIONAL_INT, OPTIONAL_FLOAT) and value is None:
            return None
        if self.kind == AXES:
            if value is None:
                return None
            if isinstance(value, list):
                if not value:
                    raise ParameterError(f"params.{self.name} must not be an empty list; use null for all axes.", loc)
                axes = [_as_int(v, self.name, loc + (i,)) for i, v in enumerate(value)]
                if len(set(axes)) != len(axes):
                    raise ParameterError(f"params.{self.name} repeats an axis: {axes}.", loc)
                return axes
            return _as_int(value, self.name, loc)
        if self.kind == FLOAT_OR_FLOATS and isinstance(value, list):
            if not value:
                raise ParameterError(f"params.{self.name} must be a number or a non-empty list of numbers.", loc)
            return [self._check_interval(_as_float(v, self.name, loc + (i,)), loc + (i,))
                    for i, v in enumerate(value)]
        return self._check_interval(_as_float(value, self.name, loc), loc)

    def _array(self, value: Any, loc: tuple) -> np.ndarray:
        """A rectangular array of finite numbers: float64 for ``ARRAY`` (``check_arrays`` casts it to the
        request's dtype), int64 for ``INT_ARRAY``. Small by nature (one value per class, entry or
        sequence), so it is read like the other parameters."""
        if isinstance(value, np.ndarray):  # already bound (an exercise's params, bound again)
            value = value.tolist()
        if not _only_numbers(value):
            raise ParameterError(f"params.{self.name} must be a number or a (nested) array of numbers (no "
                                 f"strings, booleans or nulls inside), got {_show(value)}.", loc)
        try:
            arr = np.array(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            # a ragged array is a shape problem (rows of one length), as for y_true/y_pred: JSON Schema
            # cannot say it, so the type is one the OpenAPI document lists as inexpressible
            raise ShapeError(f"params.{self.name} must be a rectangular (nested) array of numbers, with "
                             f"rows of equal length.", loc) from None
        if not np.isfinite(arr).all():
            raise ParameterError(f"params.{self.name} must hold finite numbers.", loc)
        if self.kind == INT_ARRAY:
            integral = (arr == np.round(arr)) & (np.abs(arr) <= _EXACT_INT)
            if not integral.all():
                idx = [int(i) for i in np.unravel_index(int(np.flatnonzero(~integral.ravel())[0]), arr.shape)]
                raise ParameterError(f"params.{self.name} must hold integers of magnitude at most 2**53 - 1; "
                                     f"params.{self.name}"
                                     f"{''.join(f'[{i}]' for i in idx)} = {float(arr[tuple(idx)]):g}.", loc + tuple(idx))
        if self.interval is not None:
            ok = self.interval.contains(arr)
            if not ok.all():
                idx = [int(i) for i in np.unravel_index(int(np.flatnonzero(~ok.ravel())[0]), arr.shape)]
                raise ParameterError(f"params.{self.name} values must be {self.interval.describe()}; "
                                     f"params.{self.name}{''.join(f'[{i}]' for i in idx)} = "
                                     f"{float(arr[tuple(idx)]):g}.", loc + tuple(idx))
        return arr.astype(np.int64) if self.kind == INT_ARRAY else arr

    def _check_interval(self, value: float, loc: tuple) -> float:
        if self.interval is not None and not self.interval.contains(value):
            raise ParameterError(
                f"params.{self.name} must be {self.interval.describe()}, got {_show(value)}.", loc)
        if self.excluded is not None and self.excluded.contains(value):
            raise ParameterError(
                f"params.{self.name} must not be {self.excluded.describe()}, got {_show(value)}.", loc)
        return value


def _only_numbers(value: Any) -> bool:
    if isinstance(value, list):
        return all(_only_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


FLOAT_MAX = float(np.finfo(np.float64).max)  # a literal beyond it reads as infinity, which is refused
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EXACT_INT = 2**53 - 1  # INT_ARRAY values are read through float64, exact up to here


def _bounds(interval: Interval | None, low: float, high: float) -> dict:
    """JSON Schema bounds: the interval's, within [low, high] (the representable values)."""
    interval = interval or REAL
    out: dict = {}
    if interval.low > low:
        out["minimum" if interval.low_inclusive else "exclusiveMinimum"] = interval.low
    else:
        out["minimum"] = low
    if interval.high < high:
        out["maximum" if interval.high_inclusive else "exclusiveMaximum"] = interval.high
    else:
        out["maximum"] = high
    return out


ARRAY_MAX_RANK = 8  # LOSS_SERVICE_MAX_RANK's default: how deep the documented nesting goes


def _nested_numbers(number: dict, depth: int = ARRAY_MAX_RANK) -> dict:
    """A number or (nested) arrays of numbers; rectangularity and shape are checked later."""
    if depth == 0:
        return number
    return {"anyOf": [number, {"type": "array", "items": _nested_numbers(number, depth - 1)}]}


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, bool) else str(value).lower()
    return text if len(text) <= 40 else text[:37] + "..."


def _as_float(value: Any, name: str, loc: tuple) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"params.{name} must be a number, got {_show(value)}.", loc)
    try:
        value = float(value)
    except OverflowError:  # an integer literal beyond float64
        value = math.inf
    if not math.isfinite(value):
        raise ParameterError(f"params.{name} must be a finite number, got {_show(value)}.", loc)
    return value


def _as_int(value: Any, name: str, loc: tuple) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"params.{name} must be an integer, got {_show(value)}.", loc)
    if not -(2**63) <= value < 2**63:
        raise ParameterError(f"params.{name} must be a 64-bit integer, got {_show(value)}.", loc)
    return value


def bind(declared: Sequence[Param], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``given`` against ``declared`` and return every parameter with its value."""
    given = dict(given or {})
    by_name = {p.name: p for p in declared}
    unknown = [k for k in given if k not in by_name]
    if unknown:
        valid = ", ".join(by_name) or "none (this loss takes no parameters)"
        raise InvalidInput(
            f"params has unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid parameters: {valid}.",
            errors=[ErrorItem(("params", k), f"unknown parameter; valid: {valid}") for k in unknown],
            slug="invalid-parameter", title="Invalid loss parameter")
    return {p.name: p.validate(given[p.name]) if p.name in given else p.default for p in declared}


def check_arrays(declared: Sequence[Param], p: dict[str, Any], y_pred: np.ndarray) -> None:
    """Check every array parameter's shape rule against the prepared y_pred, and cast the real-valued
    ones to y_pred's dtype (float32 requests compute with float32 weights, as PyTorch does; integer
    arrays such as CTC's lengths stay int64)."""
    for q in declared:
        value = p.get(q.name)
        if q.kind not in ARRAY_KINDS or value is None:
            continue
        if q.shape_rule is not None and not q.shape_rule.fits(value.shape, y_pred.shape):
            raise ShapeError(f"params.{q.name} has shape {list(value.shape)}, which does not "
                             f"{q.shape_rule.text} {list(y_pred.shape)}; "
                             f"send an array that does (PyTorch refuses this shape too).", ("params", q.name))
        if q.kind == ARRAY:
            p[q.name] = value.astype(y_pred.dtype, copy=False)


def normalize_axes(axes: int | Sequence[int] | None, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Turn an ``axis`` parameter into a sorted tuple of non-negative axes of an ``ndim`` array."""
    if axes is None:
        return tuple(range(ndim))
    seq = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    out = []
    for a in seq:
        if not -ndim <= a < ndim:  # a valid axis that y_pred does not have: the shapes, not the parameter
            raise ShapeError(
                f"params.{name}={a} is out of range for y_pred with {ndim} dimension{'s' if ndim != 1 else ''}; "
                f"use an axis in [{-ndim}, {ndim - 1}].", ("params", name))
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ParameterError(f"params.{name} names the same axis twice.", ("params", name))
    return tuple(sorted(out))
