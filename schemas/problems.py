"""RFC 9457 problem details, the body of every 4xx/5xx response."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProblemItem(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is: a field name, then indices or keys.")
    msg: str = Field(description="What is wrong there.")


class Problem(BaseModel):
    """``application/problem+json`` (RFC 9457)."""

    type: str = Field(description="A URI reference naming the problem type, e.g. /problems/domain-error.")
    title: str = Field(description="A short summary of the problem type.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="One sentence: what was wrong and how to fix it.")
    instance: str | None = Field(None, description="The request path.")
    errors: list[ProblemItem] = Field(default_factory=list, description="Each problem with its location.")
    suggestions: list[str] | None = Field(None, description="Close loss names (404 unknown loss only).")

    model_config = {"json_schema_extra": {"examples": [{
        "type": "/problems/domain-error", "title": "Input outside the loss's domain", "status": 422,
        "detail": "y_pred values must be in [0, 1]; y_pred[1][0] = 1.5.", "instance": "/v1/losses/binary_crossentropy",
        "errors": [{"loc": ["y_pred", 1, 0], "msg": "y_pred values must be in [0, 1]; y_pred[1][0] = 1.5."}]}]}}


PROBLEM_RESPONSES = {
    400: {"model": Problem, "description": "The body is not valid JSON, or not valid data of its Content-Encoding.",
          "content": {"application/problem+json": {}}},
    404: {"model": Problem, "description": "Unknown loss (with suggestions).",
          "content": {"application/problem+json": {}}},
    413: {"model": Problem, "description": "Body, element count or declared work over the configured limit.",
          "content": {"application/problem+json": {}}},
    408: {"model": Problem, "description": "The body did not arrive within LOSS_SERVICE_BODY_TIMEOUT seconds.",
          "content": {"application/problem+json": {}}},
    415: {"model": Problem, "description": "Content type is not application/json, or Content-Encoding is not "
                                           "gzip, deflate or identity.",
          "content": {"application/problem+json": {}}},
    422: {"model": Problem, "description": "Valid JSON that is invalid for the loss (shape, domain, parameter, "
                                           "non-finite number, unknown field).",
          "content": {"application/problem+json": {}}},
    503: {"model": Problem, "description": "The computation queue is full (LOSS_SERVICE_MAX_QUEUE); retry after the "
                                           "Retry-After header's seconds.",
          "content": {"application/problem+json": {}}},
}
