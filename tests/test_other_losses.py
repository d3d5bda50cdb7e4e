"""The "Other losses" no peer computes here (fbeta, expectile, the penalties, pseudo-Huber's
derivatives), checked against values derived by hand from their formulas; their domains as 422s;
zero_one's missing gradient through the loss endpoint, the exercises and /v1/grade; the catalogue."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.engine import all_losses, compute, get_loss
from service.engine.sampling import rng_for

from .conftest import assert_problem

pytestmark = pytest.mark.anyio
ALL = ("loss", "per_sample", "gradient", "hessian")


# --------------------------------------------------------------------------- fbeta


def seed_fbeta(y, p, beta, eps):
    """The seed article's custom_fbeta_loss, line by line (summed over the whole batch)."""
    tp = np.sum(y * p)
    fp = np.sum((1 - y) * p)
    fn = np.sum(y * (1 - p))
    precision = tp / (tp + fp + eps)
    recall = tp / (tp + fn + eps)
    return 1 - (1 + beta**2) * precision * recall / (beta**2 * precision + recall + eps)


def test_fbeta_by_hand_without_epsilon():
    # y = [1, 1], p = [1, 0]: TP = 1, FP = 0, FN = 1, so P = 1, R = 1/2 and F_2 = 5 (1/2) / (4 + 1/2) = 5/9
    r = compute("fbeta", [1.0, 1.0], [1.0, 0.0], params={"beta": 2.0, "epsilon": 0.0}, outputs=ALL)
    assert math.isclose(float(r.loss), 4 / 9, rel_tol=1e-15)
    # beta = 1: F = 2 TP / (sum y + sum p) = 2 / 3; dF/dp_j = 2 (y_j D - TP) / D^2 with D = 3 -> 4/9 for y_j = 1,
    # and d2F/dp_j^2 = -4 (y_j D - TP) / D^3 = -8/27
    r = compute("fbeta", [1.0, 1.0], [1.0, 0.0], params={"beta": 1.0, "epsilon": 0.0}, outputs=ALL)
    assert math.isclose(float(r.loss), 1 / 3, rel_tol=1e-15)
    np.testing.assert_allclose(r.gradient, [-4 / 9, -4 / 9], rtol=1e-15)
    np.testing.assert_allclose(r.hessian, [8 / 27, 8 / 27], rtol=1e-15)


def test_fbeta_is_the_seed_formula_and_one_without_true_positives():
    rng = rng_for(7)
    y, p = rng.integers(0, 2, (5, 4)).astype(float), rng.uniform(0.05, 0.95, (5, 4))
    for beta, eps in ((1.0, 1e-7), (0.5, 1e-3), (3.0, 0.0)):
        r = compute("fbeta", y, p, params={"beta": beta, "epsilon": eps})
        assert r.per_sample.shape == ()
        assert math.isclose(float(r.loss), seed_fbeta(y, p, beta, eps), rel_tol=1e-14)
    rows = compute("fbeta", y, p, params={"axis": -1}, reduction="none")
    np.testing.assert_allclose(rows.per_sample, [seed_fbeta(y[i], p[i], 1.0, 1e-7) for i in range(5)], rtol=1e-14)
    assert float(compute("fbeta", [[0.0, 0.0]], [[0.3, 0.9]]).loss) == 1.0  # TP = 0: F = 0


def test_fbeta_refuses_probabilities_outside_the_unit_interval_and_0_over_0():
    from .helpers import assert_rejected

    assert_rejected("fbeta", {"y_true": [[1.0, 0.0]], "y_pred": [[1.2, 0.1]]}, "y_pred")
    assert_rejected("fbeta", {"y_true": [[2.0, 0.0]], "y_pred": [[0.2, 0.1]]}, "y_true")
    # epsilon = 0 and no positive label nor prediction: 0/0 is a 422, never NaN
    assert_rejected("fbeta", {"y_true": [[0.0, 0.0]], "y_pred": [[0.0, 0.0]], "params": {"epsilon": 0.0}}, "result")


# --------------------------------------------------------------------------- expectile, pseudo-Huber


def test_expectile_by_hand():
    # e = y_pred - y_true = [0.5, -1]: weight 1 - tau = 0.1 above the target, tau = 0.9 below it
    r = compute("expectile", [[1.0, 2.0]], [[1.5, 1.0]], params={"expectile": 0.9}, outputs=ALL)
    assert math.isclose(float(r.loss), (0.1 * 0.25 + 0.9 * 1.0) / 2, rel_tol=1e-15)
    np.testing.assert_allclose(r.gradient, [[2 * 0.1 * 0.5 / 2, 2 * 0.9 * -1.0 / 2]], rtol=1e-15)
    np.testing.assert_allclose(r.hessian, [[0.1, 0.9]], rtol=1e-15)


def test_expectile_one_half_is_half_the_mse():
    rng = rng_for(3)
    y, x = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    half = compute("expectile", y, x, outputs=("loss", "gradient"))
    mse = compute("mse", y, x, outputs=("loss", "gradient"))
    np.testing.assert_allclose(half.loss, mse.loss / 2, rtol=1e-14)
    np.testing.assert_allclose(half.gradient, mse.gradient / 2, rtol=1e-14)


