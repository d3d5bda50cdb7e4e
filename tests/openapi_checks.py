"""Schemathesis hooks of this repository (``schemathesis.toml`` loads them for the CLI, and
``tests/test_openapi_truth.py`` imports them): one check that keeps the 422 and 413 statuses the
configuration allows for schema-valid requests to what JSON Schema cannot express."""

from __future__ import annotations

import json

import jsonschema_rs  # schemathesis' own validator
import schemathesis

from service.api.openapi import SCHEMA_INEXPRESSIBLE, params_component
from service.engine import get_loss
from service.engine.errors import UnknownLoss


OIP_INFER = ("/v2/models/{loss}/infer", "/v2/models/{loss}/versions/{version}/infer")


def _problem_type(response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    kind = body.get("type", "") if isinstance(body, dict) else ""
    return kind.removeprefix("/problems/") or None


def _params_fit_the_named_loss(case) -> bool:
    """Whether ``params`` are valid for the loss in the path, by that loss's own model in the document."""
    try:
        loss = get_loss(case.path_parameters["name"])
    except UnknownLoss:
        return False
    params = case.body.get("params", {}) if isinstance(case.body, dict) else {}
    model = case.operation.schema.raw_schema["components"]["schemas"][params_component(loss)]
    return jsonschema_rs.Draft202012Validator(model).is_valid(params)


@schemathesis.check
def refusals_the_schema_explains(ctx, response, case):
    """A schema-valid request refused with 422 or 413 (which positive_data_acceptance is told to
    allow) must carry one of the problem types the document lists as inexpressible in JSON Schema;
    anything else (an invalid field, an unknown parameter...) is a schema that says less than the
    server checks. Only POST /v1/losses/{name}, where the loss is in the path, may refuse a loss's
    parameters or outputs the body schema cannot tie to it, and the parameters must really be
    invalid for that loss, by its own params model."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (413, 422):
        return None
    if case.operation.path in OIP_INFER:  # OIP: see schemathesis.toml's [[operations]]
        return None
    kind = _problem_type(response)
    if kind not in SCHEMA_INEXPRESSIBLE:
        raise AssertionError(f"Schema-valid request refused with problem type {kind!r}, which JSON Schema can "
                             f"express: {response.content[:500]!r}")
    if kind in ("invalid-parameter", "unsupported-output", "not-in-family") and case.operation.path != "/v1/losses/{name}":
        raise AssertionError(f"A body naming its loss refused with {kind!r}, which its schema can express: "
                             f"{response.content[:500]!r}")
    if kind == "invalid-parameter" and _params_fit_the_named_loss(case):
        raise AssertionError(f"params valid for the loss in the path refused: {response.content[:500]!r}")
    return None
