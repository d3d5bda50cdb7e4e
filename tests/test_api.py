"""The HTTP API in-process (httpx AsyncClient on ASGITransport): results, names, formats, docs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.engine import all_losses, compute

from .conftest import load_conformance, make_client

pytestmark = pytest.mark.anyio

SEED = load_conformance("seed_examples.json")


@pytest.mark.parametrize("case", SEED, ids=[f"{i}-{c['loss']}" for i, c in enumerate(SEED)])
async def test_seed_examples_over_http(client, case):
    body = {k: case[k] for k in ("y_true", "y_pred", "params", "reduction") if k in case}
    if "sample_weight" in case:
        body["sample_weight"] = case["sample_weight"]
    response = await client.post(f"/v1/losses/{case['loss']}", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    np.testing.assert_allclose(data["loss"], case["expected"], rtol=1e-6, atol=0)
    assert np.shape(data["gradient"]) == np.shape(case["y_pred"])


async def test_response_matches_engine_and_contract_example(client):
    body = {"y_true": [[0, 1, 0], [0, 0, 1]], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]],
            "sample_weight": [1.0, 0.5], "params": {"from_logits": False, "label_smoothing": 0.0}}
    response = await client.post("/v1/losses/categorical_crossentropy", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    engine = compute("categorical_crossentropy", body["y_true"], body["y_pred"], params=body["params"],
                     sample_weight=body["sample_weight"])
    assert data["loss"] == float(engine.loss)  # shortest round-trip: the exact double
    assert data["per_sample"] == engine.per_sample.tolist()
    assert data["gradient"] == engine.gradient.tolist()
    assert data["meta"] == {"loss": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                            "params": {"from_logits": False, "label_smoothing": 0.0, "axis": -1},
                            "dtype": "float64", "y_pred_shape": [2, 3], "per_sample_shape": [2]}
    assert data["per_sample"][1] == pytest.approx(0.5 * 2.3025850929940455)


@pytest.mark.parametrize("alias", ["mse", "MSE", "MeanSquaredError", "mean_squared_error", "Mean_Squared_Error"])
async def test_aliases_resolve_case_insensitively(client, alias):
    response = await client.post(f"/v1/losses/{alias}", json={"y_true": [[0.0, 1.0]], "y_pred": [[1.0, 1.0]]})
    assert response.status_code == 200
    assert response.json()["meta"]["loss"] == "mean_squared_error"


@pytest.mark.parametrize("alias,canonical", [
    ("huber_loss", "huber"), ("logcosh", "log_cosh"), ("kullback_leibler_divergence", "kl_divergence"),
    ("KLD", "kl_divergence"), ("bce", "binary_crossentropy"), ("CategoricalCrossentropy", "categorical_crossentropy"),
    ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"), ("mae", "mean_absolute_error"),
])
async def test_keras2_and_class_names(client, alias, canonical):
    response = await client.get(f"/v1/losses/{alias}")
    assert response.status_code == 200
    assert response.json()["name"] == canonical


async def test_outputs_subset_and_reduction_none(client):
    body = {"y_true": [[0.0, 1.0], [1.0, 1.0]], "y_pred": [[1.0, 1.0], [0.0, 1.0]], "reduction": "none",
            "outputs": ["loss"]}
    data = (await client.post("/v1/losses/mse", json=body)).json()
    assert set(data) == {"loss", "meta"}
    assert data["loss"] == [0.5, 0.5]


async def test_hessian_output(client):
    body = {"y_true": [[0.0, 1.0]], "y_pred": [[0.5, 0.5]], "outputs": ["gradient", "hessian"]}
    data = (await client.post("/v1/losses/mse", json=body)).json()
    assert data["hessian"] == [[1.0, 1.0]]  # d2/dx2 of mean((x - y)^2) over 2 values, batch of 1


async def test_float32_is_computed_and_written_in_float32(client):
    body = {"y_true": [[1, 0], [1, 0]], "y_pred": [[1, 1], [1, 0]], "dtype": "float32"}
    r32 = (await client.post("/v1/losses/binary_crossentropy", json=body)).json()
    r64 = (await client.post("/v1/losses/binary_crossentropy", json={**body, "dtype": "float64"})).json()
    assert r32["loss"] == pytest.approx(3.98559, rel=1e-5)
    assert r64["loss"] == pytest.approx(4.029523899487309, rel=1e-6)
    assert r32["meta"]["dtype"] == "float32"
    # float32 values are written with float32's shortest representation
    assert np.float32(r32["loss"]) == np.float32(r32["loss"]) and len(repr(r32["loss"])) <= 12


async def test_large_array_round_trip_is_exact(client):
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(200, 50)), rng.normal(size=(200, 50))
    response = await client.post("/v1/losses/mse", content=json.dumps({"y_true": y_true.tolist(),
                                                                        "y_pred": y_pred.tolist()}),
                                 headers={"content-type": "application/json"})
    data = response.json()
    expected = compute("mse", y_true, y_pred)
    assert np.array_equal(np.array(data["gradient"]), expected.gradient)
    assert data["loss"] == float(expected.loss)


async def test_mixed_true_in_params_and_number_arrays(client):
    # a body with "true" in params must still reject a boolean inside an array
    body = b'{"y_true": [1, 0], "y_pred": [0.3, true], "params": {"from_logits": true}}'
    response = await client.post("/v1/losses/bce", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "y_pred[1]" in response.json()["detail"]
    ok = await client.post("/v1/losses/bce", content=b'{"y_true": [1, 0], "y_pred": [0.3, 2.0], '
                                                        b'"params": {"from_logits": true, "label_smoothing": 0.0}}',
                           headers={"content-type": "application/json"})
    assert ok.status_code == 200


async def test_catalogue_lists_every_loss(client):
    data = (await client.get("/v1/losses")).json()
    assert {e["name"] for e in data} == {loss.name for loss in all_losses()}
    for entry in data:
        assert entry["formula"] and entry["summary"] and entry["y_true"] and entry["y_pred"]
        # the framework whose semantics the loss follows is named (PyTorch's with its documentation page);
        # an "other" loss names its paper or a peer with its documentation page
        refs = set(entry["references"])
        if entry["family"] == "other":
            assert "paper" in refs or any(k.endswith("_docs") for k in refs), entry["name"]
        else:
            assert {"keras": {"keras"}, "pytorch": {"pytorch", "pytorch_docs"},
                    "gradient-boosting": {"sklearn", "sklearn_source"}}[entry["family"]] <= refs
        assert entry["default_reduction"] in entry["reductions"]
        for p in entry["params"]:
            assert {"name", "type", "default", "constraints", "description"} <= set(p)


async def test_health_and_readiness(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    ready = (await client.get("/readyz")).json()
    assert ready["status"] == "ready" and ready["losses"] == len(all_losses())
    assert ready["vector_math"] in ("mkl", "numpy")


async def test_metrics_count_requests_and_computations(client):
    await client.post("/v1/losses/mse", json={"y_true": [1.0], "y_pred": [2.0]})
    await client.post("/v1/losses/nope", json={"y_true": [1.0], "y_pred": [2.0]})
    text = (await client.get("/metrics")).text
    assert 'loss_service_requests_total{method="POST",route="/v1/losses/{name}",status="200"} 1.0' in text
    assert 'loss_service_computations_total{loss="mean_squared_error",outcome="ok"} 1.0' in text
    assert 'loss_service_computations_total{loss="unknown",outcome="error"} 1.0' in text
    assert "loss_service_request_seconds_bucket" in text


async def test_docs_work_offline(client):
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        for remote in ("cdn.jsdelivr", "fonts.googleapis", "fastapi.tiangolo.com", "unpkg.com", "http://", "https://"):
            assert remote not in html, f"{page} references {remote}"
        assets = [part.split('"')[0] for part in html.split('"/static/docs/')[1:]]
        assert assets, f"{page} references no local assets"
        for asset in assets:
            response = await client.get(f"/static/docs/{asset}")
            assert response.status_code == 200 and len(response.content) > 1000, asset


async def test_openapi_documents_every_route_and_body(client):
    spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in [("/v1/losses", "get"), ("/v1/losses/{name}", "get"), ("/v1/losses/{name}", "post"),
                         ("/v1/batch", "post"), ("/healthz", "get"), ("/readyz", "get"), ("/metrics", "get")]:
        assert method in paths[path], (path, method)
    post = paths["/v1/losses/{name}"]["post"]
    media = post["requestBody"]["content"]["application/json"]
    assert media["schema"]["$ref"] == "#/components/schemas/LossRequest"
    assert set(media["examples"]) == {loss.name for loss in all_losses()}
    schemas = spec["components"]["schemas"]
    assert {"LossRequest", "LossResponse", "Problem", "BatchRequest", "BatchResponse", "CatalogueDetail"} <= set(schemas)
    assert {"y_true", "y_pred", "sample_weight", "params", "reduction", "outputs", "dtype"} <= set(
        schemas["LossRequest"]["properties"])
    for code in ("400", "404", "413", "415", "422"):
        assert code in post["responses"]


async def test_cors_origins_setting():
    async with make_client(cors_origins=["https://grader.example"]) as client:
        response = await client.options("/v1/losses/mse", headers={
            "origin": "https://grader.example", "access-control-request-method": "POST"})
        assert response.headers["access-control-allow-origin"] == "https://grader.example"


def test_bool_token_count_ignores_keys_and_counts_values():
    from service.transport.json import count_bool_tokens

    assert count_bool_tokens(b'{"y_true": [1, 0], "y_pred": [0.5, 0.5]}') == 0
    assert count_bool_tokens(b'{"y_true": [1, true], "params": {"from_logits" : false}}') == 2
    assert count_bool_tokens(b'[ true,false ,\n true]') == 3


async def test_number_arrays_are_not_walked_in_python(client, monkeypatch):
    # the exact (slow) walk runs only when a body holds a boolean the parameters do not explain
    from service.transport import json as wire

    calls = []
    original = wire._diagnose
    monkeypatch.setattr(wire, "_diagnose", lambda *a: calls.append(a) or original(*a))
    ok = await client.post("/v1/losses/bce", json={"y_true": [[1, 0]], "y_pred": [[0.5, 0.5]],
                                                   "params": {"from_logits": True}})
    assert ok.status_code == 200 and calls == []
    bad = await client.post("/v1/losses/bce", json={"y_true": [[1, 0]], "y_pred": [[0.5, True]]})
    assert bad.status_code == 422 and calls