def test_pseudo_huber_by_hand_and_xgboosts_derivatives():
    # e = ±1, delta = 1: sqrt(2) - 1 each; gradient e / sqrt(2) / 2, Hessian 2^(-3/2) / 2
    r = compute("pseudo_huber", [[0.0, 0.0]], [[1.0, -1.0]], outputs=ALL)
    assert math.isclose(float(r.loss), math.sqrt(2) - 1, rel_tol=1e-15)
    np.testing.assert_allclose(r.gradient, [[0.5 / math.sqrt(2), -0.5 / math.sqrt(2)]], rtol=1e-15)
    np.testing.assert_allclose(r.hessian, [[2**-1.5 / 2] * 2], rtol=1e-15)
    # on a column with reduction sum, gradient and Hessian are XGBoost's reg:pseudohubererror g and h
    rng = rng_for(11)
    y, x, delta = rng.normal(0, 2, (6, 1)), rng.normal(0, 2, (6, 1)), 1.7
    r = compute("pseudo_huber", y, x, params={"delta": delta}, reduction="sum", outputs=ALL)
    z = x - y
    np.testing.assert_allclose(r.gradient, z / np.sqrt(1 + z**2 / delta**2), rtol=1e-14)
    np.testing.assert_allclose(r.hessian, delta**2 / ((delta**2 + z**2) * np.sqrt(1 + z**2 / delta**2)), rtol=1e-14)
    np.testing.assert_allclose(r.per_sample, delta**2 * (np.sqrt(1 + (z[:, 0] / delta) ** 2) - 1), rtol=1e-12)


def test_pseudo_huber_keeps_its_digits_for_tiny_errors():
    # delta^2 (sqrt(1 + u^2) - 1) computed as written is 0 for e = 1e-9; the value is e^2 / 2 to first order
    r = compute("pseudo_huber", [[0.0]], [[1e-9]])
    assert math.isclose(float(r.loss), 0.5e-18, rel_tol=1e-12)


# --------------------------------------------------------------------------- penalties


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"])
def test_penalties_are_one_scalar_under_every_reduction(reduction):
    x = [[1.0, -2.0], [0.5, 0.0]]
    l1 = compute("l1_penalty", None, x, params={"factor": 0.1}, reduction=reduction, outputs=ALL)
    assert l1.per_sample.shape == () and math.isclose(float(l1.loss), 0.1 * 3.5, rel_tol=1e-15)
    np.testing.assert_array_equal(l1.gradient, [[0.1, -0.1], [0.1, 0.0]])  # sign(0) = 0
    np.testing.assert_array_equal(l1.hessian, np.zeros((2, 2)))
    l2 = compute("l2_penalty", [9.0], x, params={"factor": 0.1}, reduction=reduction, outputs=ALL)  # y_true ignored
    assert math.isclose(float(l2.loss), 0.1 * 5.25, rel_tol=1e-15)
    np.testing.assert_allclose(l2.gradient, 0.2 * np.asarray(x), rtol=1e-15)
    np.testing.assert_allclose(l2.hessian, np.full((2, 2), 0.2), rtol=1e-15)
    weighted = compute("l2_penalty", None, x, params={"factor": 0.1}, sample_weight=3.0, reduction=reduction)
    # Keras's reduce_values returns a scalar as it is: even mean_with_sample_weight does not divide by the weight
    assert math.isclose(float(weighted.loss), 0.1 * 5.25 * 3.0, rel_tol=1e-15)


async def test_penalties_take_no_y_true_and_refuse_a_negative_factor(client):
    response = await client.post("/v1/losses/l1_penalty", json={"y_pred": [1.0, -3.0]})
    assert response.status_code == 200 and math.isclose(response.json()["loss"], 0.04, rel_tol=1e-15)
    assert_problem(await client.post("/v1/losses/l2_penalty", json={"y_pred": [1.0], "params": {"factor": -0.1}}),
                   422, "params.factor")


# --------------------------------------------------------------------------- domains


@pytest.mark.parametrize("loss,param,value", [
    ("quantile", "quantile", 0.0), ("quantile", "quantile", 1.0), ("quantile", "quantile", 1.5),
    ("expectile", "expectile", 0.0), ("expectile", "expectile", 1.0),
    ("tweedie_deviance", "power", 0.5), ("tweedie_deviance", "power", 0.999)])
async def test_parameters_outside_their_domain_are_422s(client, loss, param, value):
    body = {"y_true": [[1.0]], "y_pred": [[2.0]], "params": {param: value}}
    problem = assert_problem(await client.post(f"/v1/losses/{loss}", json=body), 422, f"params.{param}")
    assert problem["type"] == "/problems/invalid-parameter"


