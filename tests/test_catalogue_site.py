"""The catalogue site in a real browser, offline: Debian's chromium driven by Playwright (as
tests/test_browser.py does, reusing its browser fixture and gate) against a live server.

Every loss page must load with no request leaving the machine, no page error and no
Content-Security-Policy violation, render its formula with KaTeX, and draw its curves (SVG path
marks from vega-embed). On a few pages a parameter control must move the drawn curve, an overlay
must add a series, and the playground must answer what the API answers for the same body, as must
the request its "copy as curl / Python / JavaScript" buttons write out. Screenshots of three pages go
to test-artifacts/screenshots/ (or LOSS_SERVICE_ARTIFACTS_DIR/screenshots).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.engine import all_losses

from .conftest import REPO
from .test_browser import Visit, browser, server  # noqa: F401 (fixtures: one browser, one server per module)

CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    event.violatedDirective + " " + (event.blockedURI || "inline") + " " + (event.sample || ""));
});
"""
MARKS = "#curve-plot svg g.mark-line path"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def artifacts_dir() -> Path:
    base = os.environ.get("LOSS_SERVICE_ARTIFACTS_DIR")
    return (Path(base) if base else REPO / "test-artifacts") / "screenshots"


class SiteVisit(Visit):
    """A Visit that also records CSP violations and console errors."""

    def __init__(self, browser, origin: str) -> None:
        super().__init__(browser, origin)
        self.context.add_init_script(CSP_RECORDER)
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))

    def open(self, name: str) -> None:
        self.page.goto(f"{self.origin}/catalogue/{name}")
        self.wait_drawn(1)
        self.page.wait_for_selector("#playground-result[data-state='ok'], #playground-result[data-state='problem']")

    def draws(self) -> int:
        return int(self.page.get_attribute("#curve-plot", "data-draws") or 0)

    def wait_drawn(self, at_least: int) -> None:
        self.page.wait_for_function(
            "n => Number(document.getElementById('curve-plot').dataset.draws || 0) >= n"
            " || !document.getElementById('curve-problem').hidden", arg=at_least)
        problem = self.page.locator("#curve-problem")
        assert problem.is_hidden(), f"the curve panel shows a problem: {problem.text_content()}"

    def paths(self) -> list[str]:
        return self.page.eval_on_selector_all(MARKS, "nodes => nodes.map(n => n.getAttribute('d'))")

    def assert_clean(self) -> None:
        self.assert_offline_and_clean()
        violations = self.page.evaluate("window.__cspViolations")
        assert not violations, f"Content-Security-Policy violations: {violations}"
        assert not self.console_errors, f"console errors: {self.console_errors}"


@pytest.fixture(scope="module")
def site(browser, server):  # noqa: F811
    """One context for the module: the vendored scripts are fetched once and cached."""
    visit = SiteVisit(browser, server)
    yield visit
    visit.context.close()


@pytest.fixture
def fresh(site):
    site.left_the_machine.clear()
    site.page_errors.clear()
    site.console_errors.clear()
    return site


@pytest.mark.parametrize("name", [loss.name for loss in all_losses()])
def test_every_loss_page_renders_offline(fresh, name):
    fresh.open(name)
    page = fresh.page
    formula = page.locator(".formula")
    assert "rendered" in formula.get_attribute("class"), formula.text_content()
    assert page.locator(".formula .katex").count() == 1 and page.locator(".katex-error").count() == 0
    assert page.locator(".formula .tex-source").count() == 1, "the raw TeX stays in the page"
    drawn = [d for d in fresh.paths() if d and len(d) > 10]
    assert drawn, f"{name}: no line drawn in the curve panel"
    assert page.locator("#playground-result").get_attribute("data-state") == "ok", \
        page.locator("#playground-problem").text_content()
    fresh.assert_clean()


def move(site: SiteVisit, param: str, value: str) -> None:
    before = site.draws()
    control = site.page.locator(f"#curve-controls input[data-param='{param}']")
    # a slider cannot be filled: set it as dragging does, with an input event
    control.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", value)
    site.wait_drawn(before + 1)


@pytest.mark.parametrize("name,param,value", [("huber", "delta", "0.3"),
                                              ("binary_crossentropy", "label_smoothing", "0.4")])
def test_a_parameter_control_moves_the_curve(fresh, name, param, value):
    fresh.open(name)
    before = fresh.paths()
    move(fresh, param, value)
    after = fresh.paths()
    assert after != before, f"moving {param} did not change the drawn curve"
    assert f"{param}={float(value)}" in fresh.page.locator("#curve-plot svg").text_content()  # the title names it
    fresh.assert_clean()


def test_a_refused_parameter_shows_the_services_problem(fresh):
    fresh.open("huber")
    fresh.page.locator("#curve-controls input[data-param='delta']").fill("-1")
    problem = fresh.page.locator("#curve-problem")
    problem.wait_for(state="visible")
    assert "delta" in problem.text_content(), problem.text_content()
    assert all("422" in e for e in fresh.console_errors) and fresh.console_errors  # the refused fetch, logged
    fresh.console_errors.clear()
    fresh.assert_clean()


def legend(site: SiteVisit) -> list[str]:
    return site.page.eval_on_selector_all("#curve-plot svg .role-legend-label text",
                                          "nodes => nodes.map(n => n.textContent)")


def overlay(site: SiteVisit, *names: str) -> None:
    for name in names:
        before = site.draws()
        site.page.locator(f"#curve-overlay input[value='{name}']").check()
        site.wait_drawn(before + 1)


