"""The Python client (client/loss_client) against a live server: every method, typed errors, dtypes,
results equal to the server's own JSON, and the OIP binary path equal bit for bit to /v1."""

from __future__ import annotations

import sys

import httpx
import numpy as np
import orjson
import pytest

from .conftest import REPO, live_server

# The client is its own package (pip install ./client); the tests use it from the checkout.
sys.path.insert(0, str(REPO / "client"))

from loss_client import (  # noqa: E402
    AsyncLossClient,
    BadRequest,
    Exercise,
    InvalidInput,
    LossClient,
    LossResult,
    LossServiceError,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    Unauthorized,
)

ALL_OUTPUTS = ["loss", "per_sample", "gradient", "hessian"]
RNG = np.random.default_rng(12)


@pytest.fixture(scope="module")
def server():
    with live_server() as running:
        yield running


@pytest.fixture
def client(server):
    with LossClient(server.url) as c:
        yield c


def raw_post(server, path: str, body: dict, **params) -> httpx.Response:
    return httpx.post(server.url + path, content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                      headers={"Content-Type": "application/json"}, params=params, timeout=60)


def assert_same_result(result: LossResult, body: dict, dtype: str) -> None:
    """The client's arrays hold exactly the numbers of the server's JSON, in the computation's dtype."""
    assert result.meta == body["meta"]
    for name in ("per_sample", "gradient", "hessian"):
        value = getattr(result, name)
        if body.get(name) is None:
            assert value is None, name
            continue
        expected = np.asarray(body[name], dtype=dtype)
        assert value.dtype == np.dtype(dtype), name
        assert value.shape == expected.shape and value.tobytes() == expected.tobytes(), name
    if isinstance(body["loss"], list):
        assert result.loss.tobytes() == np.asarray(body["loss"], dtype=dtype).tobytes()
    else:
        assert isinstance(result.loss, float) and result.loss == float(np.asarray(body["loss"], dtype=dtype))


def bce_inputs(n: int = 6, k: int = 3):
    y_true = (RNG.random((n, k)) < 0.5).astype(np.float64)
    y_pred = RNG.uniform(0.05, 0.95, (n, k))
    return y_true, y_pred


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compute_equals_the_servers_json(server, client, dtype):
    y_true, y_pred = bce_inputs()
    weight = RNG.uniform(0.5, 2.0, 6)
    options = {"sample_weight": weight, "params": {"label_smoothing": 0.1}, "reduction": "sum",
               "outputs": ALL_OUTPUTS, "dtype": dtype}
    result = client.compute("binary_crossentropy", y_true, y_pred, **options)
    body = raw_post(server, "/v1/losses/binary_crossentropy",
                    {"y_true": y_true, "y_pred": y_pred, **options}).json()
    assert_same_result(result, body, dtype)
    assert result.dtype == np.dtype(dtype)
    assert result.hessian.shape == y_pred.shape


def test_compute_defaults_reduction_none_and_lists(server, client):
    y_true, y_pred = [[0.0, 1.0], [1.0, 1.0]], [[0.5, 0.25], [2.0, 1.0]]
    result = client.compute("mse", y_true, y_pred, reduction="none")
    body = raw_post(server, "/v1/losses/mse", {"y_true": y_true, "y_pred": y_pred, "reduction": "none"}).json()
    assert_same_result(result, body, "float64")
    assert isinstance(result.loss, np.ndarray) and result.hessian is None
    assert result.meta["loss"] == "mean_squared_error"


def test_non_contiguous_and_float32_inputs_are_written_exactly(client):
    """orjson writes arrays from their buffers; a transposed view or a float32 array must give the
    same numbers as the contiguous float64 array holding the same values."""
    y_true, y_pred = bce_inputs(4, 5)
    reference = client.compute("mse", y_true.T.copy(), y_pred.T.copy(), outputs=ALL_OUTPUTS)
    transposed = client.compute("mse", y_true.T, y_pred.T, outputs=ALL_OUTPUTS)
    assert transposed.gradient.tobytes() == reference.gradient.tobytes()
    # a float32 array is written in float32's shortest round-trip digits: in a float32 computation
    # the service gets back exactly those float32 values
    pred32 = y_pred.astype(np.float32)
    from_32 = client.compute("mse", y_true, pred32, dtype="float32")
    from_64 = client.compute("mse", y_true, pred32.astype(np.float64), dtype="float32")
    assert from_32.gradient.dtype == np.float32
    assert from_32.gradient.tobytes() == from_64.gradient.tobytes()


