"""Defects a new user meets first (issue 9, item 6), each pinned by a test that failed before its fix."""

from __future__ import annotations

import gzip
import json

import pytest

from service.transport.json import find_duplicate_key

from .conftest import assert_problem, make_client

pytestmark = pytest.mark.anyio

MSE = {"y_true": [[0.0, 1.0]], "y_pred": [[1.0, 1.0]]}


async def test_healthz_has_no_null_fields_and_readyz_names_its_backend(client):
    live = (await client.get("/healthz")).json()
    assert set(live) == {"status", "version"} and None not in live.values()
    ready = (await client.get("/readyz")).json()
    assert ready["losses"] >= 22 and ready["vector_math"] in ("mkl", "numpy")


async def test_metrics_label_docs_assets_and_openapi_by_route(client):
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/static/docs/swagger-ui.css")).status_code == 200
    assert (await client.get("/docs")).status_code == 200
    text = (await client.get("/metrics")).text
    assert 'route="/openapi.json"' in text
    assert 'route="/static/docs/{path}"' in text
    assert 'route="/docs"' in text
    assert (await client.get("/no/such/route")).status_code == 404
    assert 'route="unmatched"' in (await client.get("/metrics")).text  # what no route matches stays there


async def test_a_401_is_not_counted_as_a_computation_error():
    async with make_client(api_key="secret") as client:
        assert (await client.post("/v1/losses/mse", json=MSE)).status_code == 401
        assert (await client.post("/v1/losses/mse", json=MSE, headers={"x-api-key": "secret"})).status_code == 200
        text = (await client.get("/metrics")).text
    assert 'loss_service_computations_total{loss="mean_squared_error",outcome="ok"} 1.0' in text
    assert 'outcome="error"' not in text


async def test_float32_overflow_says_float32_once(client):
    response = await client.post("/v1/losses/mse", json={"y_true": [[0.0]], "y_pred": [[1e20]], "dtype": "float32"})
    body = assert_problem(response, 422, "result.loss")
    assert body["detail"].count("float32") == 1, body["detail"]
    assert "float64" in body["detail"]


@pytest.mark.parametrize("encoding", ["br", "zstd"])
async def test_an_unsupported_compression_is_a_415_not_read_as_json(client, encoding):
    """gzip and deflate are inflated (tests/test_compression.py); other encodings stay a 415."""
    content = gzip.compress(json.dumps(MSE).encode())
    response = await client.post("/v1/losses/mse", content=content,
                                 headers={"content-type": "application/json", "content-encoding": encoding})
    body = assert_problem(response, 415, None)
    assert "Content-Encoding" in body["detail"] and encoding in body["detail"]


async def test_identity_encoding_is_plain_json(client):
    response = await client.post("/v1/losses/mse", content=json.dumps(MSE).encode(),
                                 headers={"content-type": "application/json", "content-encoding": "identity"})
    assert response.status_code == 200


@pytest.mark.parametrize("path,body,key", [
    ("/v1/losses/mse", b'{"y_true": [1.0], "y_pred": [1.0], "y_pred": [2.0]}', "y_pred"),
    ("/v1/losses/huber", b'{"y_true": [1.0], "y_pred": [1.0], "params": {"delta": 1.0, "delta": 2.0}}', "delta"),
    ("/v1/losses/mse", b'{"y_true": [1.0], "y_pred": [1.0], "y\\u005fpred": [2.0]}', "y_pred"),  # escaped: same key
    ("/v1/batch", b'{"requests": [{"loss": "mse", "loss": "mae", "y_true": [1], "y_pred": [1]}]}', "loss"),
    ("/v1/grade", b'{"loss": "mse", "y_true": [1], "y_pred": [1], "submission": {"loss": 0, "loss": 1}}', "loss"),
    ("/v1/exercises", b'{"loss": "mse", "seed": 1, "seed": 2}', "seed"),
])
async def test_duplicate_keys_are_a_400(client, path, body, key):
    response = await client.post(path, content=body, headers={"content-type": "application/json"})
    problem = assert_problem(response, 400, None)
    assert f"'{key}'" in problem["detail"] and "once" in problem["detail"]


def test_keys_repeated_in_different_objects_or_inside_strings_are_fine():
    assert find_duplicate_key(b'{"a": {"x": 1}, "b": {"x": 2}, "c": [{"x": 1}, {"x": 2}]}') is None
    assert find_duplicate_key(b'{"a": "\\"a\\": {", "b": "}"}') is None  # quotes and braces inside a string
    assert find_duplicate_key(b'{"a": "x\\\\", "a": 1}') == ("a", 13)  # an escaped backslash ends the string
    assert find_duplicate_key(b'[{"k": 1}, {"k": 1, "k": 2}]') == ("k", 20)
