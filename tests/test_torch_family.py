"""The PyTorch family's rules: names, reducers, array parameters, refused inputs (problem+json 422s)."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import InvalidInput, ShapeError, UnknownLoss, compute, get_loss
from service.engine.params import ARRAY, BROADCASTS_TO_Y_PRED, Param, bind, check_arrays
from service.engine.reduction import KERAS, PYTORCH, REDUCTIONS

from .conftest import assert_problem

X = [[0.2, 0.9, 0.4], [0.6, 0.1, 0.7]]
Y = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]


# --- names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("alias", ["torch.l1_loss", "torch.nn.L1Loss", "torch.nn.functional.l1_loss", "F.l1_loss",
                                   "TORCH.NN.L1LOSS", "f.L1_Loss"])
def test_torch_aliases_resolve_to_the_canonical_name(alias):
    assert get_loss(alias).name == "torch.l1_loss"


@pytest.mark.parametrize("bare", ["L1Loss", "HuberLoss", "BCELoss", "KLDivLoss"])
def test_bare_pytorch_class_names_are_not_aliases(bare):
    try:
        name = get_loss(bare).name
    except UnknownLoss:
        return
    assert not name.startswith("torch."), (bare, name)


def test_torch_huber_and_keras_huber_are_different_losses():
    assert get_loss("torch.huber_loss").name != get_loss("huber_loss").name == "huber"


# --- reducers ------------------------------------------------------------------------------------

def test_pytorch_reducer_mean_sum_none_batchmean():
    v = np.arange(1.0, 7.0).reshape(3, 2)
    mean = PYTORCH.reduce(v, None, None, "mean")
    assert float(mean.loss) == pytest.approx(21 / 6)
    np.testing.assert_array_equal(mean.upstream, np.full((3, 2), 1 / 6))
    assert float(PYTORCH.reduce(v, None, None, "sum").loss) == 21
    assert float(PYTORCH.reduce(v, None, None, "batchmean").loss) == pytest.approx(7.0)
    none = PYTORCH.reduce(v, None, None, "none")
    np.testing.assert_array_equal(none.loss, v)
    np.testing.assert_array_equal(none.upstream, np.ones((3, 2)))


def test_pytorch_reducer_mean_uses_the_evaluations_normaliser():
    v = np.array([1.0, 2.0, 3.0])
    r = PYTORCH.reduce(v, None, None, "mean", normaliser=1.5)
    assert float(r.loss) == pytest.approx(4.0)
    np.testing.assert_allclose(r.upstream, np.full(3, 1 / 1.5))


def test_the_reducers_defaults_and_names():
    assert (KERAS.default, PYTORCH.default) == ("sum_over_batch_size", "mean")
    assert KERAS.names == REDUCTIONS and PYTORCH.names == ("mean", "sum", "none")
    assert get_loss("torch.kl_div").reductions == ("mean", "sum", "none", "batchmean")
    assert get_loss("torch.mse_loss").reductions == ("mean", "sum", "none")
    assert get_loss("mse").default_reduction == "sum_over_batch_size"


def test_a_torch_loss_defaults_to_mean_and_a_keras_loss_to_sum_over_batch_size():
    t = compute("torch.mse_loss", [[0.0, 0.0]], [[1.0, 3.0]], outputs=("loss",))
    assert float(t.loss) == 5.0 and t.meta["reduction"] == "mean"
    k = compute("mse", [[0.0, 0.0], [0.0, 0.0]], [[1.0, 3.0], [1.0, 1.0]], outputs=("loss",))
    assert float(k.loss) == 3.0 and k.meta["reduction"] == "sum_over_batch_size"


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean_with_sample_weight", "batchmean"])
def test_reductions_outside_a_torch_loss_are_refused(reduction):
    with pytest.raises(InvalidInput) as err:
        compute("torch.mse_loss", Y, X, reduction=reduction)
    assert reduction in err.value.detail and "mean, sum, none" in err.value.detail


def test_batchmean_is_refused_for_a_keras_loss():
    with pytest.raises(InvalidInput):
        compute("kl_divergence", Y, X, reduction="batchmean")


def test_kl_div_batchmean_divides_by_the_first_axis():
    y, x = np.full((2, 3), 1 / 3), np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]))
    total = float(compute("torch.kl_div", y, x, reduction="sum", outputs=("loss",)).loss)
    assert float(compute("torch.kl_div", y, x, reduction="batchmean", outputs=("loss",)).loss) == pytest.approx(total / 2)


@pytest.mark.anyio
async def test_sample_weight_with_a_torch_loss_is_a_422(client):
    r = await client.post("/v1/losses/torch.mse_loss", json={"y_true": Y, "y_pred": X, "sample_weight": [1.0, 2.0]})
    body = assert_problem(r, 422, "sample_weight")
    assert "params.weight" in body["detail"] and body["type"] == "/problems/not-in-family"


@pytest.mark.anyio
async def test_a_keras_reduction_name_with_a_torch_loss_is_a_422(client):
    r = await client.post("/v1/losses/torch.l1_loss", json={"y_true": Y, "y_pred": X, "reduction": "sum_over_batch_size"})
    assert assert_problem(r, 422, "reduction")["type"] == "/problems/not-in-family"


@pytest.mark.anyio
async def test_the_openapi_document_gives_each_named_loss_its_reductions(client):
    variants = (await client.get("/openapi.json")).json()["components"]["schemas"]["LossAndItsParams"]["oneOf"]
    by_name = {v["title"]: v["properties"] for v in variants}
    assert by_name["torch.kl_div"]["reduction"]["anyOf"][0]["enum"] == ["mean", "sum", "none", "batchmean"]
    assert by_name["torch.mse_loss"]["sample_weight"]["enum"] == [None, False]
    assert "sample_weight" not in by_name["mean_squared_error"]
    assert "sum_over_batch_size" in by_name["mean_squared_error"]["reduction"]["anyOf"][0]["enum"]


@pytest.mark.anyio
async def test_the_catalogue_lists_each_losss_reductions_and_pytorch_docs(client):
    entry = (await client.get("/v1/losses/torch.kl_div")).json()
    assert entry["reductions"] == ["mean", "sum", "none", "batchmean"] and entry["default_reduction"] == "mean"
    assert entry["family"] == "pytorch"
    assert entry["references"]["pytorch"] == "torch.nn.KLDivLoss"
    assert entry["references"]["pytorch_docs"].endswith("/torch.nn.KLDivLoss.html")
    keras = (await client.get("/v1/losses/mse")).json()
    assert keras["default_reduction"] == "sum_over_batch_size" and "mean_with_sample_weight" in keras["reductions"]


# --- array parameters ----------------------------------------------------------------------------

WEIGHT = Param("weight", ARRAY, None, "a weight", shape_rule=BROADCASTS_TO_Y_PRED)


def test_an_array_parameter_is_bound_as_an_array_and_cast_to_the_inputs_dtype():
    p = bind((WEIGHT,), {"weight": [[1, 2, 3]]})
    assert isinstance(p["weight"], np.ndarray) and p["weight"].shape == (1, 3)
    check_arrays((WEIGHT,), p, np.zeros((2, 3), dtype=np.float32))
    assert p["weight"].dtype == np.float32
    assert bind((WEIGHT,), {})["weight"] is None


@pytest.mark.parametrize("value", ["a", [1, "2"], [[1, 2], [3]], [True, 1.0], [1.0, float("nan")], {"a": 1}])
def test_an_array_parameter_refuses_what_is_not_an_array_of_finite_numbers(value):
    with pytest.raises(InvalidInput) as err:
        bind((WEIGHT,), {"weight": value})
    assert "params.weight" in err.value.detail


def test_an_array_parameter_of_the_wrong_shape_names_both_shapes():
    p = bind((WEIGHT,), {"weight": [1.0, 2.0]})
    with pytest.raises(ShapeError) as err:
        check_arrays((WEIGHT,), p, np.zeros((4, 3)))
    assert "[2]" in err.value.detail and "[4, 3]" in err.value.detail
    assert err.value.errors[0].loc == ("params", "weight")


@pytest.mark.anyio
@pytest.mark.parametrize("loss,params", [("torch.binary_cross_entropy", {"weight": [1.0, 2.0]}),
                                         ("torch.binary_cross_entropy_with_logits", {"pos_weight": [[1.0], [2.0], [3.0]]})])
async def test_a_weight_pytorch_would_refuse_is_a_422_naming_both_shapes(client, loss, params):
    r = await client.post(f"/v1/losses/{loss}", json={"y_true": Y, "y_pred": X, "params": params})
    body = assert_problem(r, 422, f"params.{next(iter(params))}")
    assert "[2, 3]" in body["detail"]


def test_bce_weight_rescales_each_element_and_mean_still_divides_by_the_count():
    plain = compute("torch.binary_cross_entropy", Y, X, reduction="none", outputs=("per_sample",)).per_sample
    w = np.array([0.5, 1.0, 2.0])
    weighted = compute("torch.binary_cross_entropy", Y, X, params={"weight": w.tolist()}, outputs=("loss",)).loss
    assert float(weighted) == pytest.approx(float((plain * w).sum() / 6))


# --- domains -------------------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("loss", ["torch.soft_margin_loss", "torch.hinge_embedding_loss"])
async def test_labels_other_than_plus_minus_one_are_refused(client, loss):
    r = await client.post(f"/v1/losses/{loss}", json={"y_true": [[1, 0], [-1, 1]], "y_pred": [[0.5, 1.0], [0.2, 0.3]]})
    assert_problem(r, 422, "y_true[0][1]")


@pytest.mark.anyio
@pytest.mark.parametrize("field,y_true,y_pred", [("y_pred[1][0]", Y, [[0.2, 0.9, 0.4], [1.5, 0.1, 0.7]]),
                                                 ("y_true[0][2]", [[0.0, 1.0, -0.1], [1.0, 0.0, 0.0]], X)])
async def test_bce_outside_zero_one_is_refused(client, field, y_true, y_pred):
    r = await client.post("/v1/losses/torch.binary_cross_entropy", json={"y_true": y_true, "y_pred": y_pred})
    assert_problem(r, 422, field)


@pytest.mark.anyio
async def test_a_negative_gaussian_variance_is_refused_naming_its_index(client):
    r = await client.post("/v1/losses/torch.gaussian_nll_loss",
                          json={"y_true": [0.0, 1.0], "y_pred": [[0.0, 1.0], [0.5, -0.2]]})
    body = assert_problem(r, 422, "y_pred[1][1]")
    assert "variance" in body["detail"]


def test_gaussian_nll_accepts_a_zero_variance_and_clamps_it_at_eps():
    r = compute("torch.gaussian_nll_loss", [0.5], [[0.0, 0.0]], params={"eps": 0.25}, outputs=("loss", "gradient"))
    assert float(r.loss) == pytest.approx(0.5 * (np.log(0.25) + 0.25 / 0.25))
    assert r.gradient[0, 1] == pytest.approx(0.5 * (1 / 0.25 - 0.25 / 0.25**2))


@pytest.mark.parametrize("params,y_pred", [({"log_input": False}, [[0.5, -0.1]])])
def test_poisson_negative_rates_are_refused(params, y_pred):
    with pytest.raises(InvalidInput) as err:
        compute("torch.poisson_nll_loss", [[1.0, 2.0]], y_pred, params=params)
    assert "y_pred[0][1]" in err.value.detail


def test_poisson_accepts_a_rate_of_exactly_zero():
    r = compute("torch.poisson_nll_loss", [[0.0, 2.0]], [[0.0, 1.0]], params={"log_input": False}, reduction="sum",
                outputs=("loss",))
    assert np.isfinite(float(r.loss))


def test_kl_div_refuses_negative_targets_without_log_target():
    with pytest.raises(InvalidInput) as err:
        compute("torch.kl_div", [[0.5, -0.5]], [[-1.0, -1.0]])
    assert "y_true[0][1]" in err.value.detail
    compute("torch.kl_div", [[0.5, -0.5]], [[-1.0, -1.0]], params={"log_target": True})


# --- class-axis losses ---------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("loss", ["torch.cross_entropy", "torch.nll_loss"])
async def test_every_target_ignored_under_mean_is_a_422_saying_pytorch_answers_nan(client, loss):
    body = {"y_true": [-100, -100], "y_pred": [[-0.5, -1.2], [-0.7, -0.9]]}
    refused = assert_problem(await client.post(f"/v1/losses/{loss}", json=body), 422)
    assert "NaN" in refused["detail"] and "ignore_index" in refused["detail"]
    summed = await client.post(f"/v1/losses/{loss}", json={**body, "reduction": "sum"})
    assert summed.status_code == 200 and summed.json()["loss"] == 0


def test_weighted_mean_divides_by_the_summed_weights_of_the_targets_not_ignored():
    x = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    r = compute("torch.nll_loss", [1, 0, -100], x, params={"weight": [3.0, 0.5]}, outputs=("loss", "gradient"))
    assert float(r.loss) == pytest.approx(-(0.5 * x[0, 1] + 3.0 * x[1, 0]) / 3.5)
    np.testing.assert_allclose(r.gradient, [[0, -0.5 / 3.5], [-3.0 / 3.5, 0], [0, 0]])


@pytest.mark.parametrize("labels,field", [([0, 2], "y_true[1]"), ([0, -1], "y_true[1]")])
def test_class_indices_out_of_range_are_refused_naming_ignore_index(labels, field):
    with pytest.raises(InvalidInput) as err:
        compute("torch.cross_entropy", labels, [[0.1, 0.2], [0.3, 0.4]])
    assert field in err.value.detail and "ignore_index -100" in err.value.detail


def test_a_class_weight_of_the_wrong_length_names_both_shapes():
    with pytest.raises(ShapeError) as err:
        compute("torch.cross_entropy", [0, 1], [[0.1, 0.2, 0.3], [0.3, 0.4, 0.5]], params={"weight": [1.0, 2.0]})
    assert "[2]" in err.value.detail and "[2, 3]" in err.value.detail


@pytest.mark.anyio
async def test_triplet_takes_no_y_true_and_other_losses_still_require_it(client):
    body = {"y_pred": [[[0.0, 1.0], [0.1, 0.9], [1.0, 0.0]]]}
    assert (await client.post("/v1/losses/torch.triplet_margin_loss", json=body)).status_code == 200
    refused = assert_problem(await client.post("/v1/losses/torch.mse_loss", json={"y_pred": [1.0, 2.0]}), 422, "y_true")
    assert refused["type"] == "/problems/y-true-required"
