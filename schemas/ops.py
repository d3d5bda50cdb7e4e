"""Health and readiness bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str
    version: str | None = None
    losses: int | None = None
    vector_math: str | None = Field(None, description="The engine's exp/log backend: mkl or numpy (LOSS_SERVICE_VECTOR_MATH).")
