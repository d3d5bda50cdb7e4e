"""Grading for auto-graders (``POST /v1/grade``): a student's numbers against the reference.

The reference values come from the loss pipeline itself (same params, reduction, dtype and
sample_weight semantics; an invalid loss request is the same 422), optionally on the inputs of a
seeded exercise (``service.exercises``). Each output in the submission is one check:

* the shape must equal the reference shape exactly (a message names both, and recognises the
  usual confusions: per-sample values for the reduced loss, a transposed array, a stray axis);
* a value passes where ``|submitted - expected| <= atol + rtol * |expected|`` (numpy.isclose,
  asymmetric: relative to the expected value); NaN, null and Infinity never pass;
* the check reports the mismatch count, the max absolute and relative errors, the worst index
  and the submitted value there, and a message that names the likely mistake (wrong sign, a
  constant factor such as a missing 1/N, all zeros, a constant offset, a transpose, values just
  outside the tolerance) without giving the reference values away. The reference values are
  only returned with ``reveal_expected: true``.

What the student computed is always graded, never rejected: null, NaN and Infinity tokens,
strings, booleans, ragged or wrongly shaped arrays just fail their check. The request around it
(loss, inputs, tolerance, which outputs) is validated like a loss request.

Nothing here imports the web framework: bodies in, bodies out, like ``service.transport``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.grading import GradeRequest

from .catalogue import page_path
from .transport import json as json_wire
from .engine import Result, get_loss, prepare_call
from .engine.errors import InvalidInput, LimitExceeded, UnknownLoss, UnsupportedOutput
from .engine.registry import Loss
from .exercises import Exercise, draft
from .transport.call import ARRAY_FIELDS, Answer, Limits, Plan
from .transport.curves import curve_url
from .transport.json import outside_arrays, unknown_loss_in_body, validate_body

OUTPUT_ORDER = ("loss", "per_sample", "gradient", "hessian")
FORMATS = ("json", "gradescope")
_NAMES = {"loss": "the loss", "per_sample": "the per_sample output", "gradient": "the gradient",
          "hessian": "the Hessian diagonal"}
_JUST_OUTSIDE = 100.0  # "just outside the tolerance": within this many times atol + rtol * |expected|


# --- reading a submitted value --------------------------------------------------------------------

def _at(path: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in path)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _unreadable(value: list, max_rank: int, field: str) -> str | None:
    """Why a nested list is not an array of numbers-or-null (ragged, string, boolean, too deep)."""
    found = json_wire.find_irregularity(value, max_rank, allow_null=True)
    if found is None:
        return None
    at = f"{field}{_at(found.path)}"
    if found.kind == "too_deep":
        return f"it has more than {max_rank} dimensions (at {at})"
    if found.kind == "array_for_number":
        return f"it is ragged: {at} is an array where a number was expected"
    if found.kind == "length":
        n = len(found.node)
        return (f"it is ragged: {at} has {n} value{'s' if n != 1 else ''} "
                f"where the first row at that depth has {found.expected_length}")
    if found.kind == "number_for_array":
        return f"it is ragged: {at} is a number where an array was expected"
    return f"{at} is {_kind(found.node)}, not a number"


def _to_float(x: Any) -> float:
    if x is None:
        return math.nan
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def read_submitted(value: Any, *, max_rank: int, may_hold_bools: bool,
                   field: str = "submission") -> tuple[np.ndarray | None, str | None]:
    """The student's JSON value as a float64 array (null -> NaN), or why it cannot be read."""
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        return None, f"it is {_kind(value)}, not a number or an array of numbers"
    if not isinstance(value, list):
        return np.asarray(_to_float(value)), None
    arr: np.ndarray | None
    try:
        arr = np.array(value)
    except (ValueError, OverflowError):
        arr = None
    if arr is not None and arr.dtype.kind in "fiu" and not may_hold_bools and arr.ndim <= max_rank:
        return arr.astype(np.float64, copy=False), None
    problem = _unreadable(value, max_rank, field)
    if problem:
        return None, problem
    try:
        return np.array(value, dtype=np.float64), None
    except (OverflowError, TypeError, ValueError):  # integers beyond float64: convert one by one
        def conv(node: Any) -> Any:
            return [conv(c) for c in node] if isinstance(node, list) else _to_float(node)
        try:
            return np.array(conv(value), dtype=np.float64), None
        except ValueError:  # defensive: still not a regular array
            return None, "it is not a regular array of numbers (rows of different shapes)"