def test_batch_returns_results_and_errors_in_order(server, client):
    y_true, y_pred = bce_inputs()
    items = [{"loss": "bce", "y_true": y_true, "y_pred": y_pred},
             {"loss": "no_such_loss", "y_true": [[0.0]], "y_pred": [[1.0]]},
             {"loss": "huber", "y_true": [[0.0, 1.0]], "y_pred": [[0.6, 0.4]], "params": {"delta": 0.5},
              "dtype": "float32"}]
    results = client.batch(items)
    body = raw_post(server, "/v1/batch", {"requests": items}).json()["results"]
    assert len(results) == 3
    assert_same_result(results[0], body[0], "float64")
    assert isinstance(results[1], NotFound) and results[1].status == 404 and results[1].slug == "unknown-loss"
    assert results[1].detail == body[1]["error"]["detail"]
    assert_same_result(results[2], body[2], "float32")


def test_grade_and_gradescope(server, client):
    exercise = {"seed": 42, "shape": [4, 3]}
    reference = client.compute("huber", *(lambda e: (e.y_true, e.y_pred))(client.exercises("huber", **exercise)))
    graded = client.grade("huber", {"loss": reference.loss, "gradient": reference.gradient + 1.0}, exercise=exercise)
    body = raw_post(server, "/v1/grade", {"loss": "huber", "exercise": exercise,
                                          "submission": {"loss": reference.loss,
                                                         "gradient": reference.gradient + 1.0}}).json()
    assert graded == body
    assert [c["passed"] for c in graded["checks"]] == [True, False]
    gradescope = client.grade("huber", {"loss": reference.loss}, exercise=exercise, format="gradescope")
    assert gradescope["score"] == 1 and [t["status"] for t in gradescope["tests"]] == ["passed"]


def test_exercises_as_arrays(server, client):
    exercise = client.exercises("categorical_crossentropy", seed=7, shape=[5, 4], sample_weight=True)
    body = raw_post(server, "/v1/exercises", {"loss": "categorical_crossentropy", "seed": 7, "shape": [5, 4],
                                              "sample_weight": True}).json()
    assert isinstance(exercise, Exercise)
    assert exercise.y_pred.tolist() == body["y_pred"] and exercise.y_true.tolist() == body["y_true"]
    assert exercise.sample_weight.tolist() == body["sample_weight"]
    assert exercise.y_pred.shape == (5, 4) and exercise.meta["seed"] == 7
    assert client.exercises("categorical_crossentropy", seed=7, shape=[5, 4]).y_pred.tolist() == body["y_pred"]


def test_losses_and_describe(server, client):
    catalogue = client.losses()
    assert catalogue == httpx.get(server.url + "/v1/losses").json()
    entry = client.describe("CategoricalCrossentropy")
    assert entry["name"] == "categorical_crossentropy" and entry["examples"]
    example = entry["examples"][0]
    body = example["request"]
    result = client.compute("categorical_crossentropy", body.get("y_true"), body["y_pred"],
                            **{k: body[k] for k in ("sample_weight", "params", "reduction", "outputs", "dtype")
                               if k in body})
    assert_same_result(result, example["response"], body.get("dtype", "float64"))


def test_unknown_loss_is_not_found_with_suggestions(client):
    with pytest.raises(NotFound) as caught:
        client.compute("categorical_crossentropyy", [[0, 1]], [[0.5, 0.5]])
    err = caught.value
    assert err.status == 404 and err.type == "/problems/unknown-loss"
    assert "categorical_crossentropy" in err.suggestions
    with pytest.raises(NotFound):
        client.describe("no_such_loss")


def test_invalid_input_names_the_field(client):
    with pytest.raises(InvalidInput) as caught:
        client.compute("binary_crossentropy", [1.0, 0.0, 1.0], [0.5, 1.5, 0.5])
    err = caught.value
    assert err.status == 422 and err.slug == "domain-error"
    assert "y_pred[1]" in err.fields and "y_pred" in err.detail
    with pytest.raises(InvalidInput) as caught:
        client.compute("huber", [[0.0]], [[1.0]], params={"delta": -1.0})
    assert any(f.startswith("params.delta") for f in caught.value.fields), caught.value.fields
    assert isinstance(caught.value, LossServiceError)


def test_too_large_and_unauthorized():
    with live_server({"LOSS_SERVICE_MAX_BODY_BYTES": "2000", "LOSS_SERVICE_API_KEY": "secret"}) as small:
        with LossClient(small.url) as anonymous, pytest.raises(Unauthorized) as caught:
            anonymous.losses()
        assert caught.value.status == 401 and "X-API-Key" in caught.value.detail
        with LossClient(small.url, api_key="secret") as keyed:
            assert keyed.compute("mse", [[0.0]], [[1.0]]).loss == 1.0
            with pytest.raises(PayloadTooLarge) as caught:
                keyed.compute("mse", np.zeros((50, 10)), np.ones((50, 10)))
        assert caught.value.status == 413


