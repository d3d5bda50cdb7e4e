"""/docs and /redoc in a real browser, offline: Debian's chromium driven by Playwright (from PyPI,
with no browser download), against a live uvicorn on loopback.

Every request the pages make is routed: those to the server's origin go through, anything else is
recorded and aborted, and each test asserts that nothing left the machine. On /docs every example
of every operation is executed as a user would ("Try it out" is on; pick the example, Execute) and
must answer 200; for ``POST /v1/losses/{name}`` the pairing plugin must have set ``name`` to the
picked example's loss, and the response must be that loss's.
"""

from __future__ import annotations

import json
import os
import shutil

import httpx
import pytest

from .conftest import live_server

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]
HOW_TO_GET_CHROMIUM = ("The browser test needs Chromium: `apt-get install chromium` on Debian/Ubuntu (as root; "
                       "`bash .ci/run` does it), or set LOSS_SERVICE_CHROMIUM to a Chromium or Chrome binary.")
TIMEOUT_MS = 20_000


def chromium_path() -> str | None:
    path = os.environ.get("LOSS_SERVICE_CHROMIUM") or shutil.which("chromium")
    return path if path and os.access(path, os.X_OK) else None


def missing_chromium() -> str:
    named = os.environ.get("LOSS_SERVICE_CHROMIUM")
    return HOW_TO_GET_CHROMIUM + (f" LOSS_SERVICE_CHROMIUM={named!r} is not an executable file." if named else
                                  " There is no `chromium` on PATH.")


def test_chromium_is_installed():
    assert chromium_path(), missing_chromium()


@pytest.fixture(scope="module")
def server():
    with live_server() as live:
        yield live.url


@pytest.fixture(scope="module")
def spec(server) -> dict:
    return httpx.get(f"{server}/openapi.json", timeout=30).json()


@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.fail(missing_chromium(), pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


class Visit:
    """A fresh browser context whose requests may go to ``origin`` only; the others are aborted and kept."""

    def __init__(self, browser, origin: str) -> None:
        self.origin = origin
        self.left_the_machine: list[str] = []
        self.page_errors: list[str] = []
        self.context = browser.new_context()
        self.context.route("**/*", self._gate)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _gate(self, route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.left_the_machine.append(url)
            route.abort()

    def assert_offline_and_clean(self) -> None:
        assert not self.left_the_machine, f"requests left the machine: {self.left_the_machine}"
        assert not self.page_errors, f"errors in the page: {self.page_errors}"


@pytest.fixture
def visit(browser, server):
    visit = Visit(browser, server)
    yield visit
    visit.context.close()


def operation_block(page, spec: dict, path: str, method: str):
    operation = spec["paths"][path][method]
    block = page.locator(f"#operations-{operation['tags'][0]}-{operation['operationId']}")
    block.locator(".opblock-summary").first.click()
    block.locator(".execute").wait_for()  # tryItOutEnabled: the form is open at once
    return block


def body_examples(spec: dict, path: str, method: str) -> list[str]:
    media = spec["paths"][path][method].get("requestBody", {}).get("content", {}).get("application/json", {})
    return list(media.get("examples", {}))


def execute(page, block, path_end: str) -> tuple[int, dict]:
    """Clicks Execute; returns the status on the wire and the body Swagger UI shows for it."""
    clear = block.locator(".btn-clear")
    if clear.count():
        clear.click()
    with page.expect_response(lambda r: r.request.method != "OPTIONS" and path_end in r.url) as answered:
        block.locator(".execute").click()
    shown = block.locator(".live-responses-table tbody tr.response").first
    shown.wait_for()
    assert shown.locator(".response-col_status").inner_text().strip() == str(answered.value.status)
    text = shown.locator(".response-col_description pre").first.inner_text()
    return answered.value.status, (json.loads(text) if text.lstrip().startswith(("{", "[")) else {})


def test_every_loss_example_runs_as_picked(visit, spec):
    page = visit.page
    page.goto(f"{visit.origin}/docs")
    block = operation_block(page, spec, "/v1/losses/{name}", "post")
    keys = body_examples(spec, "/v1/losses/{name}", "post")
    assert len(keys) > 1
    name = block.locator("tr[data-param-name='name'] input")
    body = block.locator(".opblock-section-request-body select.examples-select-element")

    # the first click: the page as it loads, nothing picked
    assert name.input_value() == keys[0] and body.input_value() == keys[0]
    status, shown = execute(page, block, f"/v1/losses/{keys[0]}")
    assert status == 200 and shown["meta"]["loss"] == keys[0], shown

    for key in keys[1:]:
        body.select_option(key)
        assert name.input_value() == key, f"picking the {key!r} body did not set name"
        status, shown = execute(page, block, f"/v1/losses/{key}")
        assert status == 200, (key, shown)
        assert shown["meta"]["loss"] == key, (key, shown)

    # and the other way round: picking a name example picks its body
    block.locator("tr[data-param-name='name'] select").select_option(keys[1])
    assert body.input_value() == keys[1] and name.input_value() == keys[1]
    status, shown = execute(page, block, f"/v1/losses/{keys[1]}")
    assert status == 200 and shown["meta"]["loss"] == keys[1], shown
    visit.assert_offline_and_clean()


@pytest.mark.parametrize("path,method", [("/v1/batch", "post"), ("/v1/grade", "post"), ("/v1/exercises", "post"),
                                         ("/v1/losses", "get"), ("/v1/losses/{name}", "get"), ("/healthz", "get"),
                                         ("/readyz", "get"), ("/metrics", "get")])
def test_every_other_operation_runs_as_prefilled(visit, spec, path, method):
    page = visit.page
    page.goto(f"{visit.origin}/docs")
    block = operation_block(page, spec, path, method)
    path_end = path.split("{")[0]
    keys = body_examples(spec, path, method)
    if method == "post":
        assert keys, f"{method.upper()} {path} documents no request-body example"
    for key in keys or [None]:
        if key is not None:
            block.locator(".opblock-section-request-body select.examples-select-element").select_option(key)
        status, shown = execute(page, block, path_end)
        assert status == 200, (path, key, shown)
    visit.assert_offline_and_clean()


def test_redoc_renders_offline(visit, spec):
    page = visit.page
    page.goto(f"{visit.origin}/redoc")
    summary = spec["paths"]["/v1/losses/{name}"]["post"]["summary"]
    page.get_by_role("heading", name=summary).first.wait_for(state="visible")
    page.wait_for_load_state("networkidle")  # ReDoc's late requests (its logo) have been made by now
    visit.assert_offline_and_clean()


def test_docs_load_nothing_from_elsewhere(visit):
    page = visit.page
    page.goto(f"{visit.origin}/docs")
    page.locator(".opblock").first.wait_for()
    page.wait_for_load_state("networkidle")
    visit.assert_offline_and_clean()
