"""Typed errors built from the service's problem+json bodies (``/v1``) and OIP error bodies (``/v2``).

Every error is a :class:`LossServiceError`; the subclass says what happened by HTTP status, so a
caller can ``except InvalidInput`` without reading numbers::

    try:
        client.compute("bce", [1, 0], [0.5, 1.5])
    except InvalidInput as err:
        print(err.detail)   # y_pred values must be in [0, 1]; y_pred[1] = 1.5.
        print(err.fields)   # ['y_pred[1]']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True)
class FieldError:
    """One entry of a problem's ``errors``: where (``loc``: a field name, then indices or keys) and what."""

    loc: tuple[str | int, ...]
    msg: str

    @property
    def path(self) -> str:
        """``("y_pred", 0, 1)`` -> ``"y_pred[0][1]"``; ``("params", "delta")`` -> ``"params.delta"``."""
        text = str(self.loc[0]) if self.loc else ""
        for part in self.loc[1:]:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


@dataclass(eq=False)  # compared and hashed by identity, like every exception
class LossServiceError(Exception):
    """An error answer of the service.

    ``status`` is the HTTP status; ``type`` the problem type URI (``/problems/domain-error``; None for
    OIP bodies, which carry only a message) and ``slug`` its last part; ``detail`` the one sentence
    saying what was wrong and how to fix it; ``errors`` the field locations; ``body`` the whole body.
    """

    status: int
    detail: str
    title: str = ""
    type: str | None = None
    errors: list[FieldError] = field(default_factory=list)
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return f"{self.status} {self.title or type(self).__name__}: {self.detail}"

    @property
    def slug(self) -> str | None:
        return self.type.rsplit("/", 1)[-1] if self.type else None

    @property
    def fields(self) -> list[str]:
        """The locations of ``errors`` as text, e.g. ``["y_pred[0][1]", "params.delta"]``."""
        return [e.path for e in self.errors]


class BadRequest(LossServiceError):
    """400: the body is not valid JSON, or (``/v2``) its binary framing is broken."""


class Unauthorized(LossServiceError):
    """401: the service requires an API key (``LossClient(api_key=...)``) or the key is wrong."""


class NotFound(LossServiceError):
    """404: unknown loss (``suggestions`` lists close names) or path."""

    @property
    def suggestions(self) -> list[str]:
        return list(self.body.get("suggestions") or [])


class MethodNotAllowed(LossServiceError):
    """405."""


class RequestTimeout(LossServiceError):
    """408: the body did not arrive in time."""


class PayloadTooLarge(LossServiceError):
    """413: body, element count, batch size or declared work over the service's limits."""


class UnsupportedMediaType(LossServiceError):
    """415."""


class InvalidInput(LossServiceError):
    """422: valid JSON that is invalid for the loss (shape, domain, parameter, non-finite value...)."""


class Overloaded(LossServiceError):
    """503: the computation queue is full; retry after ``retry_after`` seconds (or on another replica)."""

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


BY_STATUS: dict[int, type[LossServiceError]] = {
    400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed, 408: RequestTimeout,
    413: PayloadTooLarge, 415: UnsupportedMediaType, 422: InvalidInput, 503: Overloaded,
}


def error_from_body(status: int, body: Any, headers: dict[str, str] | None = None) -> LossServiceError:
    """The typed error for a parsed error body: problem+json, OIP's ``{"error": "..."}`` or anything else."""
    cls = BY_STATUS.get(status, LossServiceError)
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if isinstance(body, dict) and "detail" in body:
        errors = [FieldError(tuple(e.get("loc") or ()), str(e.get("msg", ""))) for e in body.get("errors") or []
                  if isinstance(e, dict)]
        return cls(status=int(body.get("status") or status), detail=str(body["detail"]),
                   title=str(body.get("title", "")), type=body.get("type"), errors=errors, body=body, headers=headers)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return cls(status=status, detail=body["error"], body=body, headers=headers)
    return cls(status=status, detail=str(body)[:500], body={}, headers=headers)


def error_from_response(status: int, content: bytes, headers: dict[str, str] | None = None) -> LossServiceError:
    try:
        body: Any = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = content.decode("utf-8", "replace")
    return error_from_body(status, body, headers)