# --- comparing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Context:
    """What the feedback may mention: sizes and settings, never reference values."""

    rtol: float
    atol: float
    reduction: str
    n_per_sample: int  # the number of per-sample values (the sum_over_batch_size divisor)
    n_classes: int  # y_pred's last dimension
    last_axis_reduced: bool  # per_sample drops y_pred's last axis (a mean or sum over it)
    per_sample_shape: tuple[int, ...]
    y_pred_shape: tuple[int, ...]
    reveal: bool


def _shape_text(shape: tuple[int, ...]) -> str:
    return "a single number (shape [])" if shape == () else f"shape {list(shape)}"


def _index(flat: int, shape: tuple[int, ...]) -> list[int]:
    return [int(i) for i in np.unravel_index(flat, shape)] if shape else []


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _shape_hint(output: str, got: tuple[int, ...], want: tuple[int, ...], ctx: Context) -> str:
    if output == "loss" and want == () and got == ctx.per_sample_shape:
        return (f"that is the per-sample shape: reduce the per-sample values to one number "
                f"(reduction {ctx.reduction})")
    if output == "per_sample" and got == () and want != ():
        return "a single number was sent where per_sample keeps one value per sample (do not reduce it)"
    if output == "per_sample" and got == ctx.y_pred_shape:
        return "that is y_pred's shape: per_sample reduces the axis the loss sums or averages over"
    if output in ("gradient", "hessian") and got == ():
        return "a single number was sent where there is one value per entry of y_pred"
    if output in ("gradient", "hessian") and got == ctx.per_sample_shape:
        return "that is the per-sample shape: the gradient has one value per entry of y_pred"
    if len(got) >= 2 and got == want[::-1]:
        return "it looks transposed (the axes are swapped)"
    if math.prod(got) == math.prod(want):
        if tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
            return "it differs only by an axis of length 1: add or remove it"
        return f"the number of values is right: reshape it to {list(want)}"
    return ""


def _ratio_hint(output: str, c: float, scalar: bool, ctx: Context) -> str | None:
    """Name a recognisable constant factor between submitted and expected (c = submitted / expected)."""
    mag = abs(c)
    tol = max(10 * ctx.rtol, 1e-9)

    def near(x: float) -> bool:
        return x > 0 and abs(mag - x) <= tol * x

    n, C = ctx.n_per_sample, ctx.n_classes
    derivative = output in ("gradient", "hessian")
    by_n = ctx.reduction in ("sum_over_batch_size", "mean") and output != "per_sample"
    each = "" if scalar else " in every entry"
    size, reason = None, None  # "k times too large/small" and why
    if by_n and n > 1 and near(float(n)):
        size = f"{n} times too large{each}"
        reason = (f"reduction {ctx.reduction} averages over the {n} per-sample values"
                  + (f", so every entry carries a factor 1/{n}; did you forget to divide by the batch size?"
                     if derivative else "; did you sum them instead of averaging?"))
    elif by_n and n > 1 and near(1.0 / n):
        size = f"{n} times too small{each}"
        reason = f"it looks divided by the {n} per-sample values once too often"
    elif ctx.reduction == "sum" and output != "per_sample" and n > 1 and near(1.0 / n):
        size = f"{n} times too small{each}"
        reason = f"reduction sum adds the {n} per-sample values; do not average them"
    elif by_n and ctx.last_axis_reduced and n > 1 and C > 1 and near(float(n * C)):
        size = f"{n * C} times too large{each}"
        reason = (f"the loss is a mean over all {n * C} entries of y_pred ({n} per-sample values x {C} along the "
                  f"last axis); divide by that count")
    elif ctx.last_axis_reduced and C > 1 and near(float(C)):
        size = f"{C} times too large{each}"
        reason = f"the per-sample loss is a mean over the last axis of {C} values; did you sum over it instead?"
    elif ctx.last_axis_reduced and C > 1 and near(1.0 / C):
        size = f"{C} times too small{each}"
        reason = f"it looks divided by the {C} values of the last axis once too often"
    elif near(2.0):
        size = f"twice too large{each}"
        reason = "check the factors of 2 (the derivative of x^2 is 2x; a 1/2 in the formula)"
    elif near(0.5):
        size, reason = f"half what it should be{each}", "check the factors of 2 (the derivative of x^2 is 2x)"
    elif near(1.0):
        size = None
    else:
        k = round(mag) if math.isfinite(mag) else 0
        inv = round(1 / mag) if mag and math.isfinite(1 / mag) else 0
        if 2 <= k <= 10**6 and near(float(k)):
            size, reason = f"{k} times too large{each}", "a constant factor; look for a missing division"
        elif 2 <= inv <= 10**6 and near(1.0 / inv):
            size, reason = f"{inv} times too small{each}", f"a constant factor 1/{inv}; look for an extra division"
    if size is None:
        return None
    sign = "has the wrong sign and " if c < 0 else ""
    return f"{_NAMES[output]} {sign}is {size}: {reason}"