def test_overloaded_carries_retry_after():
    """The service's own queue-full problem (service.api.compute.QueueFull), as the app renders it."""
    from service.api.compute import QueueFull
    from service.problems import problem_body

    full = QueueFull(8)
    answer = httpx.Response(503, headers={**full.headers, "Content-Type": "application/problem+json"},
                            content=orjson.dumps(problem_body(full, "/v1/losses/mse")))
    with mocked_client(answer) as c, pytest.raises(Overloaded) as caught:
        c.compute("mse", [[0.0]], [[1.0]])
    assert caught.value.retry_after == float(full.headers["Retry-After"])
    assert caught.value.detail == full.detail and caught.value.slug == "overloaded"


@pytest.mark.anyio
async def test_async_client_matches_the_sync_client(server):
    y_true, y_pred = bce_inputs()
    with LossClient(server.url) as sync:
        expected = sync.compute("bce", y_true, y_pred, outputs=ALL_OUTPUTS)
    async with AsyncLossClient(server.url) as c:
        result = await c.compute("bce", y_true, y_pred, outputs=ALL_OUTPUTS)
        assert result.gradient.tobytes() == expected.gradient.tobytes() and result.loss == expected.loss
        assert (await c.describe("bce"))["name"] == "binary_crossentropy"
        binary = await c.compute_binary("bce", y_true, y_pred, outputs=ALL_OUTPUTS)
        assert binary.hessian.tobytes() == expected.hessian.tobytes() and binary.loss == expected.loss
        with pytest.raises(NotFound):
            await c.compute("no_such_loss", [[0.0]], [[1.0]])


# --------------------------------------------------------------------------- OIP v2 binary

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binary_compute_equals_v1_bit_for_bit(client, dtype):
    y_true, y_pred = bce_inputs(50, 7)
    weight = RNG.uniform(0.5, 2.0, 50)
    options = {"sample_weight": weight, "params": {"label_smoothing": 0.1, "from_logits": False},
               "reduction": "sum", "outputs": ALL_OUTPUTS, "dtype": dtype}
    over_json = client.compute("binary_crossentropy", y_true, y_pred, **options)
    binary = client.compute("binary_crossentropy", y_true, y_pred, transport="oip", **options)
    assert binary.loss == over_json.loss
    for name in ("per_sample", "gradient", "hessian"):
        got, want = getattr(binary, name), getattr(over_json, name)
        assert got.dtype == want.dtype == np.dtype(dtype), name
        assert got.shape == want.shape and got.tobytes() == want.tobytes(), name
        assert not got.flags.owndata, f"{name} was copied out of the response instead of viewed"


def test_binary_default_outputs_labels_and_array_params(client):
    """Default outputs (binary_data_output), INT64 labels, an array parameter as an extra tensor."""
    logits = RNG.normal(size=(8, 3))
    y_true = (RNG.random((8, 3)) < 0.5).astype(np.float64)
    params = {"pos_weight": np.array([2.0, 0.5, 1.5])}
    over_json = client.compute("torch.binary_cross_entropy_with_logits", y_true, logits, params=params)
    binary = client.compute_binary("torch.binary_cross_entropy_with_logits", y_true, logits, params=params)
    assert binary.loss == over_json.loss and binary.hessian is None
    assert binary.gradient.tobytes() == over_json.gradient.tobytes()
    assert binary.per_sample.tobytes() == over_json.per_sample.tobytes()
    labels = np.array([0, 2, 1, 2], dtype=np.int64)
    probs = RNG.dirichlet(np.ones(3), 4)
    assert (client.compute_binary("sparse_categorical_crossentropy", labels, probs).gradient.tobytes()
            == client.compute("sparse_categorical_crossentropy", labels, probs).gradient.tobytes())


def test_binary_errors_are_typed_by_status(client):
    with pytest.raises(NotFound) as caught:
        client.compute_binary("no_such_loss", np.zeros((2, 2)), np.ones((2, 2)))
    assert caught.value.status == 404 and "no_such_loss" in caught.value.detail
    with pytest.raises(InvalidInput) as caught:
        client.compute_binary("binary_crossentropy", np.array([1.0, 0.0]), np.array([0.5, 1.5]))
    assert caught.value.status == 422 and "y_pred" in caught.value.detail