async def test_tweedie_powers_at_the_edges_of_the_gap_are_served(client):
    for power in (0.0, 1.0, -0.25):
        response = await client.post("/v1/losses/tweedie_deviance",
                                     json={"y_true": [[1.0]], "y_pred": [[2.0]], "params": {"power": power}})
        assert response.status_code == 200, response.text
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    power = schema["TweedieDevianceParams"]
    assert power["properties"]["power"]["not"] == {"type": "number", "exclusiveMinimum": 0.0, "exclusiveMaximum": 1.0}


@pytest.mark.parametrize("power,y_true,y_pred,field", [
    (0.0, [[-3.0]], [[-2.0]], None),  # the normal deviance takes any reals
    (-1.0, [[-3.0]], [[-2.0]], "y_pred[0][0]"),
    (1.5, [[-1.0]], [[2.0]], "y_true[0][0]"),
    (2.0, [[0.0]], [[2.0]], "y_true[0][0]"),
])
async def test_tweedie_domains_follow_scikit_learn(client, power, y_true, y_pred, field):
    response = await client.post("/v1/losses/tweedie_deviance",
                                 json={"y_true": y_true, "y_pred": y_pred, "params": {"power": power}})
    if field is None:
        assert response.status_code == 200 and response.json()["loss"] == 1.0  # (y - mu)^2
    else:
        assert "power" in assert_problem(response, 422, field)["detail"]


# --------------------------------------------------------------------------- zero_one: no gradient


async def test_zero_one_answers_a_null_gradient_and_refuses_a_hessian(client):
    response = await client.post("/v1/losses/zero_one", json={"y_true": [[1, 0], [0, 1]], "y_pred": [[1, 0], [1, 1]]})
    body = response.json()
    assert response.status_code == 200 and body["gradient"] is None and body["per_sample"] == [0.0, 1.0]
    assert "not differentiable" in body["meta"]["gradient"]
    refused = await client.post("/v1/losses/zero_one", json={"y_true": [1], "y_pred": [1], "outputs": ["hessian"]})
    assert assert_problem(refused, 422, "outputs")["type"] == "/problems/unsupported-output"
    assert_problem(await client.post("/v1/losses/zero_one", json={"y_true": [2, 0], "y_pred": [0.7, 0.1],
                                                                  "params": {"threshold": 0.5}}), 422, "y_true[0]")
    assert_problem(await client.post("/v1/losses/zero_one", json={"y_true": [[[1]]], "y_pred": [[[1]]]}), 422, "y_pred")


async def test_zero_one_exercises_draw_labels_or_scores(client):
    labels = (await client.post("/v1/exercises", json={"loss": "zero_one", "seed": 5})).json()
    assert set(labels["y_pred"]) <= {0, 1} and len(labels["y_true"]) == 6
    scores = (await client.post("/v1/exercises", json={"loss": "zero_one", "seed": 5, "shape": [8, 2],
                                                       "params": {"threshold": 0.0}})).json()
    assert any(v not in (0, 1) for row in scores["y_pred"] for v in row)


async def test_grading_zero_one_grades_the_loss_and_refuses_a_gradient(client):
    exercise = {"seed": 9, "shape": [10]}
    ex = (await client.post("/v1/exercises", json={"loss": "zero_one", **exercise})).json()
    wrong = np.mean(np.asarray(ex["y_true"]) != np.asarray(ex["y_pred"]))
    graded = await client.post("/v1/grade", json={"loss": "zero_one", "exercise": exercise,
                                                  "submission": {"loss": float(wrong)}})
    assert graded.status_code == 200 and graded.json()["checks"][0]["passed"], graded.text
    for extra in ({"submission": {"loss": float(wrong), "gradient": [0.0] * 10}},
                  {"submission": {"loss": float(wrong)}, "outputs": ["loss", "gradient"]}):
        refused = await client.post("/v1/grade", json={"loss": "zero_one", "exercise": exercise, **extra})
        problem = assert_problem(refused, 422)
        assert problem["type"] == "/problems/unsupported-output" and "not differentiable" in problem["detail"]


# --------------------------------------------------------------------------- catalogue


async def test_the_other_family_in_the_catalogue(client):
    others = [loss for loss in all_losses() if loss.family == "other"]
    names = {loss.name for loss in others}
    assert {"quantile", "zero_one", "fbeta", "l1_penalty", "l2_penalty", "pseudo_huber", "tweedie_deviance",
            "poisson_deviance", "gamma_deviance", "brier", "expectile"} <= names
    for loss in others:
        entry = (await client.get(f"/v1/losses/{loss.name}")).json()
        assert entry["default_reduction"] == "sum_over_batch_size" and "mean_with_sample_weight" in entry["reductions"]
        assert entry["examples"] and entry["formula"] and entry["notes"]
        # a paper or a peer with its documentation page
        assert "paper" in entry["references"] or any(k.endswith("_docs") for k in entry["references"]), loss.name
    for alias in ("pinball", "pinball_loss"):
        assert get_loss(alias).name == "quantile"
    zero_one = (await client.get("/v1/losses/zero_one")).json()
    assert zero_one["differentiable"] is False and zero_one["hessian"] is False
