"""Bad input gets a precise 4xx problem+json naming the field, and never a 500.

Each case is distinct: the status, the problem+json shape and the field named in ``detail`` are
asserted for every one.
"""

from __future__ import annotations

import json

import pytest

from .conftest import assert_problem, make_client

pytestmark = pytest.mark.anyio

GOOD = {"y_true": [[0.0, 1.0], [1.0, 0.0]], "y_pred": [[0.2, 0.8], [0.6, 0.4]]}


def nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


# (id, path, raw body or dict, status, field named in detail, extra headers)
CASES = [
    ("malformed-json", "/v1/losses/mse", b'{"y_true": [1, 2', 400, "JSON", None),
    ("empty-body", "/v1/losses/mse", b"", 400, "empty", None),
    ("trailing-garbage", "/v1/losses/mse", b'{"y_true": [1], "y_pred": [1]} x', 400, "JSON", None),
    ("body-is-array", "/v1/losses/mse", b"[1, 2]", 422, "body", None),
    ("unknown-field", "/v1/losses/mse", {**GOOD, "weights": [1, 2]}, 422, "weights", None),
    ("missing-y-pred", "/v1/losses/mse", {"y_true": [1.0]}, 422, "y_pred", None),
    ("missing-y-true", "/v1/losses/mse", {"y_pred": [1.0]}, 422, "y_true", None),
    ("y-pred-string", "/v1/losses/mse", {"y_true": [1.0], "y_pred": "1.0"}, 422, "y_pred", None),
    ("string-element", "/v1/losses/mse", {"y_true": [1.0, 2.0], "y_pred": [1.0, "2.0"]}, 422, "y_pred[1]", None),
    ("null-element", "/v1/losses/mse", {"y_true": [1.0, None], "y_pred": [1.0, 2.0]}, 422, "y_true[1]", None),
    ("bool-element", "/v1/losses/mse", {"y_true": [[1.0, True]], "y_pred": [[1.0, 2.0]]}, 422, "y_true[0][1]", None),
    ("nan-token", "/v1/losses/mse", b'{"y_true": [1.0, NaN], "y_pred": [1.0, 2.0]}', 422, "y_true[1]", None),
    ("infinity-token", "/v1/losses/mse", b'{"y_true": [1.0], "y_pred": [-Infinity]}', 422, "y_pred[0]", None),
    ("overflowing-number", "/v1/losses/mse", b'{"y_true": [1.0], "y_pred": [1e400]}', 422, "y_pred[0]", None),
    ("ragged", "/v1/losses/mse", {"y_true": [[1.0, 2.0], [3.0]], "y_pred": [[1.0, 2.0], [3.0, 4.0]]}, 422,
     "y_true[1]", None),
    ("deep-nesting", "/v1/losses/mse", ('{"y_true": 1, "y_pred": ' + nested(5000) + "}").encode(), 422, "body", None),
    ("too-many-dimensions", "/v1/losses/mse", {"y_true": json.loads(nested(12)), "y_pred": json.loads(nested(12))},
     422, "y_true", None),
    ("empty-array", "/v1/losses/mse", {"y_true": [], "y_pred": []}, 422, "y_true", None),
    ("shape-mismatch", "/v1/losses/mse", {"y_true": [[1.0, 2.0, 3.0]], "y_pred": [[1.0, 2.0]]}, 422, "y_true", None),
    ("weight-not-broadcastable", "/v1/losses/mse", {**GOOD, "sample_weight": [1.0, 2.0, 3.0]}, 422,
     "sample_weight", None),
    ("weight-string", "/v1/losses/mse", {**GOOD, "sample_weight": "heavy"}, 422, "sample_weight", None),
    ("reduction-auto", "/v1/losses/mse", {**GOOD, "reduction": "auto"}, 422, "reduction", None),
    ("output-unknown", "/v1/losses/mse", {**GOOD, "outputs": ["loss", "jacobian"]}, 422, "outputs", None),
    ("outputs-empty", "/v1/losses/mse", {**GOOD, "outputs": []}, 422, "outputs", None),
    ("dtype-float16", "/v1/losses/mse", {**GOOD, "dtype": "float16"}, 422, "dtype", None),
    ("params-not-object", "/v1/losses/huber", {**GOOD, "params": [1.0]}, 422, "params", None),
    ("param-unknown", "/v1/losses/huber", {**GOOD, "params": {"beta": 1.0}}, 422, "beta", None),
    ("param-wrong-type", "/v1/losses/huber", {**GOOD, "params": {"delta": "1.0"}}, 422, "params.delta", None),
    ("param-out-of-range", "/v1/losses/huber", {**GOOD, "params": {"delta": -1.0}}, 422, "params.delta", None),
    ("label-smoothing-above-1", "/v1/losses/bce", {**GOOD, "params": {"label_smoothing": 2.0}}, 422,
     "params.label_smoothing", None),
    ("bool-param-as-string", "/v1/losses/bce", {**GOOD, "params": {"from_logits": "yes"}}, 422,
     "params.from_logits", None),
    ("axis-out-of-range", "/v1/losses/categorical_crossentropy", {**GOOD, "params": {"axis": 5}}, 422,
     "params.axis", None),
    ("bce-probability-above-1", "/v1/losses/bce", {"y_true": [[0.0, 1.0]], "y_pred": [[0.5, 1.5]]}, 422,
     "y_pred[0][1]", None),
    ("bce-label-negative", "/v1/losses/bce", {"y_true": [[-1.0, 1.0]], "y_pred": [[0.5, 0.5]]}, 422,
     "y_true[0][0]", None),
    ("cce-zero-row", "/v1/losses/categorical_crossentropy", {"y_true": [[0, 1]], "y_pred": [[0.0, 0.0]]}, 422,
     "y_pred", None),
    ("sparse-label-out-of-range", "/v1/losses/sparse_categorical_crossentropy",
     {"y_true": [0, 3], "y_pred": [[0.5, 0.5], [0.5, 0.5]]}, 422, "y_true[1]", None),
    ("sparse-label-not-integer", "/v1/losses/sparse_categorical_crossentropy",
     {"y_true": [0, 0.5], "y_pred": [[0.5, 0.5], [0.5, 0.5]]}, 422, "y_true[1]", None),
    ("sparse-label-shape", "/v1/losses/sparse_categorical_crossentropy",
     {"y_true": [0, 1, 1], "y_pred": [[0.5, 0.5], [0.5, 0.5]]}, 422, "y_true", None),
    ("poisson-negative-rate", "/v1/losses/poisson", {"y_true": [[1.0, 2.0]], "y_pred": [[1.0, -0.5]]}, 422,
     "y_pred[0][1]", None),
    ("kld-target-above-1", "/v1/losses/kld", {"y_true": [[0.5, 1.5]], "y_pred": [[0.5, 0.5]]}, 422,
     "y_true[0][1]", None),
    ("hinge-label-2", "/v1/losses/hinge", {"y_true": [[2.0, 1.0]], "y_pred": [[0.5, 0.5]]}, 422, "y_true[0][0]", None),
    ("hessian-not-offered", "/v1/losses/circle", {**GOOD, "outputs": ["hessian"]}, 422, "hessian", None),
    ("result-overflows", "/v1/losses/mse", {"y_true": [[0.0]], "y_pred": [[1e200]]}, 422, "result.loss", None),
    ("unknown-loss", "/v1/losses/mean_squared_eror", GOOD, 404, "mean_squared_eror", None),
    ("form-content-type", "/v1/losses/mse", b"y_true=1&y_pred=2", 415, "Content-Type",
     {"content-type": "application/x-www-form-urlencoded"}),
    ("text-content-type", "/v1/losses/mse", json.dumps(GOOD).encode(), 415, "Content-Type",
     {"content-type": "text/plain"}),
    ("batch-not-object", "/v1/batch", b"[]", 422, "body", None),
    ("batch-extra-field", "/v1/batch", {"requests": [], "parallel": True}, 422, "parallel", None),
    ("batch-empty", "/v1/batch", {"requests": []}, 422, "requests", None),
]


