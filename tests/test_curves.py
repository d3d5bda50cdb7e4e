"""GET /v1/losses/{name}/curve and service.engine.curves, for every loss in the registry.

The curve's numbers are held to two independent things: POST /v1/losses/{name} on the inputs rebuilt
from the returned x (the values and the chain rule), and central finite differences of the loss along
x at x +- h (the derivatives), skipping only the kinks each loss's design declares."""

from __future__ import annotations

import asyncio
import math
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest

from service.engine import all_losses, get_loss
from service.engine import curves
from service.engine.params import bind

from .helpers import _app, post

LOSSES = [loss.name for loss in all_losses()]
# parameters that change a design (the axis kind, the inputs built) or the Hessian's availability
def _having(param: str) -> list[str]:
    return [loss.name for loss in all_losses() if any(q.name == param for q in loss.params)]


VARIANTS = ([(name, {"from_logits": True}) for name in _having("from_logits")]
            + [(name, {"hessian": "exact"}) for name in _having("hessian")]
            + [("torch.poisson_nll_loss", {"log_input": False}), ("torch.kl_div", {"log_target": True}),
               ("zero_one", {"threshold": 0.5}), ("huber", {"delta": 0.3}), ("torch.multi_margin_loss", {"p": 2}),
               ("torch.triplet_margin_loss", {"swap": True}), ("circle", {"margin": 0.1, "gamma": 10.0}),
               ("categorical_focal_crossentropy", {"from_logits": True, "label_smoothing": 0.1})])
CASES = [(name, {}) for name in LOSSES] + VARIANTS
RTOL = 1e-12  # the same float64 computation twice (through JSON): only orjson's shortest round-trip repr between
H = 1e-5  # finite-difference step along x
FD_RTOL, FD_ATOL = 1e-5, 1e-6  # central differences: O(h^2 f''') + O(eps f / h), relative to the curve's scale


def get(path: str, params: dict | None = None) -> httpx.Response:
    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://testserver") as c:
            return await c.get(path, params=params)
    return asyncio.run(send())


def defaults(loss) -> dict:
    return bind(loss.params, {})


# --- the table ---------------------------------------------------------------------------------------

def test_every_registered_loss_has_an_axis_and_nothing_else_does():
    assert set(curves.DESIGNS) == set(LOSSES)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_axis_is_a_declared_kind_with_its_range_inside_the_domain(name):
    loss = get_loss(name)
    axis = curves.axis_of(loss, defaults(loss))
    assert axis["kind"] in curves.AXIS_KINDS
    lo, hi = axis["range"]
    assert lo < hi and axis["domain"].contains(lo) and axis["domain"].contains(hi)
    assert axis["fixed"]


# --- the route answers for every loss ------------------------------------------------------------------

@pytest.mark.parametrize("name", LOSSES)
def test_json_curve_of_every_loss(name):
    r = get(f"/v1/losses/{name}/curve", {"points": 41})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    loss = get_loss(name)
    assert body["loss"] == name
    assert set(body["axis"]) == {"kind", "name", "label", "fixed"}
    [s] = body["series"]
    x = np.array(s["x"])
    domain = curves.axis_of(loss, defaults(loss))["domain"]
    assert x.size == 41 and np.all(np.diff(x) > 0) and domain.contains(x).all()
    assert np.isfinite(s["loss_values"]).all() and len(s["loss_values"]) == 41
    for q in ("gradient", "hessian"):
        assert (s[q] is None) == (s[f"{q}_note"] is not None), (q, s[f"{q}_note"])
        if s[q] is not None:
            assert len(s[q]) == 41 and np.isfinite(s[q]).all()
    assert (s["gradient"] is None) == (not loss.differentiable)
    if not loss.hessian:
        assert s["hessian"] is None and loss.without_hessian in s["hessian_note"]


