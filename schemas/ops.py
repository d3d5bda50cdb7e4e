"""Health and readiness bodies."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    """``GET /healthz``: the process is alive (liveness; it says nothing about capacity)."""

    status: str = Field(description='"ok" whenever the process answers.')
    version: str = Field(description="The service's version.")


class Readiness(Health):
    """``GET /readyz``: the service can take computations (readiness)."""

    status: str = Field(description=(
        '"ready" (200); "busy" (503: the computation queue is full) or "draining" (503: shutting down, '
        'finishing the requests in flight).'))
    reason: str = Field(description="Why this replica is, or is not, ready, in words.")

    losses: int = Field(description="How many losses the registry serves.")
    vector_math: str = Field(description="The engine's exp/log backend: mkl or numpy (LOSS_SERVICE_VECTOR_MATH).")
