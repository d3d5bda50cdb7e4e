"""The metric-learning and Optax "Other losses" (triplet, quadruplet, contrastive, ntxent,
poly1_cross_entropy): Keras-style requests, the layouts and domains they refuse (problem+json 422s naming
the field), and exercises drawn in their domains."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import assert_problem

pytestmark = pytest.mark.anyio

NAMES = ("triplet", "quadruplet", "contrastive", "ntxent", "poly1_cross_entropy")


async def test_the_family_is_other_with_keras_reductions(client):
    for name in NAMES:
        entry = (await client.get(f"/v1/losses/{name}")).json()
        assert entry["family"] == "other" and entry["default_reduction"] == "sum_over_batch_size", name
        assert "mean_with_sample_weight" in entry["reductions"] and entry["hessian"] is True, name
        assert entry["references"].get("paper"), name


@pytest.mark.parametrize("y_pred", [
    np.zeros((2, 2, 4)).tolist(),  # 2 embeddings stacked, not 3
    np.zeros((2, 7)).tolist(),  # 7 columns do not split into 3 equal blocks
    np.zeros(6).tolist(),  # rank 1
    np.zeros((2, 3, 2, 1)).tolist(),  # rank 4
], ids=["stacked-2", "columns-7", "rank-1", "rank-4"])
async def test_a_triplet_layout_that_is_neither_stacked_nor_concatenated_is_a_422(client, y_pred):
    body = assert_problem(await client.post("/v1/losses/triplet", json={"y_pred": y_pred}), 422, "y_pred")
    assert "(B, 3, D)" in body["detail"] and "(B, 3·D)" in body["detail"] and "tf.split" in body["detail"]


async def test_quadruplet_needs_four_blocks(client):
    assert_problem(await client.post("/v1/losses/quadruplet", json={"y_pred": np.zeros((2, 6)).tolist()}), 422,
                   "y_pred")
    ok = await client.post("/v1/losses/quadruplet", json={"y_pred": np.zeros((2, 8)).tolist()})
    assert ok.status_code == 200 and ok.json()["per_sample"] == [1.5, 1.5]  # alpha1 + alpha2 on equal points


async def test_triplet_reads_the_seeds_concatenation_and_ignores_y_true(client):
    """[a | p | n] in one row of 3·D columns, as the seed's tf.split(y_pred, 3, axis=-1) reads it."""
    a, p, n = [0.0, 1.0], [0.5, 1.0], [3.0, 1.0]  # |a-p|^2 = 0.25, |a-n|^2 = 9
    close = [0.0, 1.0, 0.0, 1.5, 0.1, 1.0]  # |a-p|^2 = 0.25, |a-n|^2 = 0.01: 0.25 - 0.01 + 0.2 = 0.44
    body = (await client.post("/v1/losses/triplet", json={"y_true": [7, 7], "y_pred": [a + p + n, close],
                                                          "reduction": "none"})).json()
    assert body["per_sample"] == pytest.approx([0.0, 0.44])
    assert body["gradient"][0] == [0.0] * 6
    omitted = (await client.post("/v1/losses/triplet", json={"y_pred": [a + p + n, close], "reduction": "none"})).json()
    assert omitted["per_sample"] == body["per_sample"]


@pytest.mark.parametrize("y_true,y_pred,field", [
    ([1, 2, 0], [0.5, 0.5, 0.5], "y_true[1]"),
    ([1, 0.5, 0], [0.5, 0.5, 0.5], "y_true[1]"),
    ([1, 0, 0], [0.5, -0.1, 0.5], "y_pred[1]"),
], ids=["label-2", "label-0.5", "negative-distance"])
async def test_contrastive_refuses_labels_outside_0_1_and_negative_distances(client, y_true, y_pred, field):
    assert_problem(await client.post("/v1/losses/contrastive", json={"y_true": y_true, "y_pred": y_pred}), 422,
                   field)