@pytest.mark.parametrize("name", LOSSES)
def test_vega_lite_spec_of_every_loss(name):
    r = get(f"/v1/losses/{name}/curve", {"points": 11, "format": "vega-lite"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    spec = r.json()
    assert spec["$schema"] == "https://vega.github.io/schema/vega-lite/v6.json"
    data = get(f"/v1/losses/{name}/curve", {"points": 11}).json()
    present = sum(q is not None for s in data["series"] for q in (s["loss_values"], s["gradient"], s["hessian"]))
    rows = spec["data"]["values"]
    assert len(rows) == present * 11
    assert {tuple(sorted(row)) for row in rows} == {("loss", "quantity", "x", "y")}
    assert {row["quantity"] for row in rows} <= {"loss", "gradient", "hessian"}
    assert spec["spec"]["encoding"]["x"]["title"] == data["axis"]["label"]


@pytest.mark.parametrize("name", LOSSES)
def test_svg_of_every_loss(name):
    r = get(f"/v1/losses/{name}/curve", {"points": 11, "format": "svg"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.content)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg"
    assert not root.findall(f".//{ns}script") and b"<script" not in r.content and b"href" not in r.content
    data = get(f"/v1/losses/{name}/curve", {"points": 11}).json()
    present = {(s["loss"], q) for s in data["series"]
               for q, v in (("loss", s["loss_values"]), ("gradient", s["gradient"]), ("hessian", s["hessian"]))
               if v is not None}
    drawn = [(p.get("data-loss"), p.get("data-quantity")) for p in root.iter(f"{ns}polyline")]
    assert sorted(drawn) == sorted(present)
    for p in root.iter(f"{ns}polyline"):
        assert len(p.get("points").split()) == 11


# --- the numbers ---------------------------------------------------------------------------------------

def _post_rebuilt(loss, p: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-x loss values and chain-rule gradients from POST /v1/losses/{name} on the inputs the design builds
    from ``x`` (one request per x where the design's samples interact)."""
    d = curves.DESIGNS[loss.name]
    chunks = [x] if d.independent else [x[i:i + 1] for i in range(x.size)]
    values, grads = [], []
    for chunk in chunks:
        inputs = d.build(chunk, p)
        params = {k: v for k, v in {**p, **inputs.params}.items() if v is not None}
        body = {"y_pred": inputs.y_pred, "params": params, "reduction": "none", "outputs": ["per_sample", "gradient"]}
        if inputs.y_true is not None:
            body["y_true"] = inputs.y_true
        r = post(f"/v1/losses/{loss.name}", body)
        assert r.status_code == 200, r.text
        out = r.json()
        n = chunk.size
        per = np.asarray(out["per_sample"], dtype=float)
        values.append(per.reshape(n, -1).sum(1) if d.independent else np.atleast_1d(per.sum()))
        if out["gradient"] is not None:
            g = np.moveaxis(np.asarray(out["gradient"]) * inputs.dydx, inputs.batch_axis, 0)
            grads.append(g.reshape(n, -1).sum(1) if d.independent else np.atleast_1d(g.sum()))
    return np.concatenate(values), (np.concatenate(grads) if grads else None)


@pytest.mark.parametrize(("name", "given"), CASES)
def test_curve_values_equal_the_service_at_the_rebuilt_inputs(name, given):
    loss = get_loss(name)
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in given.items()}
    r = get(f"/v1/losses/{name}/curve", {"points": 21, **query})
    assert r.status_code == 200, r.text
    [s] = r.json()["series"]
    x = np.array(s["x"])
    values, grads = _post_rebuilt(loss, bind(loss.params, given), x)
    np.testing.assert_allclose(s["loss_values"], values, rtol=RTOL, atol=0)
    if s["gradient"] is None:
        assert grads is None
    else:
        np.testing.assert_allclose(s["gradient"], grads, rtol=RTOL, atol=1e-300)


def _away_from_kinks(loss, p: dict, x: np.ndarray) -> np.ndarray:
    kinks = np.array(curves.DESIGNS[loss.name].kinks(p), dtype=float)
    if kinks.size == 0:
        return np.ones(x.size, bool)
    return np.min(np.abs(x[:, None] - kinks[None, :]), axis=1) > 2 * H


@pytest.mark.parametrize(("name", "given"), CASES)
def test_derivatives_agree_with_finite_differences(name, given):
    loss = get_loss(name)
    p = bind(loss.params, given)
    x = curves.grid(loss, p, 31)
    x = x[_away_from_kinks(loss, p, x)]
    at = curves.evaluate(loss, p, x)
    plus, minus = curves.evaluate(loss, p, x + H), curves.evaluate(loss, p, x - H)
    if at["gradient"] is None:
        assert not loss.differentiable
        return
    fd = (plus["loss_values"] - minus["loss_values"]) / (2 * H)
    scale = np.max(np.abs(at["loss_values"])) + 1.0
    np.testing.assert_allclose(at["gradient"], fd, rtol=FD_RTOL, atol=FD_ATOL * scale)
    if at["hessian"] is not None:
        fd2 = (plus["gradient"] - minus["gradient"]) / (2 * H)
        scale = np.max(np.abs(at["gradient"])) + 1.0
        np.testing.assert_allclose(at["hessian"], fd2, rtol=FD_RTOL, atol=FD_ATOL * scale)


def test_the_finite_difference_check_fails_across_a_kink():
    # mae's gradient jumps at 0: within h of it the central difference (0.5 at x = h/2) is not the gradient
    # (1), which is why each design declares its kinks and only those points are skipped
    loss = get_loss("mean_absolute_error")
    x = np.array([H / 2])
    at, plus, minus = (curves.evaluate(loss, {}, v) for v in (x, x + H, x - H))
    fd = (plus["loss_values"] - minus["loss_values"]) / (2 * H)
    assert not np.allclose(at["gradient"], fd, rtol=FD_RTOL, atol=FD_ATOL)
    assert not _away_from_kinks(loss, {}, x).any()


# --- parameters ------------------------------------------------------------------------------------------

def test_huber_delta_changes_the_curve():
    small = get("/v1/losses/huber/curve", {"delta": "0.5"}).json()
    large = get("/v1/losses/huber/curve", {"delta": "2"}).json()
    assert small["params"] == {"delta": 0.5} and large["params"] == {"delta": 2.0}
    assert small["series"][0]["x"] == large["series"][0]["x"]
    assert not np.allclose(small["series"][0]["loss_values"], large["series"][0]["loss_values"])


def test_from_logits_switches_the_axis_kind():
    probs = get("/v1/losses/binary_crossentropy/curve").json()
    logits = get("/v1/losses/binary_crossentropy/curve", {"from_logits": "true"}).json()
    assert probs["axis"]["kind"] == "probability" and logits["axis"]["kind"] == "logit"
    assert min(logits["series"][0]["x"]) < 0  # a logit range, not a probability one


def test_overlay_has_one_series_per_loss_main_first_at_defaults():
    r = get("/v1/losses/mse/curve", {"with": "mae,Huber, log_cosh", "points": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["loss"] for s in body["series"]] == ["mean_squared_error", "mean_absolute_error", "huber", "log_cosh"]
    assert body["series"][2]["params"] == {"delta": 1.0}


def test_alias_is_answered_with_the_canonical_name():
    body = get("/v1/losses/torch.nn.HuberLoss/curve", {"points": 3}).json()
    assert body["loss"] == "torch.huber_loss"


def test_x_range_override():
    body = get("/v1/losses/mse/curve", {"x_min": "-1", "x_max": "2", "points": 4}).json()
    assert body["series"][0]["x"] == [-1.0, 0.0, 1.0, 2.0]


# --- refusals --------------------------------------------------------------------------------------------

def _problem(r: httpx.Response, status: int, loc: list) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert any(e["loc"] == loc for e in body["errors"]), body
    return body


@pytest.mark.parametrize("points", ["1", "5000", "ten"])
def test_points_out_of_range(points):
    body = _problem(get("/v1/losses/mse/curve", {"points": points}), 422, ["query", "points"])
    assert "query.points" in body["detail"]


def test_unknown_query_key_lists_the_accepted_ones():
    body = _problem(get("/v1/losses/huber/curve", {"deltaa": "1"}), 422, ["query", "deltaa"])
    assert "delta" in body["detail"] and "points" in body["detail"]


def test_bad_param_value_is_refused_with_post_s_message():
    body = _problem(get("/v1/losses/huber/curve", {"delta": "-1"}), 422, ["query", "delta"])
    posted = post("/v1/losses/huber", {"y_true": [[0.0]], "y_pred": [[1.0]], "params": {"delta": -1}}).json()
    assert posted["detail"] in body["detail"] and "query.delta" in body["detail"]


@pytest.mark.parametrize("key", ["weight", "axis"])
def test_array_params_and_axis_are_not_curve_params(key):
    name = "torch.binary_cross_entropy" if key == "weight" else "binary_crossentropy"
    _problem(get(f"/v1/losses/{name}/curve", {key: "1"}), 422, ["query", key])


def test_overlay_on_another_axis_kind():
    body = _problem(get("/v1/losses/huber/curve", {"with": "binary_crossentropy"}), 422, ["query", "with"])
    assert "error" in body["detail"] and "probability" in body["detail"]
    assert body["type"] == "/problems/axis-mismatch"


@pytest.mark.parametrize("query", [{"x_min": "1", "x_max": "1"}, {"x_min": "2", "x_max": "1"}, {"x_max": "-5"}])
def test_x_min_not_below_x_max(query):
    _problem(get("/v1/losses/mse/curve", query), 422, ["query", "x_min" if "x_min" in query else "x_max"])


def test_x_outside_the_domain():
    body = _problem(get("/v1/losses/binary_crossentropy/curve", {"x_max": "1.5"}), 422, ["query", "x_max"])
    assert "(0, 1)" in body["detail"]


def test_unknown_names_are_404_with_suggestions():
    body = _problem(get("/v1/losses/hubr/curve"), 404, ["path", "name"])
    assert "huber" in body["suggestions"]
    body = _problem(get("/v1/losses/mse/curve", {"with": "hubr"}), 404, ["query", "with"])
    assert "huber" in body["suggestions"]


def test_ticks_are_round_and_cover_the_range():
    from service.curves_plot import nice_ticks
    ticks = nice_ticks(-3.0, 3.0)
    assert ticks[0] >= -3.0 and ticks[-1] <= 3.0 and 0.0 in ticks
    assert all(math.isclose(b - a, ticks[1] - ticks[0]) for a, b in zip(ticks, ticks[1:]))


# --- the curve link of grader feedback (POST /v1/grade's meta.curve) ----------------------------------------

GRADED = [("huber", {"delta": 2.0}), ("binary_crossentropy", {"from_logits": True, "label_smoothing": 0.1}),
          ("mean_squared_error", {}), ("torch.cross_entropy", {"label_smoothing": 0.2, "weight": [1.0, 2.0, 3.0]})]


@pytest.mark.parametrize(("name", "params"), GRADED)
def test_grade_links_the_curve_at_the_graded_parameters(name, params):
    loss = get_loss(name)
    graded = post("/v1/grade", {"loss": name, "params": params, "exercise": {"seed": 3},
                                "submission": {"loss": 0.0}})
    assert graded.status_code == 200, graded.text
    meta = graded.json()["meta"]
    assert get(meta["catalogue"]).status_code == 200
    picture = get(meta["curve"])
    assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/svg+xml")
    ET.fromstring(picture.text)
    # the link carries the graded scalar parameters (the curve answers them back), and only the curve's ones
    data = get(meta["curve"].replace("format=svg", "format=json")).json()
    scalar = {q.name for q in curves.scalar_params(loss)}
    assert data["params"] == {k: v for k, v in bind(loss.params, params).items() if k in scalar}
    assert "weight" not in meta["curve"]


def test_curves_wait_in_the_work_budget_and_overlays_are_capped():
    from service.transport.curves import MAX_OVERLAYS, curve_plan

    one = curve_plan("huber", [], "json", 201, None, None, None)
    more = curve_plan("huber", [], "json", 2001, "mae,mse", None, None)
    assert one.work == 201 and more.work == 3 * 2001  # one y_pred element per x, per series
    same_axis = [loss.name for loss in all_losses() if loss.name != "huber"
                 and curves.axis_of(loss, defaults(loss))["kind"] == "error"]
    assert len(same_axis) > MAX_OVERLAYS
    r = get("/v1/losses/huber/curve", {"with": ",".join(same_axis[:MAX_OVERLAYS + 1])})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "with"]
    assert get("/v1/losses/huber/curve", {"with": ",".join(same_axis[:MAX_OVERLAYS])}).status_code == 200