@pytest.mark.parametrize("name,path,body,status,field,headers", CASES, ids=[c[0] for c in CASES])
async def test_bad_request(client, name, path, body, status, field, headers):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(path, content=content, headers=headers or {"content-type": "application/json"})
    assert_problem(response, status, field)


def test_cases_are_many_and_distinct():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
    assert len({(c[1], c[2] if isinstance(c[2], bytes) else json.dumps(c[2])) for c in CASES}) == len(CASES)


async def test_unknown_loss_suggests_close_names(client):
    response = await client.post("/v1/losses/categorical_crossentropi", json=GOOD)
    body = assert_problem(response, 404, "categorical_crossentropi")
    assert "categorical_crossentropy" in body["suggestions"]


async def test_wrong_method_is_405_problem(client):
    response = await client.delete("/v1/losses/mse")
    assert_problem(response, 405, "DELETE")


async def test_unknown_route_is_404_problem(client):
    # not under /v2: an unknown route there is an Open Inference Protocol error (tests/test_oip_framing.py)
    assert_problem(await client.get("/v3/losses"), 404, "/v3/losses")


@pytest.mark.parametrize("limit_kw,path,body,field", [
    ({"max_body_bytes": 200}, "/v1/losses/mse", {"y_true": [0.0] * 100, "y_pred": [0.0] * 100}, "body"),
    ({"max_elements": 50}, "/v1/losses/mse", {"y_true": [0.0] * 40, "y_pred": [0.0] * 40}, "body"),
    ({"max_batch_items": 2}, "/v1/batch", {"requests": [{"loss": "mse", "y_true": [1], "y_pred": [1]}] * 3},
     "requests"),
    ({"max_elements": 50}, "/v1/batch", {"requests": [{"loss": "mse", "y_true": [0.0] * 20, "y_pred": [0.0] * 20}] * 2},
     "body"),
])
async def test_limits_give_413_problem(limit_kw, path, body, field):
    async with make_client(**limit_kw) as client:
        response = await client.post(path, json=body)
        assert_problem(response, 413, None)
        assert response.json()["errors"][0]["loc"][0] == field


