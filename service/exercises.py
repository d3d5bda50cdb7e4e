"""Seeded exercises: deterministic inputs in each loss's valid domain (``POST /v1/exercises``).

The same request gives the same numbers in every release: the algorithm below is part of the
API, and changing it is a breaking change (``tests/test_exercises.py`` pins exact numbers).

The algorithm, for a request ``{loss, params, shape, seed, sample_weight, decimals}``:

1. ``params`` are validated and completed with their defaults, as for a loss request.
   ``shape`` is y_pred's shape (default: the loss's ``sample_shape``); ``decimals`` defaults to 4.
2. ``rng = numpy.random.Generator(numpy.random.PCG64(seed))``: one generator for the request.
3. ``y_true`` and then ``y_pred`` are drawn from ``rng`` by the loss's ``sample`` method. The
   default (most losses) draws each array by its *kind* (``service.engine.sampling.KINDS``):
   ``real`` normal(0, 1); ``logits`` normal(0, 2) (y_pred of every loss with from_logits=true);
   ``positive`` uniform(0.1, 3); ``probability`` uniform(0.05, 0.95); ``binary`` integers {0, 1};
   ``pm1`` integers {-1, 1}; ``counts`` poisson(2); ``one_hot`` a uniform class per row of the
   last axis, one-hot encoded; ``labels`` uniform integer classes of shape ``shape[:-1]``;
   ``simplex`` softmax of normal(0, 1) over the last axis (after rounding, the rounding residue
   goes to each row's largest entry so rows still sum to 1); ``unit_rows`` normal(0, 1) rows
   scaled to unit L2 norm. Each array is then rounded with ``numpy.round(x, decimals)`` (round
   half to even). Losses with structured inputs document their own draw in their ``sample``
   method: ``circle`` (labels that repeat, then unit embeddings) and ``ctc`` (label lengths,
   tokens with trailing 0 padding, then logits) and ``torch.ctc_loss`` (input and target lengths,
   targets, then log-probabilities), and any loss added later likewise. A loss whose data come with
   parameters that describe them (``torch.ctc_loss``'s ``input_lengths`` and ``target_lengths``) draws
   those too; they replace any sent and are returned in ``params``.
4. When ``params.axis`` is a single axis other than the last, step 3 draws for the shape with
   that axis moved last, and the arrays of y_pred's rank are moved back with
   ``numpy.moveaxis(x, -1, axis)`` (labels, drawn without the class axis, stay as drawn).
5. With ``sample_weight: true`` (losses whose family takes one; torch.* losses answer 422), the per-sample shape of the loss on these inputs is computed
   (reduction none) and ``sample_weight = round(rng.uniform(0.5, 2.0, per_sample_shape),
   decimals)`` is drawn from the same ``rng``, after y_true and y_pred.
6. The inputs are checked by the loss itself (its shape and domain checks): a shape the loss
   cannot take is a 422 naming ``shape``. Arrays whose values are all integers (labels, one-hot
   rows, {0, 1} targets) are written as JSON integers.

Nothing here imports the web framework: bodies in, bodies out, like ``service.transport``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.grading import ExerciseRequest

from .transport import json as json_wire
from .engine import PreparedCall, get_loss, prepare_call
from .engine.errors import InvalidInput, LimitExceeded, NonFiniteResult, NotInFamily, ShapeError, UnknownLoss
from .engine.params import bind, normalize_axes
from .engine.registry import Loss
from .engine.sampling import draw, rng_for
from .transport.call import Answer, Limits, Plan
from .transport.json import unknown_loss_in_body, validate_body

DEFAULT_DECIMALS = 4


@dataclass
class Exercise:
    loss: Loss
    params: dict[str, Any]  # every parameter, defaults included
    shape: tuple[int, ...]
    seed: int
    decimals: int | None
    y_true: np.ndarray
    y_pred: np.ndarray
    sample_weight: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {"seed": self.seed, "shape": list(self.shape), "decimals": self.decimals,
                "sample_weight": self.sample_weight is not None}


def _where(loc: tuple) -> str:
    return "".join(f"{part}." for part in loc)


def check_shape(shape: Sequence[int], limits: Limits, loc: tuple = ()) -> tuple[int, ...]:
    """Rank and size limits of a requested y_pred shape (dims >= 1 are checked by the schema)."""
    where = _where(loc) + "shape"
    if not 1 <= len(shape) <= limits.max_rank:
        raise InvalidInput(f"{where} has {len(shape)} dimensions; send 1 to {limits.max_rank} "
                           f"(LOSS_SERVICE_MAX_RANK), e.g. [4, 3].", (*loc, "shape"))
    if any(d < 1 for d in shape):
        raise InvalidInput(f"{where} {list(shape)} has a dimension below 1; every dimension must be at least 1.",
                           (*loc, "shape"))
    size = math.prod(shape)
    if 2 * size > limits.max_elements:
        raise LimitExceeded(f"{where} {list(shape)} holds {size:,} numbers; y_true and y_pred together would go "
                            f"over the limit of {limits.max_elements:,} (LOSS_SERVICE_MAX_ELEMENTS); ask for a "
                            f"smaller shape.", (*loc, "shape"))
    return tuple(int(d) for d in shape)


def _class_axis(p: Mapping[str, Any], ndim: int) -> int | None:
    """The axis to draw last (step 4), or None when it already is the last one."""
    axis = p.get("axis")
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        k = normalize_axes(int(axis), ndim)[0]
        return k if k != ndim - 1 else None
    return None


@dataclass
class Draft:
    """An exercise whose inputs are drawn and checked by the loss's own shape and domain checks, with
    its declared ``work`` known: ``finish`` evaluates the loss on them (the last check, and the
    per-sample shape a ``sample_weight`` is drawn for), which is the heavy part."""

    exercise: Exercise
    call: PreparedCall
    rng: np.random.Generator
    sample_weight: bool
    where: str
    loc: tuple

    @property
    def work(self) -> int:
        return self.call.work

    def finish(self) -> Exercise:
        ex = self.exercise
        with _shape_errors(ex, self.where, self.loc):
            result = self.call.evaluate()
        if self.sample_weight:
            ex.sample_weight = draw("weights", self.rng, tuple(result.per_sample.shape), ex.decimals)
        return ex


@contextlib.contextmanager
def _shape_errors(ex: Exercise, where: str, loc: tuple):
    """The loss's complaints about drawn inputs, said about the requested shape."""
    spec, shape = ex.loss, list(ex.shape)
    try:
        yield
    except ShapeError as err:
        raise ShapeError(f"{where} {shape} does not fit {spec.name}: {err.detail}", (*loc, "shape")) from None
    except LimitExceeded as err:
        raise LimitExceeded(f"{where} {shape} is too large for {spec.name}: {err.detail}", (*loc, "shape")) from None
    except NonFiniteResult as err:  # the parameters' scale (l2_penalty's factor=1e308), not the drawn inputs
        raise NonFiniteResult(f"The exercise drawn for {spec.name} with {where} {shape} has a result that is not "
                              f"finite ({err.detail}); smaller parameters may fit.", ("params",)) from None
    except InvalidInput as err:  # pragma: no cover - a sampler bug; the registry tests guard every loss
        raise InvalidInput(f"The exercise drawn for {spec.name} with {where} {shape} and decimals={ex.decimals} "
                           f"is not valid for the loss ({err.detail}); try more decimals or another shape.",
                           (*loc, "decimals")) from None


