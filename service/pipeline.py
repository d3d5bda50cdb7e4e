"""Request bodies in, response bodies out: the whole computation behind one function boundary.

Nothing here imports the web framework, so these functions can run in a thread (as now) or move
to a process pool unchanged. Errors are raised as typed ``LossServiceError``s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas import BatchItem, LossRequest

from . import wire
from .config import Settings
from .engine import PreparedCall, get_loss, prepare_call
from .engine.errors import ErrorItem, InvalidInput, LimitExceeded, LossServiceError, UnknownLoss, WorkLimitExceeded
from .problems import problem_body

ARRAY_FIELDS = ("y_true", "y_pred", "sample_weight")
RESULT_FIELDS = ("loss", "per_sample", "gradient", "hessian")


@dataclass(frozen=True)
class Limits:
    max_elements: int
    max_rank: int
    max_batch_items: int
    max_work: int  # the most declared work one request may have: more could never be admitted

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(max_elements=s.max_elements, max_rank=s.max_rank, max_batch_items=s.max_batch_items,
                   max_work=min(s.max_request_work, s.work_budget))


@dataclass(frozen=True)
class Plan:
    """A request parsed and validated, with its declared work (``Loss.work``, a batch's items summed):
    ``run`` does the heavy part and gives the response body, once the process's work budget has
    room for it (``service.api.compute``)."""

    work: int
    run: Callable[[], bytes]


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


def _response(result) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in RESULT_FIELDS:
        value = getattr(result, name)
        if value is not None:
            out[name] = value
    if "gradient" in result.meta:  # not differentiable: say so explicitly
        out["gradient"] = None
    out["meta"] = result.meta
    return out


def _prepare(name: str, obj: dict, request: LossRequest, limits: Limits, numbers_only: bool,
             budget: list[int]) -> PreparedCall:
    spec = get_loss(name)
    arrays = {f: wire.to_array(obj.get(f), f, max_rank=limits.max_rank, numbers_only=numbers_only)
              for f in ARRAY_FIELDS}
    budget[0] -= wire.check_elements(arrays.values(), limits.max_elements)
    if budget[0] < 0:
        raise LimitExceeded(f"The request holds more than {limits.max_elements:,} numbers in all "
                            f"(LOSS_SERVICE_MAX_ELEMENTS); split it into smaller requests.", ("body",))
    return prepare_call(spec, arrays["y_true"], arrays["y_pred"], params=request.params,
                        sample_weight=arrays["sample_weight"], reduction=request.reduction,
                        outputs=request.outputs, dtype=request.dtype, max_work=limits.max_work)


def outside_arrays(item: Any, fields: tuple[str, ...] = ARRAY_FIELDS) -> Any:
    """A request object with its number arrays blanked (their keys stay: they are quoted in the body),
    what the raw-byte accounting of ``wire.numbers_only`` compares against."""
    if not isinstance(item, dict):
        return item
    return {k: None if k in fields else v for k, v in item.items()}


def loss_response(name: str, body: bytes, limits: Limits) -> Plan:
    """``POST /v1/losses/{name}``: the JSON body in, the plan of the JSON response out."""
    get_loss(name)  # an unknown name is a 404 before anything else is looked at
    obj = wire.parse_json(body)
    request = validate_body(LossRequest, obj)
    numbers_only = wire.numbers_only(body, outside_arrays(obj))
    call = _prepare(name, obj, request, limits, numbers_only, [limits.max_elements])
    return Plan(call.work, lambda: wire.dumps(_response(call.evaluate())))


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
    obj = wire.parse_json(body)
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
    numbers_only = wire.numbers_only(body, {"requests": [outside_arrays(item) for item in items]})
    budget = [limits.max_elements]
    prepared: list[PreparedCall | dict[str, Any]] = []
    for i, item in enumerate(items):
        prefix = ("requests", i)
        try:
            request = validate_body(BatchItem, item, prefix=prefix)
            prepared.append(_prepare(request.loss, item, request, limits, numbers_only, budget))
        except LossServiceError as err:
            prepared.append(_item_error(err, prefix, instance))
    work = sum(call.work for call in prepared if isinstance(call, PreparedCall))
    if work > limits.max_work:
        raise LimitExceeded(f"The requests' items would build {work:,} values of work together (see each loss's "
                            f"'work' in the catalogue), over the limit of {limits.max_work:,} for one request "
                            f"(LOSS_SERVICE_MAX_REQUEST_WORK); split the batch.", ("requests",))

    def run() -> bytes:
        results = []
        for i, call in enumerate(prepared):
            if isinstance(call, PreparedCall):
                try:
                    call = _response(call.evaluate())
                except LossServiceError as err:
                    call = _item_error(err, ("requests", i), instance)
            results.append(call)
        return wire.dumps({"results": results})

    return Plan(work, run)