async def test_content_length_over_limit_is_413_before_reading():
    async def never_sent():  # the body must not be read at all
        raise AssertionError("body was read")
        yield b""  # pragma: no cover

    async with make_client(max_body_bytes=1000) as client:
        response = await client.post("/v1/losses/mse", content=never_sent(),
                                     headers={"content-type": "application/json", "content-length": "5000"})
        body = assert_problem(response, 413, None)
        assert "5,000 bytes" in body["detail"]


async def test_streamed_body_over_limit_is_413():
    async def chunks():
        for _ in range(10):
            yield b" " * 500

    async with make_client(max_body_bytes=2000) as client:
        response = await client.post("/v1/losses/mse", content=chunks(), headers={"content-type": "application/json"})
        assert_problem(response, 413, None)


async def test_batch_item_error_does_not_fail_the_others(client):
    response = await client.post("/v1/batch", json={"requests": [
        {"loss": "mse", **GOOD},
        {"loss": "mse", "y_true": [[1.0]], "y_pred": [[1.0, 2.0]]},
        {"loss": "no_such_loss", **GOOD},
        {"loss": "mae", **GOOD},
    ]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [("error" in r) for r in results] == [False, True, True, False]
    assert results[1]["error"]["status"] == 422 and results[1]["error"]["errors"][0]["loc"][:2] == ["requests", 1]
    assert results[2]["error"]["status"] == 404 and results[2]["error"]["errors"][0]["loc"] == ["requests", 2, "loss"]
    assert results[3]["loss"] == pytest.approx(0.3)


async def test_api_key_guard():
    async with make_client(api_key="s3cret") as client:
        assert_problem(await client.post("/v1/losses/mse", json=GOOD), 401, "X-API-Key")
        ok = await client.post("/v1/losses/mse", json=GOOD, headers={"x-api-key": "s3cret"})
        assert ok.status_code == 200
        assert (await client.get("/healthz")).status_code == 200


# --- found by fuzzing: each was a 500, a multi-gigabyte allocation or a string read as a number ------

MSE = {"y_true": [[0.0, 1.0]], "y_pred": [[0.5, 0.5]]}
SCE = {"y_true": [1, 2], "y_pred": [[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]}


@pytest.mark.parametrize("path,raw,status,field", [
    # an empty row before a number: ragged, though no number precedes the empty row
    ("/v1/losses/mse", b'{"y_true": [1], "y_pred": [[], 1]}', 422, "y_pred"),
    ("/v1/losses/mse", b'{"y_true": [1], "y_pred": [1], "sample_weight": [[], 1]}', 422, "sample_weight"),
    # float parameters written as integer literals beyond float64
    ("/v1/losses/huber", b'{"y_true": [1], "y_pred": [2], "params": {"delta": 1' + b"0" * 400 + b"}}", 422,
     "params.delta"),
    # integer parameters beyond 64 bits (they are echoed in meta.params)
    ("/v1/losses/sparse_categorical_crossentropy",
     json.dumps({**SCE, "params": {"ignore_class": 10**30}}).encode(), 422, "params.ignore_class"),
    ("/v1/losses/sparse_categorical_crossentropy",
     json.dumps({**SCE, "params": {"ignore_class": 1e308}}).encode(), 422, "params.ignore_class"),
    # weights that broadcast with the per-sample values into an outer product
    ("/v1/losses/mse", json.dumps({"y_true": [[0.0]] * 50, "y_pred": [[1.0]] * 50,
                                   "sample_weight": [[[1.0]]] * 50}).encode(), 422, "sample_weight"),
    # a string in an array, with a \u0022 elsewhere balancing the raw quote count
    ("/v1/batch", (b'{"requests": [{"loss": "\\u0022\\u0022", "y_pred": [1]}, '
                   b'{"loss": "mse", "y_true": [1], "y_pred": ["1e5"]}]}'), 200, None),
])
async def test_fuzz_findings_are_4xx_problems(client, path, raw, status, field):
    response = await client.post(path, content=raw, headers={"content-type": "application/json"})
    if status == 200:  # a batch: the string must be refused in its item
        items = response.json()["results"]
        assert items[1]["error"]["status"] == 422 and "string" in items[1]["error"]["detail"]
    else:
        assert_problem(response, status, field)


async def test_grading_a_ragged_or_subnormal_submission_is_feedback_not_500(client):
    ragged = await client.post("/v1/grade", json={"loss": "mse", "y_true": [[0, 1]], "y_pred": [[1, 1]],
                                                  "submission": {"gradient": [[], 1]}})
    assert ragged.status_code == 200 and ragged.json()["passed"] is False
    tiny = await client.post("/v1/grade", json={"loss": "mse", **MSE, "submission": {"loss": 1e-320}})
    assert tiny.status_code == 200 and tiny.json()["passed"] is False


async def test_one_hot_exercise_with_many_classes_is_cheap(client):
    """The sampler draws one-hot rows without a classes x classes identity matrix (298 GiB here)."""
    response = await client.post("/v1/exercises", json={"loss": "categorical_crossentropy", "seed": 1,
                                                        "shape": [2, 200000], "decimals": None})
    assert response.status_code == 200
    y_true = response.json()["y_true"]
    assert [sum(row) for row in y_true] == [1.0, 1.0]


async def test_labels_beyond_exact_float_integers_are_refused(client):
    """Circle takes any integer labels; past 2**53 float64 would merge distinct ones."""
    body = {"y_true": [1e19, 2e19, 3e19], "y_pred": [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]}
    assert_problem(await client.post("/v1/losses/circle", json=body), 422, "y_true[0]")


async def test_gradescope_points_are_bounded(client):
    body = {"loss": "mse", **MSE, "submission": {"loss": 0.25},
            "gradescope": {"max_score": {"loss": 1e308}}}
    assert_problem(await client.post("/v1/grade?format=gradescope", json=body), 422, "max_score")


@pytest.mark.parametrize("path, extra", [("/v1/losses/torch.cross_entropy", {}),
                                         ("/v1/grade", {"loss": "torch.cross_entropy", "submission": {"loss": 1.0}})])
async def test_a_ragged_array_parameter_is_a_shape_problem(client, path, extra):
    """Rows of one length are a shape (as for y_true): JSON Schema cannot say it, so the problem type is
    shape-mismatch, one the OpenAPI document lists as inexpressible, wherever the body names its loss."""
    body = {**extra, "y_true": [0, 1], "y_pred": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]],
            "params": {"weight": [[1, 2], [3]]}}
    r = await client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "/problems/shape-mismatch"
    assert r.json()["errors"][0]["loc"] == ["params", "weight"] and "rectangular" in r.json()["detail"]
