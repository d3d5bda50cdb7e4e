"""The Open Inference Protocol v2 (/v2) with tritonclient, a real OIP client, against a live server:
every loss in binary and JSON equal to /v1 bit for bit in float64, half precision, and OIP errors."""

from __future__ import annotations

import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from service.engine import all_losses
from service.engine.params import ARRAY, ARRAY_KINDS
from service.exercises import draft
from service.transport.call import Limits

from .conftest import live_server

LIMITS = Limits(max_elements=10**6, max_rank=8, max_batch_items=10, max_work=10**8)
SEED = 1201


@pytest.fixture(scope="module")
def server():
    with live_server() as srv:
        yield srv


@pytest.fixture(scope="module")
def oip(server):
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


def outputs_of(spec) -> list[str]:
    return ["loss", "per_sample", "gradient"] + (["hessian"] if spec.hessian else [])


def exercise(spec):
    """The loss's seeded exercise: inputs its domain accepts, with the parameters that go with them."""
    ex = draft(spec, None, None, SEED, limits=LIMITS).finish()
    arrays = {p.name: np.asarray(ex.params[p.name]) for p in spec.params
              if p.kind in ARRAY_KINDS and ex.params[p.name] is not None}
    scalars = {p.name: ex.params[p.name] for p in spec.params
               if p.kind not in ARRAY_KINDS and ex.params[p.name] != p.default}
    return ex, arrays, scalars


def via_v1(server, spec, ex, arrays, scalars) -> dict:
    body = {"y_true": ex.y_true.tolist(), "y_pred": ex.y_pred.tolist(), "outputs": outputs_of(spec),
            "params": {**scalars, **{k: v.tolist() for k, v in arrays.items()}}}
    response = httpx.post(f"{server.url}/v1/losses/{spec.name}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def via_v2(oip, spec, ex, arrays, scalars, binary: bool):
    tensors = {"y_true": ex.y_true, "y_pred": ex.y_pred, **arrays}
    inputs = []
    for name, value in tensors.items():
        integral = any(p.name == name and p.kind != ARRAY for p in spec.params)
        value = np.asarray(value, dtype=np.int64 if integral else np.float64)
        tensor = triton.InferInput(name, list(value.shape), "INT64" if integral else "FP64")
        tensor.set_data_from_numpy(value, binary_data=binary)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in outputs_of(spec)]
    return oip.infer(spec.name, inputs, outputs=outputs, parameters=scalars or None)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("spec", all_losses(), ids=lambda s: s.name)
def test_every_loss_through_v2_equals_v1(server, oip, spec, binary):
    ex, arrays, scalars = exercise(spec)
    expected = via_v1(server, spec, ex, arrays, scalars)
    result = via_v2(oip, spec, ex, arrays, scalars, binary)
    for name in outputs_of(spec):
        got = result.as_numpy(name)
        if expected.get(name) is None:  # not differentiable: /v1 says null, /v2 leaves the output out
            assert got is None and "gradient" in result.get_response()["parameters"]
            continue
        want = np.asarray(expected[name], dtype=np.float64)
        assert got.dtype == np.float64 and got.shape == want.shape, name
        assert np.array_equal(got, want), (name, got, want)


def test_outputs_default_to_binary_and_mixed_requests(server, oip):
    y_true, y_pred = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.3, 0.7], [0.6, 0.4]])
    inputs = [triton.InferInput("y_true", [2, 2], "FP64"), triton.InferInput("y_pred", [2, 2], "FP64")]
    inputs[0].set_data_from_numpy(y_true, binary_data=False)  # one JSON input, one binary
    inputs[1].set_data_from_numpy(y_pred, binary_data=True)
    everything = oip.infer("mse", inputs)  # no outputs asked: binary_data_output, the default three
    assert [o["name"] for o in everything.get_response()["outputs"]] == ["loss", "per_sample", "gradient"]
    assert all("binary_data_size" in o["parameters"] for o in everything.get_response()["outputs"])
    mixed = oip.infer("mse", inputs, outputs=[triton.InferRequestedOutput("gradient", binary_data=False),
                                              triton.InferRequestedOutput("loss", binary_data=True)])
    assert [o["name"] for o in mixed.get_response()["outputs"]] == ["loss", "gradient"]
    assert "data" in mixed.get_response()["outputs"][1]
    np.testing.assert_array_equal(mixed.as_numpy("gradient"), (y_pred - y_true) / 2)
    assert mixed.as_numpy("loss") == everything.as_numpy("loss") == np.mean((y_pred - y_true) ** 2)


@pytest.mark.parametrize("datatype, dtype, binary", [  # tritonclient sends BF16 only as binary data
    ("FP32", np.float32, True), ("FP32", np.float32, False), ("FP16", np.float16, True), ("FP16", np.float16, False),
    ("BF16", ml_dtypes.bfloat16, True)])
