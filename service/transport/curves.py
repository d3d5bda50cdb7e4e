"""The curve route's query string -> the engine's curve call, and the curve -> bytes in each format.

Loss parameters arrive as strings; each is read by its declared kind (``"2"`` a number, ``"true"`` a
boolean, ``"null"`` nothing) and then validated by ``params.bind``, the function POST
/v1/losses/{name} validates ``params`` with, so the two routes refuse the same values with the same
message (here at ``query.<name>``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from ..curves_plot import svg, vega_lite
from ..engine import get_loss
from ..engine import curves as engine_curves
from ..engine.errors import ErrorItem, InvalidInput, LossServiceError, UnknownLoss
from ..engine.params import (ARRAY_KINDS, AXES, AXIS, BOOL, CHOICE, INT, OPTIONAL_FLOAT, OPTIONAL_INT, Param, bind)
from ..engine.registry import Loss
from .call import Answer, Plan
from .json import dumps

RESERVED = ("format", "points", "with", "x_min", "x_max")


def _read(q: Param, text: str) -> Any:
    """The query string's value as the JSON value it stands for; a string that stands for none stays a
    string, so that ``validate`` refuses it with its own message ("must be a number, got 'abc'")."""
    if q.kind == CHOICE:
        return text
    if q.kind == BOOL:
        return {"true": True, "false": False}.get(text, text)
    if q.kind in (OPTIONAL_INT, OPTIONAL_FLOAT) and text == "null":
        return None
    if q.kind in (INT, OPTIONAL_INT):
        try:
            return int(text)
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        return text


def _at_query(err: LossServiceError) -> LossServiceError:
    """A parameter error of ``bind`` (loc params.<name>) pointed at the query string."""
    err.errors = [ErrorItem(("query", *e.loc[1:]) if e.loc[:1] == ("params",) else e.loc, e.msg) for e in err.errors]
    first = err.errors[0].loc if err.errors else ()
    if first[:1] == ("query",):
        err.detail = f"{'.'.join(map(str, first))}: {err.detail}"
    return err


def loss_params(loss: Loss, items: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The loss's bound parameters from the query's non-reserved keys."""
    given: dict[str, str] = {}
    by_name = {q.name: q for q in loss.params}
    curve_params = [q.name for q in engine_curves.scalar_params(loss)]
    accepted = ", ".join([*RESERVED, *curve_params])
    for key, value in items:
        if key in RESERVED:
            continue
        if key in given:
            raise InvalidInput(f"query.{key} is given twice; give each parameter once.", ("query", key))
        q = by_name.get(key)
        if q is None:
            raise InvalidInput(f"query.{key} is not a parameter of the curve of {loss.name}; accepted: {accepted}.",
                               ("query", key), slug="invalid-field", title="Invalid field")
        if q.kind in ARRAY_KINDS or q.kind in (AXIS, AXES):
            raise InvalidInput(f"query.{key} shapes the inputs, which the curve fixes (it is not a curve parameter); "
                               f"accepted: {accepted}.", ("query", key), slug="invalid-field", title="Invalid field")
        given[key] = value
    try:
        return bind(loss.params, {k: _read(by_name[k], v) for k, v in given.items()})
    except LossServiceError as err:
        raise _at_query(err) from None


def overlays(text: str | None) -> list[Loss]:
    out = []
    for name in (text or "").split(","):
        name = name.strip()
        if not name:
            continue
        try:
            out.append(get_loss(name))
        except UnknownLoss as err:
            err.errors = [ErrorItem(("query", "with"), e.msg) for e in err.errors]
            raise
    return out


MEDIA_TYPES = {"json": "application/json", "vega-lite": "application/json", "svg": "image/svg+xml"}
# A curve's work grows with its series: overlaying more than this many losses makes a plot nobody can read
MAX_OVERLAYS = 12


def curve_plan(name: str, items: list[tuple[str, str]], fmt: str, points: int, with_: str | None,
               x_min: float | None, x_max: float | None) -> Plan:
    """The query validated (every 4xx is raised here), and the curve's work: the y_pred elements its
    compute calls evaluate, so that curves wait in the same work budget as every other computation."""
    loss = get_loss(name)
    p = loss_params(loss, items)
    others = overlays(with_)
    if len(others) > MAX_OVERLAYS:
        raise InvalidInput(f"query.with names {len(others)} losses; overlay at most {MAX_OVERLAYS}.", ("query", "with"))
    engine_curves.check_overlays(loss, p, others)
    engine_curves.grid(loss, p, points, x_min, x_max)  # refuses a bad range now, before admission
    work = sum(engine_curves.work(other, p if other is loss else None, points)
               for other in dict.fromkeys([loss, *others]))

    def run() -> Answer:  # the query as read above: the curve, encoded in ``fmt``
        return Answer(encode(engine_curves.curve(loss, p, others, points, x_min, x_max), fmt), MEDIA_TYPES[fmt])

    return Plan(work=work, run=run)


def encode(curve: dict[str, Any], fmt: str) -> bytes:
    if fmt == "svg":
        return svg(curve).encode()
    if fmt == "vega-lite":
        return dumps(vega_lite(curve))
    return dumps(curve)


def _query_text(value: Any) -> str:
    """A bound parameter value as the query text ``_read`` reads back into the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def curve_url(loss: Loss, p: dict[str, Any], fmt: str = "svg") -> str:
    """The service-relative URL of ``loss``'s curve at the bound parameters ``p``: only the curve
    parameters that differ from their defaults travel (grader feedback links the picture with it)."""
    query = [("format", fmt)] + [(q.name, _query_text(p[q.name])) for q in engine_curves.scalar_params(loss)
                                 if q.name in p and p[q.name] != q.default]
    return f"/v1/losses/{quote(loss.name, safe='')}/curve?{urlencode(query)}"
