"""The registry of losses and the ``Loss`` base class every loss derives from.

A loss declares its metadata (names, formula, parameters, domains, references) as class
attributes and implements ``evaluate``, which returns the per-sample values and closures for the
vector-Jacobian product (and the diagonal Hessian where offered). Reductions, weights, masks and
dtypes are handled once, in ``compute``; losses never see them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import checks, sampling
from .errors import UnknownLoss
from .params import Interval, Param
from .reduction import KERAS, Reducer, squeeze_or_expand_to_same_rank

Vjp = Callable[[np.ndarray], np.ndarray]


@dataclass
class Evaluation:
    """What a loss returns: per-sample values and how to pull an upstream gradient back."""

    per_sample: np.ndarray
    vjp: Vjp | None  # upstream (per_sample's shape) -> d/dy_pred (y_pred's shape)
    hess: Vjp | None = None  # upstream -> diagonal of the Hessian of sum(upstream * per_sample)
    mask: np.ndarray | None = None  # Keras mask on the per-sample values (ignore_class, Circle)
    # PyTorch's mean where it is not the plain mean: a number divides the sum (the class weights of the
    # targets), an array shaped like per_sample divides each value first (CTC's target lengths)
    normaliser: float | np.ndarray | None = None


class Loss:
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "keras"  # keras | pytorch | gradient-boosting | other
    group: ClassVar[str] = ""  # module family: regression, probabilistic, hinge, ...
    reducer: ClassVar[Reducer] = KERAS  # the family's reduction rules
    extra_reductions: ClassVar[tuple[str, ...]] = ()  # beyond the family's (kl_div's batchmean)
    summary: ClassVar[str] = ""
    formula: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    y_true_doc: ClassVar[str] = "same shape as y_pred"
    y_pred_doc: ClassVar[str] = "real numbers"
    per_sample_doc: ClassVar[str] = "the last axis is reduced: shape y_pred.shape[:-1]"
    notes: ClassVar[str] = ""
    references: ClassVar[dict[str, str | None]] = {}
    differentiable: ClassVar[bool] = True
    hessian: ClassVar[bool] = False
    without_hessian: ClassVar[str] = ""  # where hessian is False: why (the catalogue and the 422 say it)
    y_true_required: ClassVar[bool] = True
    align_ranks: ClassVar[bool] = True  # Keras aligns y_true/y_pred ranks before calling the loss
    y_true_interval: ClassVar[Interval | None] = None
    y_pred_interval: ClassVar[Interval | None] = None
    # sampling kinds (see sampling.KINDS) for exercises and the gradient tests
    y_true_kind: ClassVar[str] = "real"
    y_pred_kind: ClassVar[str] = "real"
    sample_shape: ClassVar[tuple[int, ...]] = (4, 3)
    examples: ClassVar[tuple[dict[str, Any], ...]] = ()
    work_doc: ClassVar[str] = "y_pred.size: the evaluation works elementwise"

    @property
    def reductions(self) -> tuple[str, ...]:
        """The reductions this loss accepts: the one list the engine, schema, catalogue and docs read."""
        return self.reducer.accepted(self.extra_reductions)

    @property
    def default_reduction(self) -> str:
        return self.reducer.default

    # --- inputs -------------------------------------------------------------------------------
    def y_pred_domain(self, p: dict) -> Interval | None:
        return self.y_pred_interval

    def prepare(self, y_true: np.ndarray, y_pred: np.ndarray, p: dict) -> tuple[Any, np.ndarray]:
        """Validate shapes and domains; return the arrays the loss computes on.

        The default suits losses whose ``y_true`` has ``y_pred``'s shape."""
        if self.align_ranks:
            y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        checks.same_shape(y_true, y_pred)
        if self.y_true_interval is not None:
            checks.check_interval(y_true, self.y_true_interval, "y_true")
        domain = self.y_pred_domain(p)
        if domain is not None:
            checks.check_interval(y_pred, domain, "y_pred")
        return y_true, y_pred

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...], p: dict,
               decimals: int | None = None) -> dict[str, np.ndarray]:
        """Seeded inputs in the loss's domain for a y_pred of ``shape`` (see ``sampling``)."""
        y_true = sampling.draw(self.y_true_kind, rng, shape, decimals)
        y_pred = sampling.draw(self.sample_pred_kind(p), rng, shape, decimals)
        return {"y_true": y_true, "y_pred": y_pred}

    def sample_pred_kind(self, p: dict) -> str:
        return "logits" if p.get("from_logits") else self.y_pred_kind

    def work(self, y_true: Any, y_pred: np.ndarray, p: dict) -> int:
        """Values in the largest array the evaluation builds, from the prepared inputs: its memory
        and time grow with this. Most losses work elementwise; one that builds more (all pairs, an
        alignment lattice) says how much (and ``work_doc`` says it in words), so that a request can
        be refused before it exhausts the machine."""
        return int(y_pred.size)

    # --- computation --------------------------------------------------------------------------
    def evaluate(self, y_true: Any, y_pred: np.ndarray, p: dict) -> Evaluation:
        raise NotImplementedError

    def evaluate_for(self, y_true: Any, y_pred: np.ndarray, p: dict, derivatives: frozenset[str]) -> Evaluation:
        """``evaluate``, told which derivatives the caller will pull (``"gradient"``, ``"hessian"``),
        so that a loss computing them in the same pass as its values can skip the others."""
        return self.evaluate(y_true, y_pred, p)

    def hessian_is_second_derivative(self, p: dict) -> bool:
        """Whether the offered Hessian is the true second derivative for these parameters (the
        registry's finite-difference tests hold it to that only then). scikit-learn's gradient-boosting
        objectives replace it on purpose where it is 0 (see service/engine/boosting.py)."""
        return True

    # --- catalogue ----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "aliases": list(self.aliases),
            "family": self.family,
            "group": self.group,
            "summary": self.summary,
            "formula": self.formula,
            "params": [q.describe() for q in self.params],
            "reductions": list(self.reductions),
            "default_reduction": self.default_reduction,
            "y_true": self.y_true_doc,
            "y_pred": self.y_pred_doc,
            "per_sample": self.per_sample_doc,
            "differentiable": self.differentiable,
            "hessian": self.hessian,
            "without_hessian": None if self.hessian else self.without_hessian,
            "notes": self.notes,
            "work": self.work_doc,
            "references": dict(self.references),
        }