def _value_feedback(output: str, s: np.ndarray, e: np.ndarray, close: np.ndarray, finite: np.ndarray,
                    ctx: Context) -> str:
    """One message for a same-shape failing check, naming the likely mistake."""
    what = _NAMES[output]
    size = s.size
    scalar = s.ndim == 0
    bad_finite = int(size - np.count_nonzero(finite))
    rest = int(np.count_nonzero(~close & finite))  # finite values outside the tolerance
    parts: list[str] = []

    def done(*more: str) -> str:
        text = "; ".join([*parts, *more])
        return _cap(text if text.endswith((".", "?")) else text + ".")

    if bad_finite:
        first = _index(int(np.flatnonzero(~finite.ravel())[0]), s.shape)
        if size == 1:
            return done(f"{what} is NaN, null or Infinity, not a number: check for log(0), 0/0 or an overflow")
        if bad_finite == size:
            return done(f"all {size} values of {what} are NaN, null or Infinity: it was not computed, or every "
                        f"entry hit log(0), 0/0 or an overflow")
        parts.append(f"{bad_finite} of {size} values of {what} {'is' if bad_finite == 1 else 'are'} NaN, null or "
                     f"Infinity (the first at {first})")
        if not rest:
            return done("the other values match")
    fs, fe = s[finite], e[finite]
    with np.errstate(all="ignore"):
        diff = np.where(finite, np.abs(s - e), -1.0)
    worst = _index(int(np.argmax(diff.ravel())), s.shape)
    at = "" if scalar else f"; the largest difference is at {worst}"
    others = "the other values" if bad_finite else "values"

    if np.all(fs == 0):
        return done(f"{what} is 0: it looks never computed or never filled in" if scalar else
                    f"all {others} of {what} are 0: it looks never computed or never filled in")

    flip = ~close & finite & np.isclose(-s, e, rtol=ctx.rtol, atol=ctx.atol)
    n_flip = int(np.count_nonzero(flip))
    if n_flip and n_flip == rest:
        return done(f"{what} has the wrong sign" if scalar else
                    f"{what} has the right shape but the wrong sign in {n_flip} of {size} entries")

    tol = ctx.atol + ctx.rtol * np.abs(fe)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = float(np.max(np.where(tol > 0, np.abs(fs - fe) / np.where(tol > 0, tol, 1.0), np.inf)))
    just_outside = excess <= _JUST_OUTSIDE and float(np.max(np.abs(fs - fe))) <= 1e-2 * max(
        float(np.max(np.abs(fe))), ctx.atol)

    # a constant factor: submitted = c * expected everywhere (least squares c over the finite values)
    ee = float(np.dot(fe.ravel(), fe.ravel()))
    if ee > 0 and not just_outside:
        c = float(np.dot(fs.ravel(), fe.ravel())) / ee
        if math.isfinite(c) and c != 0 and np.all(np.isclose(fs, c * fe, rtol=ctx.rtol,
                                                                 atol=ctx.atol * max(1.0, abs(c)))):
            hint = _ratio_hint(output, c, scalar, ctx)
            if hint:
                return done(hint)
            if int(np.count_nonzero(np.abs(fe) > ctx.atol)) >= 2:
                return done(f"every {'other ' if bad_finite else ''}value of {what} is off by the same constant "
                            f"factor: look for a missing or extra scale (a mean instead of a sum, a 1/N, a factor 2)")

    if s.ndim == 2 and s.shape[0] == s.shape[1] > 1 and np.all(np.isclose(s, e.T, rtol=ctx.rtol, atol=ctx.atol)):
        return done(f"{what} is transposed: its rows and columns are swapped")

    if fs.size >= 2 and not just_outside:
        d = fs - fe
        if np.all(np.isclose(d, float(np.mean(d)), rtol=0, atol=ctx.atol + ctx.rtol * float(np.max(np.abs(fe))))):
            return done(f"every {'other ' if bad_finite else ''}value of {what} is off by the same constant: a term "
                        f"that does not depend on the entry is missing or extra")

    if just_outside:
        close_text = (f"{what} is close but just outside the tolerance" if scalar else
                      f"{rest} of {size} values of {what} are close but just outside the tolerance")
        return done(f"{close_text} (rtol={ctx.rtol:g}, atol={ctx.atol:g}){at}",
                    "the method looks right; check the precision (float32 or float64), epsilons and clipping")
    if scalar:
        return done(f"{what} differs from the reference value")
    return done(f"{rest} of {size} values of {what} differ from the reference{at}",
                *([f"{n_flip} of them have the wrong sign"] if n_flip else []))