def draft(spec: Loss, params: Mapping[str, Any] | None, shape: Sequence[int] | None, seed: int, *,
          sample_weight: bool = False, decimals: int | None = DEFAULT_DECIMALS, limits: Limits,
          loc: tuple = ()) -> Draft:
    """Steps 1-4 and 6 of the documented algorithm (module docstring) up to evaluating the loss;
    ``Draft.finish`` does the rest. ``loc`` prefixes the fields named in errors (``("exercise",)``
    inside a grade request)."""
    p = bind(spec.params, params)
    if sample_weight and not spec.reducer.sample_weight:
        raise NotInFamily(f"{spec.name} takes no sample_weight ({spec.reducer.family} losses weigh through their "
                           f"own parameters); leave sample_weight false.", (*loc, "sample_weight"))
    shape = check_shape(tuple(spec.sample_shape) if shape is None else tuple(shape), limits, loc)
    where = _where(loc) + "shape"
    rng = rng_for(seed)
    k = _class_axis(p, len(shape))
    draw_shape = shape if k is None else shape[:k] + shape[k + 1:] + (shape[k],)
    try:
        with np.errstate(all="ignore"):
            arrays = spec.sample(rng, draw_shape, p, decimals)
    except ShapeError as err:
        raise ShapeError(f"{where} {list(shape)} does not fit {spec.name}: {err.detail}", (*loc, "shape")) from None
    y_true, y_pred = (np.asarray(arrays[f], dtype=np.float64) for f in ("y_true", "y_pred"))
    # parameters that describe the drawn data (CTC's lengths) come with it, checked like a client's
    p.update(bind(spec.params, {**p, **arrays.get("params", {})}))
    if k is not None:
        y_true = np.moveaxis(y_true, -1, k) if y_true.ndim == len(shape) else y_true
        y_pred = np.moveaxis(y_pred, -1, k)
    ex = Exercise(spec, p, shape, seed, decimals, y_true, y_pred)
    with _shape_errors(ex, where, loc):
        call = prepare_call(spec, y_true, y_pred, params=p, reduction="none", outputs=("per_sample",),
                            max_work=limits.max_work)
    return Draft(ex, call, rng, sample_weight, where, loc)


def as_json_array(x: np.ndarray) -> np.ndarray:
    """Integral arrays (labels, one-hot rows, {0, 1} targets) as int64, so they read as integers."""
    if x.size and np.all(np.abs(x) < 2**53) and np.array_equal(x, np.round(x)):
        return x.astype(np.int64)
    return x


def exercise_response(body: bytes, limits: Limits) -> Plan:
    """``POST /v1/exercises``: the JSON body in, the plan of the exercise out."""
    request = validate_body(ExerciseRequest, json_wire.parse_json(body), '(e.g. {"loss": "huber", "shape": [4, 3], '
                                                                     '"seed": 42})')
    try:
        spec = get_loss(request.loss)
    except UnknownLoss as err:
        raise unknown_loss_in_body(err) from None
    drafted = draft(spec, request.params, request.shape, request.seed, sample_weight=request.sample_weight,
                    decimals=request.decimals, limits=limits)

    def run() -> Answer:
        ex = drafted.finish()
        out: dict[str, Any] = {"loss": spec.name, "params": ex.params, "shape": list(ex.shape), "seed": ex.seed,
                               "decimals": ex.decimals, "y_true": as_json_array(ex.y_true),
                               "y_pred": as_json_array(ex.y_pred)}
        if ex.sample_weight is not None:
            out["sample_weight"] = as_json_array(ex.sample_weight)
        return Answer(json_wire.dumps(out))

    return Plan(drafted.work, run)
