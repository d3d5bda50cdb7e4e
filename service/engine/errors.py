"""Typed errors raised by the engine.

The engine never imports the web layer; the API turns these into RFC 9457 problem details in one
place (``service.api.problems``). Each error carries the HTTP status it maps to, a one-sentence
``detail`` that names the field and the fix, and a list of ``(loc, msg)`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Loc = tuple[str | int, ...]


@dataclass
class ErrorItem:
    loc: Loc
    msg: str

    def as_dict(self) -> dict:
        return {"loc": list(self.loc), "msg": self.msg}


@dataclass
class LossServiceError(Exception):
    """Base class: ``status`` is the HTTP status, ``slug`` names the problem type."""

    detail: str
    errors: list[ErrorItem] = field(default_factory=list)
    status: int = 422
    slug: str = "invalid-request"
    title: str = "Invalid request"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def __str__(self) -> str:  # dataclass would otherwise print every field
        return self.detail

    def with_prefix(self, prefix: Loc) -> LossServiceError:
        """Return the same error with every ``loc`` prefixed (used by /v1/batch items)."""
        self.errors = [ErrorItem(prefix + e.loc, e.msg) for e in self.errors]
        return self


def _items(loc: Loc | None, msg: str) -> list[ErrorItem]:
    return [ErrorItem(loc, msg)] if loc is not None else []


class InvalidInput(LossServiceError):
    """422: well-formed JSON that is invalid for the loss (shape, domain, type, value)."""

    def __init__(self, detail: str, loc: Loc | None = None, errors: Sequence[ErrorItem] | None = None,
                 slug: str = "invalid-input", title: str = "Invalid input") -> None:
        super().__init__(detail=detail, errors=list(errors) if errors else _items(loc, detail),
                         status=422, slug=slug, title=title)


class ShapeError(InvalidInput):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="shape-mismatch", title="Shapes do not fit the loss")


class DomainError(InvalidInput):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="domain-error", title="Input outside the loss's domain")


class ParameterError(InvalidInput):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="invalid-parameter", title="Invalid loss parameter")


class NonFiniteResult(InvalidInput):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="non-finite-result", title="Result is not finite")


class NotInFamily(InvalidInput):
    """A reduction or a sample_weight that the loss's family does not have (Keras names for a torch.*
    loss, batchmean for a Keras loss, sample_weight for a torch.* loss)."""

    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="not-in-family", title="Not part of this loss's family")


class UnsupportedOutput(InvalidInput):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail, loc, slug="unsupported-output", title="Output not available")


class UnknownLoss(LossServiceError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            detail=f"There is no loss named {name!r}.{hint} GET /v1/losses lists every loss and alias.",
            errors=[ErrorItem(("path", "name"), f"unknown loss {name!r}")],
            status=404, slug="unknown-loss", title="Unknown loss",
            extra={"suggestions": suggestions},
        )


class LimitExceeded(LossServiceError):
    def __init__(self, detail: str, loc: Loc | None = None) -> None:
        super().__init__(detail=detail, errors=_items(loc, detail), status=413,
                         slug="limit-exceeded", title="Request too large")


class WorkLimitExceeded(LimitExceeded):
    """One evaluation would build arrays over the work limit: a fault of that item alone (in a batch,
    the other items still run), unlike the request-wide size limits."""


class MalformedJSON(LossServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, errors=[ErrorItem(("body",), detail)], status=400,
                         slug="malformed-json", title="Body is not valid JSON")