def _finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def check_output(output: str, submitted: Any, present: bool, expected: np.ndarray, ctx: Context, *,
                 max_rank: int, may_hold_bools: bool) -> dict[str, Any]:
    """One check: the student's value for ``output`` against ``expected``."""
    e = np.asarray(expected, dtype=np.float64)
    want = tuple(e.shape)
    what = _NAMES[output]
    check: dict[str, Any] = {"output": output, "passed": False, "score": 0, "size": int(e.size), "shape": None,
                             "expected_shape": list(want), "mismatches": int(e.size), "non_finite": 0,
                             "max_abs_error": None, "max_rel_error": None}

    def fail(message: str) -> dict[str, Any]:
        check["message"] = message
        return check

    if not present or submitted is None:
        return fail(_cap(f"{what} is missing from the submission (absent or null); send {_shape_text(want)}."))
    s, problem = read_submitted(submitted, max_rank=max_rank, may_hold_bools=may_hold_bools, field=output)
    if s is None:
        send = "one JSON number" if want == () else f"JSON numbers in nested arrays of shape {list(want)}"
        return fail(_cap(f"{what} could not be read: {problem}. Send {send} (null counts as a missing value)."))
    got = tuple(s.shape)
    check["shape"] = list(got)
    if got != want:
        check["non_finite"] = int(np.count_nonzero(~np.isfinite(s)))
        hint = _shape_hint(output, got, want, ctx)
        return fail(_cap(f"{what} {'is a single number' if got == () else f'has shape {list(got)}'} but "
                         f"{_shape_text(want)} is expected"
                         + (f"; {hint}." if hint else ".")))

    finite = np.isfinite(s)
    with np.errstate(all="ignore"):
        diff = np.abs(s - e)  # NaN where s is NaN; inf where s is infinite
        close = diff <= ctx.atol + ctx.rtol * np.abs(e)  # numpy.isclose, asymmetric; NaN never passes
        rel = np.where(e != 0, diff / np.abs(e), np.nan)
    mism = int(e.size - np.count_nonzero(close))
    check["mismatches"] = mism
    check["non_finite"] = int(e.size - np.count_nonzero(finite))
    fd = diff[finite]
    check["max_abs_error"] = _finite_or_none(float(np.max(fd))) if fd.size else None
    fr = rel[finite & (e != 0)]
    check["max_rel_error"] = _finite_or_none(float(np.max(fr))) if fr.size else None
    if mism == 0:
        check["passed"], check["score"] = True, 1
        check["message"] = _cap(f"{what} matches (rtol={ctx.rtol:g}, atol={ctx.atol:g})." if not got else
                                f"all {e.size} values of {what} match (rtol={ctx.rtol:g}, atol={ctx.atol:g}).")
        return check
    # the worst entry: the first non-finite value, else the largest absolute difference
    flat_bad = np.flatnonzero(~finite.ravel())
    flat = int(flat_bad[0]) if flat_bad.size else int(np.argmax(diff.ravel()))
    worst_index = _index(flat, got)
    sv = float(s.ravel()[flat])
    worst: dict[str, Any] = {"index": worst_index, "submitted": sv if math.isfinite(sv) else None}
    if ctx.reveal:
        worst["expected"] = float(e.ravel()[flat])
    check["worst"] = worst
    return fail(_value_feedback(output, s, e, close, finite, ctx))


# --- the request ----------------------------------------------------------------------------------

def _checked_outputs(request: GradeRequest, submitted: dict) -> list[str]:
    if request.outputs is not None:
        names = list(dict.fromkeys(request.outputs))
    else:
        names = [k for k in submitted if k in OUTPUT_ORDER]
        if not names:
            raise InvalidInput('submission is empty; send the outputs to grade, e.g. {"loss": 0.5, "gradient": '
                               '[[...]]}, or list them in outputs so that missing ones fail.', ("submission",))
    return sorted(names, key=OUTPUT_ORDER.index)


