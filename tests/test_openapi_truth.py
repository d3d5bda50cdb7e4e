"""The OpenAPI document tells the truth: schemathesis, every check, against the in-process app.

Schemathesis generates requests from /openapi.json (examples, coverage, fuzzing and stateful
phases), sends them through ASGI and fails on any disagreement: a schema-valid body refused, a
schema-violating one accepted, a response that does not match its schema, a wrong ``Allow``
header, a 500. Seeded and deterministic, with a bounded number of examples per operation.
"""

from __future__ import annotations

import json

import jsonschema_rs  # schemathesis' own validator
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from service.api.openapi import SCHEMA_INEXPRESSIBLE, params_component
from service.app import create_app
from service.config import Settings
from service.engine import get_loss
from service.engine.errors import UnknownLoss

MAX_EXAMPLES = 30
SEED = 20261201


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
    allow, below) must carry one of the problem types the document lists as inexpressible in JSON
    Schema; anything else (an invalid field, an unknown parameter...) is a schema that says less
    than the server checks. Only POST /v1/losses/{name}, where the loss is in the path, may refuse a
    loss's parameters or outputs the body schema cannot tie to it, and the parameters must really be
    invalid for that loss, by its own params model."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (413, 422):
        return None
    kind = _problem_type(response)
    if kind not in SCHEMA_INEXPRESSIBLE:
        raise AssertionError(f"Schema-valid request refused with problem type {kind!r}, which JSON Schema can "
                             f"express: {response.content[:500]!r}")
    if kind in ("invalid-parameter", "unsupported-output") and case.operation.path != "/v1/losses/{name}":
        raise AssertionError(f"A body naming its loss refused with {kind!r}, which its schema can express: "
                             f"{response.content[:500]!r}")
    if kind == "invalid-parameter" and _params_fit_the_named_loss(case):
        raise AssertionError(f"params valid for the loss in the path refused: {response.content[:500]!r}")
    return None


def _config(max_examples: int = MAX_EXAMPLES, phases: dict | None = None) -> SchemathesisConfig:
    config = SchemathesisConfig.from_dict({
        "phases": phases or {},
        "seed": SEED,
        # no crash cache: a run replays nothing from earlier runs, and writes nothing into the checkout
        "cache": {"enabled": False},
        "generation": {"max-examples": max_examples, "deterministic": True},
        "checks": {
            # 422/413 for a schema-valid body are legitimate only for what JSON Schema cannot express
            # (shapes agreeing, domains, products of sizes); refusals_the_schema_explains checks that
            # each such refusal is one of those, so these two statuses hide nothing.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "413", "422"]},
            # 413 is this API's answer to a size over a limit the schema states (maxItems of a batch):
            # still a rejection of the invalid request.
            "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "413", "415", "422"]},
        },
    })
    config.projects.default.checks.update(included_check_names=["all"])
    return config


def run_schemathesis(app, path: str | None = None, max_examples: int = MAX_EXAMPLES,
                     phases: dict | None = None) -> list[str]:
    """Every distinct failure schemathesis reports, with its reproduction (of one path's operations
    when ``path`` is given; ``phases`` as in schemathesis.toml)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config(max_examples, phases))
    if path is not None:
        schema = schema.include(path=path)
    failures: dict[tuple, str] = {}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    if node.failure_info is not None:
                        failure = node.failure_info.failure
                        key = (event.recorder.label, node.name, failure.title)
                        failures.setdefault(key, f"{event.recorder.label} [{node.name}] {failure.title}: "
                                                 f"{failure.message}\n    {node.failure_info.code_sample}")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.setdefault(("error", str(event)), f"schemathesis error: {getattr(event, 'info', event)}")
    return list(failures.values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # fuzzed float32 inputs overflow on purpose (a 422)
def test_schemathesis_finds_no_disagreement():
    failures = run_schemathesis(create_app(Settings()))
    assert not failures, "\n\n".join(failures)


def test_the_harness_fails_when_the_server_disagrees(monkeypatch):
    # Starlette's own Allow header (the methods of the first route on the path only), as before the fix
    from service.api import problems

    monkeypatch.setattr(problems, "allowed_methods", lambda request: "GET")
    only_coverage = {name: {"enabled": False} for name in ("examples", "fuzzing", "stateful")}
    failures = run_schemathesis(create_app(Settings()), path="/v1/losses/{name}", max_examples=5, phases=only_coverage)
    assert any("allow_header_conformance" in f and "Missing documented methods: POST" in f for f in failures), failures