@pytest.mark.parametrize("name,others", [("mean_squared_error", ("mean_absolute_error", "huber", "log_cosh")),
                                         ("binary_crossentropy", ("binary_focal_crossentropy",))])
def test_an_overlay_adds_a_series(fresh, name, others):
    fresh.open(name)
    lines = len(fresh.paths())
    assert legend(fresh) == [name]
    offered = fresh.page.eval_on_selector_all("#curve-overlay input", "nodes => nodes.map(n => n.value)")
    assert set(others) <= set(offered) and name not in offered
    overlay(fresh, *others)
    assert legend(fresh) == [name, *others]
    assert len(fresh.paths()) > lines
    fresh.assert_clean()


def test_the_overlay_picker_follows_the_axis(fresh):
    """from_logits moves binary_crossentropy to the logit axis: the picker then offers logit losses only."""
    fresh.open("binary_crossentropy")
    offered = fresh.page.eval_on_selector_all("#curve-overlay input", "n => n.map(x => x.value)")
    assert "mean_squared_error" not in offered
    before = fresh.draws()
    fresh.page.locator("#curve-controls [data-param='from_logits'] input").check()
    fresh.wait_drawn(before + 1)
    fresh.page.wait_for_selector("#curve-overlay input[value='torch.binary_cross_entropy_with_logits']")
    assert "logit" in fresh.page.locator("#curve-axis").text_content()
    fresh.assert_clean()


def playground_answer(site: SiteVisit, y_pred: str) -> tuple[dict, float]:
    """Types y_pred; returns the body the page posted and the loss it shows."""
    page = site.page
    with page.expect_request(lambda r: r.method == "POST" and "/v1/losses/" in r.url) as posted:
        page.locator("#playground-form textarea[name='y_pred']").fill(y_pred)
    page.wait_for_function("() => document.getElementById('playground-result').dataset.state === 'ok'")
    body = json.loads(posted.value.post_data)
    assert body["y_pred"] == json.loads(y_pred)
    shown = json.loads(page.locator("#playground-result").text_content())
    assert float(page.locator("#playground-loss").text_content()) == shown["loss"]
    return body, shown["loss"]


def copied(site: SiteVisit, kind: str) -> str:
    site.page.locator(f"button[data-copy='{kind}']").click()
    site.page.wait_for_function("k => document.getElementById('copy-output').dataset.kind === k", arg=kind)
    return site.page.locator("#copy-output").text_content()


def curl_request(text: str) -> tuple[str, dict]:
    words = shlex.split(text)
    assert words[:4] == ["curl", "-s", "-X", "POST"] and "-d" in words
    return words[4], json.loads(words[words.index("-d") + 1])


@pytest.mark.parametrize("name,y_pred", [("huber", "[[0.9, -1.7], [2.5, 0.1]]"),
                                         ("binary_crossentropy", "[[0.3], [0.8]]"),
                                         ("mean_squared_error", "[[0.25, 0.5], [1.5, -3.0]]")])
def test_the_playground_answers_what_the_api_answers(fresh, server, name, y_pred):  # noqa: F811
    fresh.open(name)
    body, loss = playground_answer(fresh, y_pred)
    api = httpx.post(f"{server}/v1/losses/{name}", json=body, timeout=30)
    assert api.status_code == 200 and api.json()["loss"] == loss

    url, curl_body = curl_request(copied(fresh, "curl"))
    assert url == f"{server}/v1/losses/{name}" and curl_body == body
    assert httpx.post(url, json=curl_body, timeout=30).json()["loss"] == loss

    python = subprocess.run([sys.executable, "-c", copied(fresh, "python").replace(
        "print(json.load(response))", "print(json.dumps(json.load(response)))")],
        capture_output=True, text=True, timeout=60)
    assert python.returncode == 0, python.stderr
    assert json.loads(python.stdout)["loss"] == loss

    script = copied(fresh, "javascript").replace("console.log(await response.json());", "return await response.json();")
    assert fresh.page.evaluate(f"async () => {{ {script} }}")["loss"] == loss
    fresh.assert_clean()


def test_the_playground_shows_a_problem(fresh):
    fresh.open("huber")
    fresh.page.locator("#playground-form textarea[name='y_pred']").fill("[[0.5, 0.5, 0.5]]")
    fresh.page.wait_for_function("() => document.getElementById('playground-result').dataset.state === 'problem'")
    problem = fresh.page.locator("#playground-problem")
    assert problem.is_visible() and "y_pred" in problem.text_content()
    fresh.page.locator("#playground-form textarea[name='y_pred']").fill("[[0.5,")
    fresh.page.wait_for_function("() => document.getElementById('playground-problem').textContent.includes('JSON')")
    # the browser logs the 422 it was asked to fetch; that one is expected
    assert len(fresh.console_errors) == 1 and "422" in fresh.console_errors[0], fresh.console_errors
    fresh.console_errors.clear()
    fresh.assert_clean()


def screenshot(site: SiteVisit, name: str) -> Path:
    path = artifacts_dir() / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    site.page.screenshot(path=str(path), full_page=True)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000, (path, len(data))
    return path


def test_screenshots_of_three_pages(fresh):
    fresh.page.goto(f"{fresh.origin}/catalogue")
    fresh.page.locator("section.family").first.wait_for()
    shots = [screenshot(fresh, "catalogue-index")]
    fresh.open("huber")
    overlay(fresh, "mean_squared_error", "mean_absolute_error")
    shots.append(screenshot(fresh, "huber-with-overlays"))
    fresh.open("binary_crossentropy")
    shots.append(screenshot(fresh, "binary_crossentropy"))
    assert all(p.is_file() for p in shots)
    fresh.assert_clean()