def _check_available(spec: Loss, names: list[str], from_outputs: bool) -> None:
    for name in names:
        loc = ("outputs",) if from_outputs else ("submission", name)
        field = "outputs" if from_outputs else f"submission.{name}"
        if name == "hessian" and not spec.hessian:
            raise UnsupportedOutput(f"{field}: {spec.name} does not offer a Hessian ({spec.without_hessian}), so it "
                                    f"cannot be graded; remove it.", loc)
        if name == "gradient" and not spec.differentiable:
            raise UnsupportedOutput(f"{field}: {spec.name} is not differentiable, so a gradient cannot be graded; "
                                    f"remove it.", loc)


def grade(body: bytes, limits: Limits) -> tuple[int, Callable[[], dict[str, Any]]]:
    """The grade's declared work (``Loss.work``) and how to compute it: the response as a dict
    (``format=json``)."""
    obj = json_wire.parse_json(body)
    request: GradeRequest = validate_body(GradeRequest, obj, '(e.g. {"loss": "mse", "y_true": [...], "y_pred": '
                                                             '[...], "submission": {"loss": 0.5}})')
    try:
        spec = get_loss(request.loss)
    except UnknownLoss as err:
        raise unknown_loss_in_body(err) from None
    submitted: dict = obj["submission"]
    names = _checked_outputs(request, submitted)
    _check_available(spec, names, request.outputs is not None)
    # the submission is left out of the accounting: a student's string or boolean makes it False
    rest = outside_arrays(obj)
    rest["submission"] = outside_arrays(submitted, tuple(submitted))
    numbers_only = json_wire.numbers_only(body, rest)
    may_hold_bools = not numbers_only

    drafted = call = sent_weights = None
    if request.exercise is not None:
        given = [f for f in ("y_true", "y_pred") if obj.get(f) is not None]
        if given:
            raise InvalidInput(f"Send either exercise or {' and '.join(given)}, not both: the exercise generates "
                               f"the inputs.", (given[0],))
        ex = request.exercise
        if ex.sample_weight and obj.get("sample_weight") is not None:
            raise InvalidInput("Send either sample_weight or exercise.sample_weight: true, not both.",
                               ("sample_weight",))
        drafted = draft(spec, request.params, ex.shape, ex.seed, sample_weight=ex.sample_weight,
                        decimals=ex.decimals, limits=limits, loc=("exercise",))
        sent_weights = json_wire.to_array(obj.get("sample_weight"), "sample_weight", max_rank=limits.max_rank,
                                     numbers_only=numbers_only)
        work = drafted.work  # the graded call is on the same inputs: the same work, after the draft's
    else:
        if obj.get("y_pred") is None:
            raise InvalidInput("y_pred: field required; send y_true and y_pred, or an exercise "
                               '({"seed": 42, "shape": [4, 3]}) to generate them.', ("y_pred",))
        arrays = {f: json_wire.to_array(obj.get(f), f, max_rank=limits.max_rank, numbers_only=numbers_only)
                  for f in ARRAY_FIELDS}
        json_wire.check_elements(arrays.values(), limits.max_elements)
        call = prepare_call(spec, arrays["y_true"], arrays["y_pred"], params=request.params,
                            sample_weight=arrays["sample_weight"], reduction=request.reduction,
                            outputs=tuple(names), dtype=request.dtype, max_work=limits.max_work)
        work = call.work

    def run() -> dict[str, Any]:
        exercise, graded_call = None, call
        if drafted is not None:
            exercise = drafted.finish()
            weights = exercise.sample_weight if exercise.sample_weight is not None else sent_weights
            graded_call = prepare_call(spec, exercise.y_true, exercise.y_pred, params=exercise.params,
                                       sample_weight=weights, reduction=request.reduction, outputs=tuple(names),
                                       dtype=request.dtype, max_work=limits.max_work)
        return _graded(graded_call.evaluate(), request, submitted, names, may_hold_bools, exercise, limits)

    return work, run


