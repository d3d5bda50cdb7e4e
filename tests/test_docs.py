"""The OpenAPI document's examples (service/api/doc_examples.py) and the offline docs pages.

The examples of ``POST /v1/losses/{name}`` are paired (the same keys in the same order for ``name``,
the body and the 200 response, the default first); every documented error status has examples, and
each example is what the app answers when sent its input. tests/test_browser.py runs them in a browser.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from service.api import doc_examples
from service.api.docs import CONTENT_SECURITY_POLICY, SCRIPT, STATIC_URL
from service.catalogue import stored_examples
from service.config import Settings
from service.engine import all_losses

from .conftest import REPO, make_client

pytestmark = pytest.mark.anyio

PROBLEM_STATUSES = ("400", "404", "413", "415", "422")


async def openapi(**settings) -> dict:
    async with make_client(**settings) as client:
        return (await client.get("/openapi.json")).json()


def examples_of(operation: dict, status: str, media_type: str) -> dict:
    return operation["responses"][status]["content"][media_type]["examples"]


async def test_loss_examples_are_paired_by_key_and_order():
    post = (await openapi())["paths"]["/v1/losses/{name}"]["post"]
    (name,) = [p for p in post["parameters"] if p["name"] == "name" and p["in"] == "path"]
    body = post["requestBody"]["content"]["application/json"]["examples"]
    ok = examples_of(post, "200", "application/json")

    keys = [loss.name for loss in all_losses()]
    assert list(name["examples"]) == list(body) == list(ok) == keys
    assert name["schema"]["default"] == keys[0], "the prefilled name must be the first body example's loss"
    for key in keys:
        stored = stored_examples()[key][0]
        assert name["examples"][key]["value"] == key
        assert body[key]["value"] == stored["request"]
        assert ok[key]["value"] == stored["response"] and ok[key]["value"]["meta"]["loss"] == key


async def test_describe_loss_is_prefilled_too():
    get = (await openapi())["paths"]["/v1/losses/{name}"]["get"]
    (name,) = get["parameters"]
    assert name["schema"]["default"] == all_losses()[0].name
    assert list(name["examples"]) == [loss.name for loss in all_losses()]


async def test_every_documented_problem_status_shows_its_examples():
    spec = await openapi()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in PROBLEM_STATUSES:
                if status not in operation["responses"] or (method, status) == ("get", "422"):
                    continue  # FastAPI documents a 422 for GET path parameters; a str name cannot fail
                oip = path.startswith("/v2")  # the Open Inference Protocol's {"error": ...}
                examples = examples_of(operation, status, "application/json" if oip else "application/problem+json")
                assert examples, f"{method.upper()} {path} documents {status} without an example"
                for key, example in examples.items():
                    if oip:
                        assert set(example["value"]) == {"error"} and example["value"]["error"], (path, status, key)
                    else:
                        assert example["value"]["status"] == int(status), (path, status, key, example["value"])
                    assert example["summary"] and example["description"]
    kinds = {e["value"]["type"] for e in examples_of(spec["paths"]["/v1/losses/{name}"]["post"], "422",
                                                     "application/problem+json").values()}
    assert {"/problems/invalid-field", "/problems/domain-error", "/problems/shape-mismatch",
            "/problems/non-finite-input", "/problems/non-finite-result", "/problems/invalid-parameter"} <= kinds
    suggestions = examples_of(spec["paths"]["/v1/losses/{name}"]["post"], "404", "application/problem+json")
    assert all(e["value"]["suggestions"] for e in suggestions.values())


async def test_operations_show_their_real_200s():
    spec = await openapi()
    for path in ("/v1/batch", "/v1/grade", "/v1/exercises"):
        operation = spec["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["examples"]
        assert list(examples_of(operation, "200", "application/json")) == list(body), path


def documented_cases(settings: Settings, spec: dict) -> list[tuple[tuple[str, str], str, str, doc_examples.Case]]:
    cases = [(operation, str(status), key, case)
             for operation, by_status in doc_examples.problem_cases(settings).items()
             for status, by_key in by_status.items() for key, case in by_key.items()]
    cases += [(operation, "200", key, case) for operation, by_key in doc_examples.success_cases(spec).items()
              for key, case in by_key.items()]
    return cases


async def send(client, settings: Settings, method: str, case: doc_examples.Case) -> httpx.Response:
    if method == "get":
        return await client.get(case.url)
    # an oversize case declares a Content-Length it does not send: the 413 comes from the header alone
    return await client.send(client.build_request("POST", case.url, content=case.body,
                                                  headers=case.headers(settings)))


@pytest.mark.parametrize("overrides", [{}, {"max_body_bytes": 4096, "max_batch_items": 3}],
                         ids=["default settings", "small limits"])
async def test_every_example_is_what_the_service_answers(overrides):
    """Each example's input sent to the app gets the documented status and body, under the app's settings."""
    settings = Settings(**overrides)
    async with make_client(**overrides) as client:
        spec = (await client.get("/openapi.json")).json()
        cases = documented_cases(settings, spec)
        assert len(cases) > 30
        for (path, method), status, key, case in cases:
            media = "application/json" if status == "200" else "application/problem+json"
            documented = examples_of(spec["paths"][path][method], status, media)[key]["value"]
            response = await send(client, settings, method, case)
            assert response.status_code == int(status), (path, key, response.text)
            assert response.headers["content-type"] == media, (path, key)
            assert response.json() == documented, (path, key)
    if overrides:
        assert "4,096 bytes" in documented_413(spec) and "limit of 3" in str(spec["paths"]["/v1/batch"]["post"])


def documented_413(spec: dict) -> str:
    example = examples_of(spec["paths"]["/v1/losses/{name}"]["post"], "413", "application/problem+json")
    return example["body too large"]["value"]["detail"]


async def test_docs_pages_reference_only_their_own_assets(client):
    for page in ("/docs", "/redoc"):
        response = await client.get(page)
        html = response.text
        assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html), f"{page} names another host"
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        references = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert references, page
        for url in references:
            assert url.startswith("/"), (page, url)
            assert (await client.get(url)).status_code == 200, (page, url)
    assert f'src="{STATIC_URL}/{SCRIPT}"' in (await client.get("/docs")).text
    script = (await client.get(f"{STATIC_URL}/{SCRIPT}")).text
    assert "PairedExamples" in script and not re.search(r"https?://", script)


def test_content_security_policy_allows_only_the_service():
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    assert "'unsafe-inline'" not in directives["script-src"], "the docs pages need no inline script"
    for sources in directives.values():
        assert all(s in {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"} for s in sources.split()), sources


def fake_ci_path(tmp_path: Path, *, root: bool) -> tuple[dict[str, str], Path]:
    """A PATH with no chromium, where apt-get, id and python3 are stubs that log their arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    stub = f'#!/bin/sh\necho "$(basename "$0") $*" >> {log}\n'
    (bin_dir / "apt-get").write_text(stub)
    (bin_dir / "id").write_text(f'#!/bin/sh\necho {0 if root else 1000}\n')
    (bin_dir / "python3").write_text(stub + 'case "$1" in --version) echo "Python 3.11.9";; esac\nexit 0\n')
    for tool in ("dirname", "uname", "basename"):
        os.symlink(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True,
                                  check=True).stdout.strip(), bin_dir / tool)
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    return env, log


def run_ci(env: dict[str, str]) -> subprocess.CompletedProcess:
    bash = subprocess.run(["sh", "-c", "command -v bash"], capture_output=True, text=True, check=True).stdout.strip()
    return subprocess.run([bash, str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)


def test_ci_installs_chromium_when_missing(tmp_path):
    env, log = fake_ci_path(tmp_path, root=True)
    result = run_ci(env)
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    installs = [i for i, c in enumerate(calls) if c.startswith("apt-get install") and "chromium" in c.split()]
    tests = [i for i, c in enumerate(calls) if c == "python3 dev.py test"]
    assert "apt-get update" in calls and installs and tests, calls
    assert calls.index("apt-get update") < installs[0] < tests[0], calls


def test_ci_says_how_to_get_chromium_when_it_cannot_install(tmp_path):
    env, log = fake_ci_path(tmp_path, root=False)
    result = run_ci(env)
    calls = log.read_text().splitlines()
    assert not any(c.startswith("apt-get") for c in calls), calls
    assert "python3 dev.py test" in calls
    assert "apt-get install chromium" in result.stderr and "LOSS_SERVICE_CHROMIUM" in result.stderr