_LOSSES: dict[str, Loss] = {}
_KEYS: dict[str, str] = {}


def name_key(name: str) -> str:
    """Case- and separator-insensitive key: ``CategoricalCrossentropy`` == ``categorical_crossentropy``."""
    return re.sub(r"[\s_\-]", "", name).lower()


def register(cls: type[Loss]) -> type[Loss]:
    loss = cls()
    if not cls.group:
        cls.group = cls.__module__.rsplit(".", 1)[-1]
    for alias in (cls.name, *cls.aliases):
        key = name_key(alias)
        if key in _KEYS and _KEYS[key] != cls.name:
            raise ValueError(f"{alias!r} names both {_KEYS[key]!r} and {cls.name!r}")
        _KEYS[key] = cls.name
    _LOSSES[cls.name] = loss
    return cls


def get_loss(name: str) -> Loss:
    canonical = _KEYS.get(name_key(name))
    if canonical is None:
        raise UnknownLoss(name, suggest(name))
    return _LOSSES[canonical]


def suggest(name: str, n: int = 3) -> list[str]:
    key = name_key(name)
    hits = difflib.get_close_matches(key, list(_KEYS), n=n * 3, cutoff=0.6)
    out: list[str] = []
    for hit in hits:
        if _KEYS[hit] not in out:
            out.append(_KEYS[hit])
    return out[:n]


def all_losses() -> list[Loss]:
    return [_LOSSES[k] for k in sorted(_LOSSES)]