def _graded(result: Result, request: GradeRequest, submitted: dict, names: list[str], may_hold_bools: bool,
            exercise: Exercise | None, limits: Limits) -> dict[str, Any]:
    y_pred_shape = tuple(result.meta["y_pred_shape"])
    per_sample_shape = tuple(result.meta["per_sample_shape"])
    tol = request.tolerance
    ctx = Context(rtol=tol.rtol, atol=tol.atol, reduction=result.meta["reduction"],
                  n_per_sample=int(math.prod(per_sample_shape)), n_classes=int(y_pred_shape[-1]) if y_pred_shape else 1,
                  last_axis_reduced=len(per_sample_shape) < len(y_pred_shape),
                  per_sample_shape=per_sample_shape, y_pred_shape=y_pred_shape, reveal=request.reveal_expected)
    checks = []
    counted = 0  # the submission is limited like the inputs (after the body size limit)
    for name in names:
        expected = getattr(result, name)
        check = check_output(name, submitted.get(name), name in submitted, expected, ctx,
                             max_rank=limits.max_rank, may_hold_bools=may_hold_bools)
        counted += check["size"] if check["shape"] is None else math.prod(check["shape"])
        if counted > limits.max_elements:
            raise LimitExceeded(f"submission holds more than {limits.max_elements:,} numbers "
                                f"(LOSS_SERVICE_MAX_ELEMENTS); grade smaller arrays.", ("submission",))
        checks.append(check)
    score = sum(c["score"] for c in checks)
    out: dict[str, Any] = {"passed": score == len(checks), "score": score, "max_score": len(checks),
                           "checks": checks}
    if request.reveal_expected:
        out["expected"] = {name: getattr(result, name) for name in names}
    meta = {k: result.meta[k] for k in ("loss", "reduction", "params", "dtype", "y_pred_shape", "per_sample_shape")}
    meta["tolerance"] = {"rtol": tol.rtol, "atol": tol.atol}
    # where a student sees the loss: its page and the static picture of its curve at these parameters
    loss = get_loss(result.meta["loss"])
    meta["catalogue"] = page_path(loss.name)
    meta["curve"] = curve_url(loss, result.meta["params"])
    if exercise is not None:
        meta["exercise"] = exercise.describe()
    out["meta"] = meta
    out["_gradescope"] = request.gradescope
    return out


def _gradescope(graded: dict[str, Any]) -> dict[str, Any]:
    """The Gradescope results.json body: one test per check; no reference values unless revealed."""
    options = graded.pop("_gradescope")
    meta = graded["meta"]
    visibility = options.visibility if options else "visible"
    prefix = options.name_prefix if options and options.name_prefix is not None else f"{meta['loss']}: "
    points = options.max_score if options else 1.0
    tol = meta["tolerance"]
    tests = []
    for check in graded["checks"]:
        max_score = float(points.get(check["output"], 1.0) if isinstance(points, dict) else points)
        lines = [check["message"]]
        if not check["passed"] and check.get("worst") and "expected" in check["worst"]:
            w = check["worst"]
            lines.append(f"At {w['index']}: submitted {w['submitted']}, expected {w['expected']}.")
        if not check["passed"] and "expected" in graded:
            shown = json_wire.dumps(graded["expected"][check["output"]]).decode()
            lines.append(f"Expected: {shown if len(shown) <= 2000 else shown[:2000] + ' ...'}")
        tests.append({"name": f"{prefix}{check['output']}", "score": max_score if check["passed"] else 0.0,
                      "max_score": max_score, "status": "passed" if check["passed"] else "failed",
                      "output": "\n".join(lines), "visibility": visibility})
    passed = sum(1 for c in graded["checks"] if c["passed"])
    summary = (f"{meta['loss']}: {passed} of {len(tests)} checks passed "
               f"(a value passes where |submitted - expected| <= atol + rtol * |expected|, "
               f"rtol={tol['rtol']:g}, atol={tol['atol']:g}).")
    return {"score": float(sum(t["score"] for t in tests)), "output": summary, "visibility": visibility,
            "tests": tests}


def grade_response(body: bytes, limits: Limits, fmt: str = "json") -> Plan:
    """``POST /v1/grade``: the JSON body in, the plan of the grade (or Gradescope's results.json) out."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be json or gradescope; got {fmt!r}.", ("query", "format"))
    work, compute_grade = grade(body, limits)

    def run() -> Answer:
        graded = compute_grade()
        if fmt == "gradescope":
            return Answer(json_wire.dumps(_gradescope(graded)))
        graded.pop("_gradescope")
        return Answer(json_wire.dumps(graded))

    return Plan(work, run)


__all__ = ["FORMATS", "Context", "check_output", "grade", "grade_response", "read_submitted"]
