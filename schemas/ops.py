"""Health and readiness bodies."""

from __future__ import annotations

from pydantic import BaseModel


class Health(BaseModel):
    status: str
    version: str | None = None
    losses: int | None = None
