"""The OpenAPI document tells the truth: schemathesis, every check, against the in-process app.

Schemathesis generates requests from /openapi.json (examples, coverage, fuzzing and stateful
phases), sends them through ASGI and fails on any disagreement: a schema-valid body refused, a
schema-violating one accepted, a response that does not match its schema, a wrong ``Allow``
header, a 500. Seeded and deterministic, with a bounded number of examples per operation.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema

from service.app import create_app
from service.config import Settings

from . import openapi_checks  # noqa: F401  (registers refusals_the_schema_explains)

MAX_EXAMPLES = 30
SEED = 20261201
SHARED_CONFIG = Path(__file__).resolve().parents[1] / "schemathesis.toml"


def _config(max_examples: int = MAX_EXAMPLES, phases: dict | None = None) -> SchemathesisConfig:
    """The repository's schemathesis.toml (checks and their statuses, justified there), seeded and
    deterministic, with a bounded number of examples per operation."""
    shared = tomllib.loads(SHARED_CONFIG.read_text(encoding="utf-8"))
    shared.pop("hooks")  # imported above, as a package module
    config = SchemathesisConfig.from_dict({
        **shared,
        "phases": phases or {},
        "seed": SEED,
        # no crash cache: a run replays nothing from earlier runs, and writes nothing into the checkout
        "cache": {"enabled": False},
        "generation": {"max-examples": max_examples, "deterministic": True},
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
    failures = run_schemathesis(create_app(Settings(executor="thread")))
    assert not failures, "\n\n".join(failures)


def test_the_harness_fails_when_the_server_disagrees(monkeypatch):
    # Starlette's own Allow header (the methods of the first route on the path only), as before the fix
    from service.api import problems

    monkeypatch.setattr(problems, "allowed_methods", lambda request: "GET")
    only_coverage = {name: {"enabled": False} for name in ("examples", "fuzzing", "stateful")}
    failures = run_schemathesis(create_app(Settings(executor="thread")), path="/v1/losses/{name}", max_examples=5, phases=only_coverage)
    assert any("allow_header_conformance" in f and "Missing documented methods: POST" in f for f in failures), failures
