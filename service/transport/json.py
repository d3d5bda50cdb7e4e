"""The JSON transport (``/v1``): JSON bodies <-> NumPy <-> ``LossCall``, without Python-object detours
for large arrays.

Bodies are parsed from raw bytes by pydantic-core's Rust parser (which, unlike orjson, accepts
``NaN``/``Infinity`` tokens, so they become a precise 422 instead of a vague 400) and lists go
straight into ``np.array``, letting NumPy's dtype inference expose strings, nulls and ragged
rows. The one thing inference hides is a boolean mixed with numbers (``[1, true]`` becomes
``[1., 1.]``); bodies almost never contain ``true``/``false`` outside parameters, so we count
those tokens in the raw bytes (memchr-fast) and walk the arrays only when the counts disagree.
Responses are written by orjson straight from NumPy buffers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from schemas import BatchItem, LossRequest

from ..engine import PreparedCall, get_loss
from ..engine.errors import (ErrorItem, InvalidInput, LimitExceeded, LossServiceError, MalformedJSON, ShapeError,
                             UnknownLoss, WorkLimitExceeded)
from ..problems import problem_body
from .call import ARRAY_FIELDS, RESULT_FIELDS, Answer, Limits, LossCall, Plan, check_elements, check_finite, prepare
from .call import where as _where

_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedJSON("The request body is empty; send a JSON object.")
    try:
        value = from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        message = str(exc)
        if "recursion limit" in message:
            raise InvalidInput(
                "The body nests arrays or objects too deeply for this service (about 200 levels); "
                "arrays may have at most 8 dimensions.", ("body",), slug="too-deep", title="Nesting too deep") from None
        raise MalformedJSON(f"The body is not valid JSON ({message}); send a JSON object.") from None
    duplicate = find_duplicate_key(body)
    if duplicate is not None:
        key, offset = duplicate
        raise MalformedJSON(f"The body repeats the key {key!r} in one object (again at byte {offset}); JSON parsers "
                            f"disagree on which value wins, so send each key once.")
    return value


_MAX_KEY_SCAN_QUOTES = 100_000
"""Above this many ``"`` bytes a body cannot be a valid request (its arrays would hold strings, which
are refused with a 422 anyway), so the duplicate-key scan does not spend time on it."""


def _positions(body: bytes, byte: bytes, limit: int | None = None) -> list[int]:
    out = []
    i = body.find(byte)
    while i != -1 and (limit is None or len(out) <= limit):
        out.append(i)
        i = body.find(byte, i + 1)
    return out


def find_duplicate_key(body: bytes) -> tuple[str, int] | None:
    """The first key repeated inside one object of a body already known to be valid JSON, with the
    byte offset of the repeat, or None. pydantic-core (like orjson and most parsers) keeps the last
    value silently, so ``{"y_pred": [1], "y_pred": [2]}`` would compute on [2]; we refuse it instead.

    Only the structural bytes are visited: the ``"``, ``{`` and ``}`` positions come from
    ``bytes.find`` (memchr speed), and a numeric body has a few dozen of them, so the scan costs
    milliseconds however long its arrays are (4 ms on a 39 MB body of 2M floats, which takes 157 ms to
    parse)."""
    quotes = _positions(body, b'"', _MAX_KEY_SCAN_QUOTES)
    if len(quotes) > _MAX_KEY_SCAN_QUOTES:
        return None
    opens, closes = _positions(body, b"{"), _positions(body, b"}")
    events = sorted([(i, 0) for i in quotes] + [(i, 1) for i in opens] + [(i, 2) for i in closes])
    objects: list[set[bytes]] = []
    string_start = -1
    for position, kind in events:
        if string_start >= 0:  # inside a string only an unescaped quote matters
            if kind != 0 or _escaped(body, position):
                continue
            raw, string_start = body[string_start + 1:position], -1
            j = position + 1
            while j < len(body) and body[j] in _SPACE:
                j += 1
            if j < len(body) and body[j] == 0x3A and objects:  # a string followed by ":" is a key
                key = from_json(b'"' + raw + b'"').encode() if b"\\" in raw else raw  # "\u0061" is "a"
                if key in objects[-1]:
                    return key.decode("utf-8", "replace"), position - len(raw) - 1
                objects[-1].add(key)
        elif kind == 0:
            string_start = position
        elif kind == 1:
            objects.append(set())
        elif objects:
            objects.pop()
    return None


def _escaped(body: bytes, position: int) -> bool:
    """Whether the byte at ``position`` is escaped (preceded by an odd run of backslashes)."""
    run = 0
    while position - run - 1 >= 0 and body[position - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


_VALUE_START = frozenset(b"[,:")
_SPACE = frozenset(b" \t\r\n")


def count_bool_tokens(body: bytes) -> int:
    """``true``/``false`` literals in the raw body, found by single-byte ``find`` (memchr speed).

    Only a token in value position counts (its previous non-space byte is ``[``, ``,`` or ``:``),
    so the ``true`` inside the key ``"y_true"`` does not. A token inside a string may still be
    counted; over-counting only costs the exact walk, never a wrong answer."""
    count = 0
    for token in (b"true", b"false"):
        first = token[:1]
        i = body.find(first)
        while i != -1:
            if body.startswith(token, i):
                j = i - 1
                while j >= 0 and body[j] in _SPACE:
                    j -= 1
                if j >= 0 and body[j] in _VALUE_START:
                    count += 1
            i = body.find(first, i + 1)
    return count


def count_quotes(body: bytes) -> int:
    """``"`` bytes in the raw body (memchr-fast: a numeric body has them only around keys)."""
    count = 0
    i = body.find(b'"')
    while i != -1:
        count += 1
        i = body.find(b'"', i + 1)
    return count


def quotes_of(value: Any) -> int:
    """The ``"`` bytes that the strings of a small parsed value account for in its JSON text
    (two per string, plus escaped quotes inside it)."""
    if isinstance(value, str):
        return 2 + value.count('"')
    if isinstance(value, dict):
        return sum(quotes_of(k) + quotes_of(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(quotes_of(v) for v in value)
    return 0


def numbers_only(body: bytes, rest: Any) -> bool:
    """True when every ``"`` and ``true``/``false`` in the raw body is accounted for by ``rest``
    (the parsed request without its number arrays): then those arrays can hold only numbers and
    nulls. A miscount can only say False, which costs the exact walk, never a wrong answer."""
    # a quote written as \u0022 inside a string is no " byte, and could let a string in an array balance it
    return (b"\\u0022" not in body and count_bool_tokens(body) == count_bools(rest)
            and count_quotes(body) == quotes_of(rest))


def count_bools(value: Any) -> int:
    """Booleans inside a small parsed JSON value (parameters and options, never big arrays)."""
    if isinstance(value, bool):
        return 1
    if isinstance(value, dict):
        return sum(count_bools(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_bools(v) for v in value)
    return 0


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string" if len(value) > 20 else f"the string {value!r}"
    if isinstance(value, dict):
        return "an object"
    return repr(value)


@dataclass(frozen=True)
class Irregularity:
    """Why a nested list is not a regular array of numbers, and where (row-major first)."""

    kind: str  # too_deep | array_for_number | length | number_for_array | not_number
    path: tuple[int, ...]
    node: Any = None
    expected_length: int = 0  # for "length": the length first seen at that depth


def find_irregularity(value: list, max_rank: int, allow_null: bool = False) -> Irregularity | None:
    """Walk a nested list (only on error paths: it is Python-speed) for the first irregularity:
    more than ``max_rank`` dimensions, ragged rows, or a leaf that is not a number (``null`` is
    accepted with ``allow_null``)."""
    lengths: list[int] = []  # the length seen first at each depth
    leaf_depth: list[int] = []  # the depth of the first number seen

    def walk(node: Any, path: tuple[int, ...]) -> Irregularity | None:
        depth = len(path)
        if isinstance(node, list):
            if depth >= max_rank:
                return Irregularity("too_deep", path)
            if leaf_depth and depth >= leaf_depth[0]:
                return Irregularity("array_for_number", path)
            if depth == len(lengths):
                lengths.append(len(node))
            elif lengths[depth] != len(node):
                return Irregularity("length", path, node, lengths[depth])
            for i, child in enumerate(node):
                found = walk(child, path + (i,))
                if found:
                    return found
            return None
        if not leaf_depth:
            leaf_depth.append(depth)
        elif depth != leaf_depth[0]:
            return Irregularity("number_for_array", path)
        if len(lengths) > depth:  # an array came first at this depth (e.g. [[], 1])
            return Irregularity("number_for_array", path)
        if node is None and allow_null:
            return None
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return Irregularity("not_number", path, node)
        return None

    return walk(value, ())


def _diagnose(value: list, field: str, max_rank: int) -> InvalidInput | None:
    """The first problem of a list NumPy would not turn into a numeric array, as a 422."""
    found = find_irregularity(value, max_rank)
    if found is None:
        return None
    at = _where(field, found.path)
    if found.kind == "too_deep":
        message = f"{field} has more than {max_rank} dimensions (at {at}); send at most {max_rank}."
    elif found.kind == "array_for_number":
        message = (f"{field} is ragged: {at} is an array where a number was expected; every row must have the "
                   f"same shape.")
    elif found.kind == "length":
        message = (f"{field} is ragged: {at} has {len(found.node)} elements where the first row at that depth has "
                   f"{found.expected_length}; every row must have the same length.")
    elif found.kind == "number_for_array":
        message = (f"{field} is ragged: {at} is a number where an array was expected; every row must have the "
                   f"same shape.")
    else:
        message = f"{field} must hold JSON numbers only; {at} is {_describe(found.node)}."
    if found.kind in ("array_for_number", "length", "number_for_array"):
        return ShapeError(message, (field, *found.path))  # JSON Schema cannot say "every row the same length"
    return InvalidInput(message, (field, *found.path))


def to_array(value: Any, field: str, *, max_rank: int, numbers_only: bool) -> np.ndarray | None:
    """A JSON number or nested list of numbers -> a finite float64 array (422 naming the index otherwise).

    ``numbers_only``: the raw body's ``"`` and ``true``/``false`` bytes are all accounted for
    outside the arrays, so the lists hold only numbers and nulls and go straight to float64.
    Otherwise NumPy infers the dtype first (exposing strings) and the list is walked for booleans,
    which NumPy would silently read as 1 and 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise InvalidInput(f"{field} must be a number or an array of numbers, got {_describe(value)}.", (field,))
    if isinstance(value, list):
        arr: np.ndarray | None
        try:
            arr = np.array(value, dtype=np.float64) if numbers_only else np.array(value)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is None or arr.dtype.kind not in "fiu" or not numbers_only:
            err = _diagnose(value, field, max_rank)
            if err:
                raise err
            if arr is None or arr.dtype.kind not in "fiu":
                arr = _big_ints(value, field)  # only numbers, yet not int64/float64: integers beyond int64
        if arr.ndim > max_rank:
            raise InvalidInput(f"{field} has {arr.ndim} dimensions; send at most {max_rank}.", (field,))
        if arr.size == 0:
            raise InvalidInput(f"{field} is empty (shape {list(arr.shape)}); send at least one number.", (field,))
        arr = arr.astype(np.float64, copy=False)
    else:
        try:
            arr = np.asarray(float(value))
        except OverflowError:
            arr = np.asarray(math.inf)
    if not np.isfinite(arr).all() and isinstance(value, list):
        err = _diagnose(value, field, max_rank)  # a null read as NaN on the fast path
        if err:
            raise err
    check_finite(arr, field)
    return arr


def _big_ints(value: list, field: str) -> np.ndarray:
    """Integers beyond int64 (NumPy infers object dtype) converted to float64."""
    try:
        return np.array(value, dtype=np.float64)
    except OverflowError:
        raise InvalidInput(f"{field} holds a number beyond the float64 range.", (field,),
                           slug="non-finite-input", title="Non-finite input") from None
    except (ValueError, TypeError):  # defensive: _diagnose found nothing, yet NumPy sees no regular array
        raise ShapeError(f"{field} is not a regular array of numbers; every row must have the same shape.",
                         (field,)) from None


def _plain(value: Any) -> Any:
    """0-d arrays become NumPy scalars (orjson writes float32 scalars with float32's shortest repr)."""
    if isinstance(value, np.ndarray):
        return value[()] if value.ndim == 0 else np.ascontiguousarray(value)
    return value


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_plain, option=_DUMP_OPTIONS)


def validation_error(errors: list[dict], prefix: tuple = ()) -> InvalidInput:
    """Pydantic's error dicts as one 422 whose detail names the first field and the fix."""
    items = []
    for e in errors:
        loc = prefix + tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            msg = "unknown field; remove it (see the request schema at /docs)"
        elif e["type"] == "missing":
            msg = "field required"
        else:
            msg = e["msg"]
        items.append(ErrorItem(loc, msg))
    first = items[0]
    where = ".".join(str(x) for x in first.loc) or "body"
    more = f" ({len(items) - 1} more problem{'s' if len(items) > 2 else ''} in errors)" if len(items) > 1 else ""
    return InvalidInput(f"{where}: {first.msg}.{more}", errors=items, slug="invalid-field", title="Invalid field")


def validate_body(model: type[BaseModel], obj: Any, what: str = "with y_true and y_pred", prefix: tuple = ()) -> Any:
    """``obj`` (a parsed body, or a batch item at ``prefix``) validated by ``model``; a 422 otherwise.
    ``what`` ends the message for a body that is not an object: "... must be a JSON object {what}."."""
    if not isinstance(obj, dict):
        where = ".".join(str(x) for x in prefix) or "The body"
        raise InvalidInput(f"{where} must be a JSON object {what}.", prefix or ("body",))
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise validation_error(exc.errors(include_url=False), prefix) from None


def unknown_loss_in_body(err: UnknownLoss, loc: tuple = ("loss",)) -> UnknownLoss:
    """An unknown loss named in the body (not the path): point its error at ``loc``."""
    err.errors = [ErrorItem(loc, e.msg) for e in err.errors]
    return err


def encode_result(result) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in RESULT_FIELDS:
        value = getattr(result, name)
        if value is not None:
            out[name] = value
    if "gradient" in result.meta:  # not differentiable: say so explicitly
        out["gradient"] = None
    out["meta"] = result.meta
    return out


def loss_call(name: str, obj: dict, request: LossRequest, limits: Limits, numbers_only: bool) -> LossCall:
    """A validated request object (or batch item) decoded into the transport-neutral call."""
    spec = get_loss(name)
    arrays = {f: to_array(obj.get(f), f, max_rank=limits.max_rank, numbers_only=numbers_only) for f in ARRAY_FIELDS}
    return LossCall(spec, arrays["y_true"], arrays["y_pred"], arrays["sample_weight"], params=request.params,
                    reduction=request.reduction, outputs=request.outputs, dtype=request.dtype)


def _prepare(name: str, obj: dict, request: LossRequest, limits: Limits, numbers_only: bool,
             budget: list[int]) -> PreparedCall:
    return prepare(loss_call(name, obj, request, limits, numbers_only), limits, budget)


def outside_arrays(item: Any, fields: tuple[str, ...] = ARRAY_FIELDS) -> Any:
    """A request object with its number arrays blanked (their keys stay: they are quoted in the body),
    what the raw-byte accounting of ``numbers_only`` compares against."""
    if not isinstance(item, dict):
        return item
    return {k: None if k in fields else v for k, v in item.items()}


def loss_response(name: str, body: bytes, limits: Limits) -> Plan:
    """``POST /v1/losses/{name}``: the JSON body in, the plan of the JSON response out."""
    get_loss(name)  # an unknown name is a 404 before anything else is looked at
    obj = parse_json(body)
    request = validate_body(LossRequest, obj)
    only_numbers = numbers_only(body, outside_arrays(obj))
    call = _prepare(name, obj, request, limits, only_numbers, [limits.max_elements])
    return Plan(call.work, lambda: Answer(dumps(encode_result(call.evaluate()))))


def _item_error(err: LossServiceError, prefix: tuple, instance: str | None) -> dict[str, Any]:
    """A batch item's error as its ``{"error": problem}`` entry; the request-wide limits are re-raised:
    they fail the whole batch."""
    if isinstance(err, LimitExceeded) and not isinstance(err, WorkLimitExceeded):
        raise err
    if isinstance(err, UnknownLoss):
        err = unknown_loss_in_body(err, prefix + ("loss",))
    elif not any(e.loc[:2] == prefix for e in err.errors):
        err = err.with_prefix(prefix)
    return {"error": problem_body(err, instance)}


def batch_response(body: bytes, limits: Limits, instance: str | None = None) -> Plan:
    """``POST /v1/batch``: each item evaluated in order; a bad item becomes an ``error`` entry. The
    items' work counts together: a batch over the request's work limit is refused whole."""
    obj = parse_json(body)
    if not isinstance(obj, dict) or set(obj) != {"requests"} or not isinstance(obj["requests"], list):
        extra = sorted(set(obj) - {"requests"}) if isinstance(obj, dict) else []
        loc = ("body",) if not extra else (extra[0],)
        raise InvalidInput('The body must be {"requests": [...]} and nothing else'
                           + (f"; remove {', '.join(map(repr, extra))}." if extra else "."), loc)
    items = obj["requests"]
    if not items:
        raise InvalidInput("requests is empty; send at least one request.", ("requests",))
    if len(items) > limits.max_batch_items:
        raise LimitExceeded(f"requests has {len(items)} items, over the limit of {limits.max_batch_items} "
                            f"(LOSS_SERVICE_MAX_BATCH_ITEMS); split the batch.", ("requests",))
    only_numbers = numbers_only(body, {"requests": [outside_arrays(item) for item in items]})
    budget = [limits.max_elements]
    prepared: list[PreparedCall | dict[str, Any]] = []
    for i, item in enumerate(items):
        prefix = ("requests", i)
        try:
            request = validate_body(BatchItem, item, prefix=prefix)
            prepared.append(_prepare(request.loss, item, request, limits, only_numbers, budget))
        except LossServiceError as err:
            prepared.append(_item_error(err, prefix, instance))
    work = sum(call.work for call in prepared if isinstance(call, PreparedCall))
    if work > limits.max_work:
        raise LimitExceeded(f"The requests' items would build {work:,} values of work together (see each loss's "
                            f"'work' in the catalogue), over the limit of {limits.max_work:,} for one request "
                            f"(LOSS_SERVICE_MAX_REQUEST_WORK); split the batch.", ("requests",))

    def run() -> Answer:
        results = []
        for i, call in enumerate(prepared):
            if isinstance(call, PreparedCall):
                try:
                    call = encode_result(call.evaluate())
                except LossServiceError as err:
                    call = _item_error(err, ("requests", i), instance)
            results.append(call)
        return Answer(dumps({"results": results}))

    return Plan(work, run)
