"""torch.ctc_loss beyond the reference file: its lengths as parameters, PyTorch's refusals as 422s,
the per-sequence mean, and exercises that draw the lengths with the data.

The numbers themselves are checked against PyTorch in tests/test_pytorch_conformance.py."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import compute
from service.engine.reduction import PYTORCH

from .conftest import assert_problem

pytestmark = pytest.mark.anyio

URL = "/v1/losses/torch.ctc_loss"
T, N, C = 6, 2, 4


def log_probs(seed: int = 0, shape=(T, N, C)) -> list:
    x = np.random.default_rng(seed).normal(0.0, 1.0, shape)
    return (x - np.log(np.exp(x).sum(-1, keepdims=True))).tolist()


def body(**changes) -> dict:
    out = {"y_true": [[1, 2, 2], [3, 1, 0]], "y_pred": log_probs(),
           "params": {"input_lengths": [6, 5], "target_lengths": [3, 2]}}
    out.update(changes)
    return out


@pytest.mark.parametrize("missing", ["input_lengths", "target_lengths"])
async def test_the_lengths_are_required(client, missing):
    params = {"input_lengths": [6, 5], "target_lengths": [3, 2]}
    del params[missing]
    problem = assert_problem(await client.post(URL, json=body(params=params)), 422, f"params.{missing}")
    assert "required" in problem["detail"] and "N = 2" in problem["detail"]


async def test_lengths_of_the_wrong_shape_name_both_shapes(client):
    problem = assert_problem(await client.post(URL, json=body(params={"input_lengths": [6, 5, 4],
                                                                      "target_lengths": [3, 2]})),
                             422, "params.input_lengths")
    assert "[3]" in problem["detail"] and str([T, N, C]) in problem["detail"]


@pytest.mark.parametrize(("params", "field"), [
    ({"input_lengths": [7, 5], "target_lengths": [3, 2]}, "params.input_lengths[0]"),  # above T
    ({"input_lengths": [6, 5], "target_lengths": [3, 4]}, "params.target_lengths[1]"),  # above the padded width
    ({"input_lengths": [6, -1], "target_lengths": [3, 2]}, "params.input_lengths[1]"),
    ({"input_lengths": [6, 5.5], "target_lengths": [3, 2]}, "params.input_lengths[1]"),
    ({"input_lengths": [6, 5], "target_lengths": [3, 2], "blank": 4}, "params.blank"),  # C = 4 classes
])
async def test_what_pytorch_refuses_is_a_422_naming_the_parameter(client, params, field):
    assert_problem(await client.post(URL, json=body(params=params)), 422, field)


async def test_a_target_index_out_of_range_is_refused_but_padding_is_ignored(client):
    assert_problem(await client.post(URL, json=body(y_true=[[1, 9, 2], [3, 1, 0]])), 422, "y_true[0][1]")
    padded = await client.post(URL, json=body(y_true=[[1, 2, 2], [3, 1, 99]]))  # [1][2] is past target_lengths[1]
    plain = await client.post(URL, json=body())
    assert padded.status_code == 200 and padded.json() == plain.json()


async def test_a_target_equal_to_the_blank_is_refused(client):
    problem = assert_problem(await client.post(URL, json=body(y_true=[[1, 0, 2], [3, 1, 0]])), 422, "y_true[0][1]")
    assert "blank" in problem["detail"]


async def test_concatenated_targets_equal_the_padded_ones(client):
    padded = await client.post(URL, json=body())
    concatenated = await client.post(URL, json=body(y_true=[1, 2, 2, 3, 1]))
    assert concatenated.status_code == 200 and concatenated.json() == padded.json()
    assert_problem(await client.post(URL, json=body(y_true=[1, 2, 2, 3])), 422, "y_true")


async def test_an_impossible_target_is_a_422_unless_zero_infinity(client):
    # [2, 2, 1] needs 4 frames (a blank between the repeated 2s); sequence 1 has 3
    params = {"input_lengths": [6, 3], "target_lengths": [3, 3]}
    problem = assert_problem(await client.post(URL, json=body(y_true=[[1, 2, 3], [2, 2, 1]], params=params)), 422,
                             "params.input_lengths")
    assert problem["type"] == "/problems/non-finite-result"
    assert "PyTorch returns inf for sequence 1" in problem["detail"] and "zero_infinity" in problem["detail"]
    zeroed = await client.post(URL, json=body(y_true=[[1, 2, 3], [2, 2, 1]], params={**params, "zero_infinity": True},
                                              reduction="none", outputs=["per_sample", "gradient"]))
    out = zeroed.json()
    assert out["per_sample"][1] == 0.0 and out["per_sample"][0] > 0
    gradient = np.asarray(out["gradient"])
    assert np.all(gradient[:, 1] == 0.0) and np.any(gradient[:, 0] != 0.0)


def test_mean_divides_each_sequence_by_its_target_length_then_averages():
    x = np.asarray(log_probs(3, (T, 3, C)))
    params = {"input_lengths": [6, 6, 4], "target_lengths": [3, 0, 2]}
    labels = [[1, 2, 3], [0, 0, 0], [2, 2, 0]]
    none = compute("torch.ctc_loss", labels, x, params=params, reduction="none", outputs=("per_sample", "gradient"))
    mean = compute("torch.ctc_loss", labels, x, params=params, reduction="mean", outputs=("loss", "gradient"))
    divisors = np.array([3.0, 1.0, 2.0])  # an empty target divides by 1
    np.testing.assert_allclose(mean.loss, np.mean(none.per_sample / divisors), rtol=1e-15)
    np.testing.assert_allclose(mean.gradient, none.gradient / (3 * divisors)[None, :, None], rtol=1e-14)
    assert np.all(none.gradient[4:, 2] == 0.0)  # frames after input_lengths[2] = 4


def test_the_pytorch_reducer_takes_an_array_normaliser():
    values = np.array([3.0, 4.0, 10.0])
    reduced = PYTORCH.reduce(values, None, None, "mean", np.array([3.0, 1.0, 5.0]))
    assert float(reduced.loss) == pytest.approx((1.0 + 4.0 + 2.0) / 3)
    np.testing.assert_allclose(reduced.upstream, 1 / (3 * np.array([3.0, 1.0, 5.0])))
    assert float(PYTORCH.reduce(values, None, None, "sum", np.array([3.0, 1.0, 5.0])).loss) == 17.0


async def test_an_exercise_draws_lengths_that_fit_and_log_probabilities(client):
    response = await client.post("/v1/exercises", json={"loss": "torch.nn.CTCLoss", "shape": [12, 5, 6], "seed": 4,
                                                       "params": {"blank": 3}})
    assert response.status_code == 200, response.text
    ex = response.json()
    inputs, targets = np.asarray(ex["params"]["input_lengths"]), np.asarray(ex["params"]["target_lengths"])
    assert inputs.shape == targets.shape == (5,) and np.all(inputs <= 12) and np.all(2 * targets <= inputs)
    labels = np.asarray(ex["y_true"])
    inside = np.arange(labels.shape[1])[None, :] < targets[:, None]
    assert np.all((labels[inside] != 3) & (labels[inside] >= 0) & (labels[inside] < 6))
    np.testing.assert_allclose(np.exp(np.asarray(ex["y_pred"])).sum(-1), 1.0, atol=1e-3)  # rounded to 4 decimals
    computed = await client.post(URL, json={"y_true": ex["y_true"], "y_pred": ex["y_pred"], "params": ex["params"]})
    assert computed.status_code == 200, computed.text