@pytest.mark.parametrize("outputs", [None, ["loss", "gradient"]])
def test_binary_request_framing_matches_tritonclient(outputs):
    """The request body is the one tritonclient (the reference OIP client) writes for the same tensors:
    the same JSON header and the same raw bytes after it."""
    import tritonclient.http as triton

    from loss_client import _wire

    y_true = np.array([0, 2, 1], dtype=np.int64)
    y_pred = RNG.dirichlet(np.ones(3), 3).astype(np.float32)
    pos_weight = np.array([2.0, 0.5, 1.5])
    body, head_size = _wire.oip_request(y_true, y_pred, None, {"pos_weight": pos_weight, "axis": -1},
                                        "sum", outputs, "float32")
    inputs = []
    for name, array, datatype in (("y_true", y_true, "INT64"), ("y_pred", y_pred, "FP32"),
                                  ("pos_weight", pos_weight, "FP64")):
        tensor = triton.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=True)
        inputs.append(tensor)
    requested = None if outputs is None else [triton.InferRequestedOutput(n, binary_data=True) for n in outputs]
    expected, expected_head = triton.InferenceServerClient.generate_request_body(
        inputs, outputs=requested, parameters={"axis": -1, "reduction": "sum", "dtype": "float32"})
    assert orjson.loads(body[:head_size]) == orjson.loads(expected[:expected_head])
    assert body[head_size:] == expected[expected_head:]


def mocked_client(answer: httpx.Response, sent: list[httpx.Request] | None = None) -> LossClient:
    def reply(request: httpx.Request) -> httpx.Response:
        if sent is not None:
            sent.append(request)
        return answer

    http = httpx.Client(base_url="http://testserver", transport=httpx.MockTransport(reply))
    return LossClient("http://testserver", http=http)


def test_binary_response_framing_is_read_in_place():
    """Triton's response framing: binary outputs in header order after the JSON header, JSON `data`
    outputs beside them; binary ones are views of the response bytes."""
    gradient = RNG.normal(size=(3, 2)).astype(np.float32)
    loss = np.array([0.75])
    header = orjson.dumps({"model_name": "mse", "outputs": [
        {"name": "loss", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}},
        {"name": "per_sample", "datatype": "FP64", "shape": [3], "data": [0.5, 1.25, 0.5]},
        {"name": "gradient", "datatype": "FP32", "shape": [3, 2], "parameters": {"binary_data_size": 24}}]})
    answer = httpx.Response(200, headers={"Inference-Header-Content-Length": str(len(header))},
                            content=header + loss.tobytes() + gradient.tobytes())
    sent: list[httpx.Request] = []
    with mocked_client(answer, sent) as c:
        result = c.compute_binary("mse", np.zeros((3, 2)), np.ones((3, 2)))
    assert sent[0].url.path == "/v2/models/mse/infer"
    assert sent[0].headers["accept-encoding"] == "identity", "binary outputs are not worth gzip"
    assert result.loss == 0.75 and result.meta == {"model_name": "mse"}
    assert result.per_sample.tolist() == [0.5, 1.25, 0.5]
    assert result.gradient.dtype == np.float32 and result.gradient.tobytes() == gradient.tobytes()
    assert not result.gradient.flags.owndata and not result.gradient.flags.writeable
    truncated = httpx.Response(200, headers={"Inference-Header-Content-Length": str(len(header))},
                               content=header + loss.tobytes() + gradient.tobytes()[:-4])
    with mocked_client(truncated) as c, pytest.raises(LossServiceError, match="truncated at output 'gradient'"):
        c.compute_binary("mse", np.zeros((3, 2)), np.ones((3, 2)))


@pytest.mark.parametrize("status, expected", [(400, BadRequest), (404, NotFound), (413, PayloadTooLarge),
                                              (422, InvalidInput), (503, Overloaded)])
def test_oip_error_bodies_map_to_the_same_classes(status, expected):
    answer = httpx.Response(status, json={"error": "y_pred values must be in [0, 1]; y_pred[1] = 1.5."})
    with mocked_client(answer) as c, pytest.raises(expected) as caught:
        c.compute_binary("bce", np.zeros(2), np.array([0.5, 1.5]))
    assert type(caught.value) is expected and caught.value.status == status
    assert caught.value.detail == "y_pred values must be in [0, 1]; y_pred[1] = 1.5." and caught.value.type is None
    assert str(caught.value) == f"{status} {expected.__name__}: {caught.value.detail}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_half_precision_inputs_are_the_same_numbers_over_json_and_binary(client, dtype):
    """float16 and bfloat16 y_pred: /v1 JSON, OIP FP16/BF16 tensors and the float64 array of the same
    values give the same result bit for bit (orjson alone writes float16 in float32's digits)."""
    import ml_dtypes

    y_true, y_pred = bce_inputs(20, 3)
    for half in (np.float16, ml_dtypes.bfloat16):
        pred = y_pred.astype(half)
        wide = client.compute("binary_crossentropy", y_true, pred.astype(np.float64), dtype=dtype)
        for result in (client.compute("binary_crossentropy", y_true, pred, dtype=dtype),
                       client.compute_binary("binary_crossentropy", y_true, pred, dtype=dtype)):
            assert result.loss == wide.loss, half
            assert result.gradient.tobytes() == wide.gradient.tobytes(), half