def test_half_precision_computes_in_float32(server, oip, datatype, dtype, binary):
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    y_pred = np.array([[0.25, 0.5, 0.25], [0.125, 0.75, 0.125]])
    inputs = [triton.InferInput("y_true", [2, 3], datatype), triton.InferInput("y_pred", [2, 3], datatype)]
    for tensor, value in zip(inputs, (y_true, y_pred)):
        tensor.set_data_from_numpy(value.astype(dtype), binary_data=binary)
    result = oip.infer("categorical_crossentropy", inputs,
                       outputs=[triton.InferRequestedOutput(n, binary_data=binary) for n in ("loss", "gradient")])
    v1 = httpx.post(f"{server.url}/v1/losses/categorical_crossentropy", timeout=30, json={
        "y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "dtype": "float32"}).json()
    assert result.get_output("loss")["datatype"] == "FP32"
    assert result.as_numpy("loss").dtype == np.float32
    # these values are exact in every half format, so float32 on both sides gives the same bits
    assert result.as_numpy("loss") == np.float32(v1["loss"])
    np.testing.assert_array_equal(result.as_numpy("gradient"), np.asarray(v1["gradient"], dtype=np.float32))


def test_parameters_reduction_and_dtype(server, oip):
    y_true, y_pred = np.array([[0.0, 1.0]]), np.array([[2.0, 1.0]])
    inputs = [triton.InferInput("y_true", [1, 2], "FP32"), triton.InferInput("y_pred", [1, 2], "FP32")]
    for tensor, value in zip(inputs, (y_true, y_pred)):
        tensor.set_data_from_numpy(value.astype(np.float32))
    result = oip.infer("huber", inputs, parameters={"delta": 0.5, "reduction": "sum", "dtype": "float64"})
    assert result.get_output("loss")["datatype"] == "FP64"
    assert result.as_numpy("loss") == 0.5 * (2.0 - 0.25) / 2  # linear part: delta * (|e| - delta/2), mean of 2
    assert result.get_response()["parameters"]["reduction"] == "sum"


def test_metadata_health_and_readiness(server, oip):
    assert oip.is_server_live() and oip.is_server_ready()
    assert oip.is_model_ready("MeanSquaredError")
    assert "binary_tensor_data" in oip.get_server_metadata()["extensions"]
    meta = oip.get_model_metadata("ctc")
    assert meta["name"] == "ctc"
    assert [t["name"] for t in meta["inputs"]] == ["y_true", "y_pred", "sample_weight"]
    torch_ctc = oip.get_model_metadata("torch.ctc_loss")
    assert {"input_lengths", "target_lengths"} <= {t["name"] for t in torch_ctc["inputs"]}
    assert {t["name"]: t["datatype"] for t in torch_ctc["inputs"]}["input_lengths"] == "INT64"
    mse = oip.get_model_metadata("mse")
    assert [t["name"] for t in mse["outputs"]] == ["loss", "per_sample", "gradient", "hessian"]
    no_hessian = next(s for s in all_losses() if not s.hessian)
    assert "hessian" not in [t["name"] for t in oip.get_model_metadata(no_hessian.name)["outputs"]]


def _infer(oip, model, y_true, y_pred, **kwargs):
    inputs = [triton.InferInput("y_true", list(y_true.shape), "FP64"),
              triton.InferInput("y_pred", list(y_pred.shape), "FP64")]
    inputs[0].set_data_from_numpy(y_true)
    inputs[1].set_data_from_numpy(y_pred)
    return oip.infer(model, inputs, **kwargs)


@pytest.mark.parametrize("model, parameters, status, v1_params, y_pred", [
    ("no_such_loss", None, "404", None, [[0.5, 0.5]]),
    ("huber", {"delta": -1.0}, "422", {"delta": -1.0}, [[0.5, 0.5]]),
    ("huber", {"nope": 1}, "422", {"nope": 1}, [[0.5, 0.5]]),
    ("binary_crossentropy", None, "422", None, [[0.5, 1.5]]),  # a domain error
])
def test_errors_carry_the_v1_sentence(server, oip, model, parameters, status, v1_params, y_pred):
    y_true, y_pred = np.array([[0.0, 1.0]]), np.array(y_pred)
    with pytest.raises(InferenceServerException) as raised:
        _infer(oip, model, y_true, y_pred, parameters=parameters)
    v1 = httpx.post(f"{server.url}/v1/losses/{model}", timeout=30, json={
        "y_true": y_true.tolist(), "y_pred": y_pred.tolist(), **({"params": v1_params} if v1_params else {})})
    assert raised.value.status() == status == str(v1.status_code)
    assert raised.value.message() == v1.json()["detail"]


def test_tritonclient_with_a_model_version(server, oip):
    """tritonclient's model_version puts /versions/{v} in every path: "1" computes as the unversioned
    path does; another version is tritonclient's InferenceServerException with the 404's message."""
    y_true, y_pred = np.array([[0.0, 1.0]]), np.array([[0.25, 0.5]])
    assert oip.is_model_ready("mse", model_version="1")
    assert oip.get_model_metadata("mse", model_version="1") == oip.get_model_metadata("mse")
    versioned = _infer(oip, "mse", y_true, y_pred, model_version="1")
    plain = _infer(oip, "mse", y_true, y_pred)
    assert versioned.as_numpy("loss").tobytes() == plain.as_numpy("loss").tobytes()
    assert versioned.get_response()["model_version"] == "1"
    with pytest.raises(InferenceServerException, match="has no version '7'"):
        _infer(oip, "mse", y_true, y_pred, model_version="7")
    assert not oip.is_model_ready("mse", model_version="7")
