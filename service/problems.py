"""RFC 9457 problem bodies from engine errors (used by the API handlers and by /v1/batch items)."""

from __future__ import annotations

from typing import Any

from .engine.errors import LossServiceError

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(err: LossServiceError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"/problems/{err.slug}",
        "title": err.title,
        "status": err.status,
        "detail": err.detail,
        "instance": instance,
        "errors": [e.as_dict() for e in err.errors],
    }
    body.update(err.extra)
    return body


def simple_problem(status: int, slug: str, title: str, detail: str, instance: str | None = None,
                   loc: tuple = ()) -> dict[str, Any]:
    return {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, "instance": instance,
            "errors": [{"loc": list(loc), "msg": detail}] if loc else []}