async def test_contrastive_label_1_is_the_similar_pair(client):
    body = (await client.post("/v1/losses/contrastive", json={"y_true": [1, 0], "y_pred": [0.25, 0.25],
                                                              "reduction": "none"})).json()
    assert body["per_sample"] == [0.0625, 0.5625]  # d^2 for the similar pair, (m - d)^2 for the other


@pytest.mark.parametrize("body,field", [
    ({"y_true": [0, 1, 2], "y_pred": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}, "y_true"),  # no positive pair
    ({"y_true": [0, 0.5, 0], "y_pred": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]}, "y_true[1]"),
    ({"y_true": [0, 0], "y_pred": [[[1.0, 0.0]], [[0.0, 1.0]]]}, "y_pred"),
    ({"y_true": [0, 0, 1], "y_pred": [[1.0, 0.0], [0.0, 1.0]]}, "y_true"),
], ids=["no-pair", "non-integral", "rank-3", "label-count"])
async def test_ntxent_refusals(client, body, field):
    assert_problem(await client.post("/v1/losses/ntxent", json=body), 422, field)


async def test_ntxent_is_one_number_that_sample_weight_scales(client):
    body = {"y_true": [0, 0, 1, 1], "y_pred": [[0.1, 0.9], [0.3, 0.8], [0.9, -0.2], [0.7, 0.1]]}
    plain = (await client.post("/v1/losses/ntxent", json=body)).json()
    weighted = (await client.post("/v1/losses/ntxent", json={**body, "sample_weight": 0.5})).json()
    assert plain["per_sample"] == plain["loss"] > 0
    assert weighted["loss"] == pytest.approx(0.5 * plain["loss"], rel=1e-15)
    assert np.allclose(weighted["gradient"], 0.5 * np.asarray(plain["gradient"]), rtol=1e-14)


async def test_poly1_refuses_labels_outside_0_1(client):
    assert_problem(await client.post("/v1/losses/poly1_cross_entropy",
                                     json={"y_true": [[1.5, 0.0]], "y_pred": [[1.0, 2.0]]}), 422, "y_true[0][0]")


async def test_poly1_with_epsilon_0_is_the_cross_entropy_from_logits(client):
    request = {"y_true": [[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], "y_pred": [[1.0, 2.0, -1.0], [0.3, -0.4, 2.2]]}
    poly = (await client.post("/v1/losses/poly1_cross_entropy", json={**request, "params": {"epsilon": 0.0},
                                                                      "outputs": ["loss", "gradient", "hessian"]})).json()
    cce = (await client.post("/v1/losses/categorical_crossentropy", json={**request, "params": {"from_logits": True},
                                                                          "outputs": ["loss", "gradient", "hessian"]})).json()
    for key in ("loss", "gradient", "hessian"):
        np.testing.assert_allclose(poly[key], cce[key], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("loss,shape", [("triplet", [4, 3, 2]), ("quadruplet", [3, 4, 2]), ("contrastive", [8]),
                                        ("ntxent", [7, 3]), ("poly1_cross_entropy", [4, 3])])
async def test_exercises_draw_inputs_in_the_domain_and_the_service_answers_them(client, loss, shape):
    for seed in range(5):
        drawn = await client.post("/v1/exercises", json={"loss": loss, "shape": shape, "seed": seed})
        assert drawn.status_code == 200, drawn.text
        body = drawn.json()
        assert np.shape(body["y_pred"]) == tuple(shape)
        if loss == "contrastive":
            assert set(body["y_true"]) <= {0, 1} and min(body["y_pred"]) >= 0
        if loss == "ntxent":
            assert len(set(body["y_true"])) < len(body["y_true"])  # at least one positive pair
        request = {"y_pred": body["y_pred"], "outputs": ["loss", "gradient", "hessian"]}
        if body.get("y_true") is not None:
            request["y_true"] = body["y_true"]
        answered = await client.post(f"/v1/losses/{loss}", json=request)
        assert answered.status_code == 200, answered.text
