"""Hostile /v2 framing, in process: each case is a 400 (or the 4xx /v1 gives) with OIP's {"error": ...}
naming the problem, never a 500, and the service answers normally afterwards."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.transport import oip

from .conftest import make_client

pytestmark = pytest.mark.anyio

HEADER = oip.HEADER_LENGTH
Y_TRUE = np.array([[0.0, 1.0], [1.0, 0.0]])
Y_PRED = np.array([[0.25, 0.75], [0.5, 0.5]])


def binary_request(inputs: list[dict], payload: bytes, **extra) -> tuple[bytes, dict]:
    header = json.dumps({"inputs": inputs, **extra}).encode()
    return header + payload, {HEADER: str(len(header)), "Content-Type": "application/octet-stream"}


def tensor(name: str, shape, datatype="FP64", size=None, **more) -> dict:
    out = {"name": name, "shape": shape, "datatype": datatype, **more}
    if size is not None:
        out["parameters"] = {"binary_data_size": size}
    return out


GOOD_INPUTS = [tensor("y_true", [2, 2], size=32), tensor("y_pred", [2, 2], size=32)]
GOOD_PAYLOAD = Y_TRUE.tobytes() + Y_PRED.tobytes()


def _cases():
    body, headers = binary_request(GOOD_INPUTS, GOOD_PAYLOAD)
    yield "header length beyond the body", body, {**headers, HEADER: str(len(body) + 1)}, 400, "body has only"
    yield "header length not a number", body, {**headers, HEADER: "12abc"}, 400, "non-negative integer"
    yield "header length cuts the JSON", body, {**headers, HEADER: "10"}, 400, "not valid JSON"
    yield "non-JSON header", b"\x00\x01garbage" + GOOD_PAYLOAD, {HEADER: "9"}, 400, "not valid JSON"
    yield "header not an object", *binary_request_raw(b"[1, 2]", b""), 400, "JSON object"
    yield ("binary size disagrees with shape x datatype",
           *binary_request([tensor("y_true", [2, 2], size=32), tensor("y_pred", [2, 2], size=16)], GOOD_PAYLOAD[:48]),
           400, "takes 32")
    yield ("truncated body", *binary_request(GOOD_INPUTS, GOOD_PAYLOAD[:40]), 400, "short of inputs[1]")
    yield ("bytes after the last tensor", *binary_request(GOOD_INPUTS, GOOD_PAYLOAD + b"\0" * 8), 400, "8 bytes after")
    yield ("unknown datatype", *binary_request([tensor("y_true", [2, 2], "FP128", size=32),
                                                tensor("y_pred", [2, 2], size=32)], GOOD_PAYLOAD), 400, "'FP128'")
    yield ("negative dimension", *binary_request([tensor("y_pred", [-4], size=32)], GOOD_PAYLOAD[:32]), 400,
           "non-negative integers")
    yield ("data length differs from the shape", *binary_request(
        [tensor("y_true", [2, 2], data=[0, 1, 1]), tensor("y_pred", [2, 2], size=32)], Y_PRED.tobytes()),
        400, "has 3 values but shape [2, 2] needs 4")
    yield ("data holds strings", *binary_request(
        [tensor("y_true", [2], data=["a", "b"]), tensor("y_pred", [2], data=[0.5, 0.5])], b""), 400, "numbers")
    yield ("no data and no binary size", *binary_request(
        [tensor("y_true", [2]), tensor("y_pred", [2], data=[0.5, 0.5])], b""), 400, "neither data")
    yield ("both data and binary size", *binary_request(
        [tensor("y_pred", [1], size=8, data=[0.5])], b"\0" * 8), 400, "both data")
    yield ("huge shape, small size", *binary_request([tensor("y_pred", [10**12, 10**12], size=8)], b"\0" * 8),
           400, "takes")
    yield ("unknown request field", *binary_request(GOOD_INPUTS, GOOD_PAYLOAD, extra=1), 400, "'extra'")
    yield ("no inputs", *binary_request([], b""), 400, "non-empty list")
    yield ("unknown input", *binary_request([tensor("y_pred", [2, 2], size=32), tensor("logits", [2, 2], size=32)],
                                            GOOD_PAYLOAD), 422, "'logits'")
    yield ("repeated input", *binary_request([tensor("y_pred", [2, 2], size=32), tensor("y_pred", [2, 2], size=32)],
                                             GOOD_PAYLOAD), 422, "repeats")
    yield ("no y_pred", *binary_request([tensor("y_true", [2, 2], size=32)], GOOD_PAYLOAD[:32]), 422, "no y_pred")
    yield ("NaN in binary data", *binary_request(GOOD_INPUTS, Y_TRUE.tobytes() + np.array([0.5, np.nan, 0.5, 0.5])
                                                 .tobytes()), 422, "y_pred[0][1] is NaN")
    yield ("too many dimensions", *binary_request([tensor("y_pred", [1] * 9, size=8)], b"\0" * 8), 422,
           "9 dimensions")
    yield ("empty tensor", *binary_request([tensor("y_pred", [0, 2], size=0)], b""), 422, "is empty")
    yield ("unknown output", *binary_request(GOOD_INPUTS, GOOD_PAYLOAD, outputs=[{"name": "logits"}]), 422,
           "'logits'")


def binary_request_raw(header: bytes, payload: bytes) -> tuple[bytes, dict]:
    return header + payload, {HEADER: str(len(header))}


CASES = list(_cases())


@pytest.mark.parametrize("what, body, headers, status, message", CASES, ids=[c[0] for c in CASES])
async def test_hostile_framing_is_a_4xx_with_a_message(what, body, headers, status, message):
    async with make_client() as client:
        response = await client.post("/v2/models/mse/infer", content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        error = response.json()
        assert set(error) == {"error"} and message in error["error"], error
        # the service is healthy afterwards and still computes the well-framed request
        assert (await client.get("/v2/health/ready")).status_code == 200
        good, good_headers = binary_request(GOOD_INPUTS, GOOD_PAYLOAD)
        ok = await client.post("/v2/models/mse/infer", content=good, headers=good_headers)
        assert ok.status_code == 200 and ok.json()["outputs"][0]["data"] == [np.mean((Y_PRED - Y_TRUE) ** 2)]


async def test_binary_response_framing():
    async with make_client() as client:
        body, headers = binary_request(GOOD_INPUTS, GOOD_PAYLOAD, parameters={"binary_data_output": True})
        response = await client.post("/v2/models/mse/infer", content=body, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert [o["name"] for o in header["outputs"]] == ["loss", "per_sample", "gradient"]
    assert len(response.content) == length + sum(sizes) == length + 8 + 16 + 32
    gradient = np.frombuffer(response.content[length + 24:], dtype="<f8").reshape(header["outputs"][2]["shape"])
    np.testing.assert_array_equal(gradient, (Y_PRED - Y_TRUE) / 2)


async def test_binary_inputs_are_views_of_the_body_when_aligned():
    # a header padded to 8 bytes puts the float64 tensors on aligned offsets: no copy is made
    inputs = [tensor("y_true", [2, 2], size=32), tensor("y_pred", [2, 2], size=32)]
    header = json.dumps({"inputs": inputs}).encode()
    header += b" " * (-len(header) % 8)
    body = header + GOOD_PAYLOAD
    from service.engine import get_loss
    from service.transport.call import Limits

    call, _ = oip.decode(get_loss("mse"), body, str(len(header)), Limits(100, 8, 1, 1000))
    assert np.shares_memory(call.y_pred, np.frombuffer(body, dtype=np.uint8))
    np.testing.assert_array_equal(call.y_pred, Y_PRED)


async def test_limits_apply_to_v2():
    async with make_client(max_elements=6) as client:
        body, headers = binary_request(GOOD_INPUTS, GOOD_PAYLOAD)
        response = await client.post("/v2/models/mse/infer", content=body, headers=headers)
        assert response.status_code == 413 and "LOSS_SERVICE_MAX_ELEMENTS" in response.json()["error"]
    async with make_client(max_body_bytes=100) as client:
        response = await client.post("/v2/models/mse/infer", content=body, headers=headers)
        assert response.status_code == 413 and "LOSS_SERVICE_MAX_BODY_BYTES" in response.json()["error"]


async def test_v1_errors_stay_problem_json_and_unknown_v2_routes_are_oip_errors():
    async with make_client() as client:
        v1 = await client.post("/v1/losses/no_such_loss", json={"y_true": [1], "y_pred": [1]})
        assert v1.headers["content-type"] == "application/problem+json"
        v2 = await client.get("/v2/models/mse/versions")
        assert v2.status_code == 404 and "There is no route" in v2.json()["error"]
        wrong_type = await client.post("/v2/models/mse/infer", content=b"{}", headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415 and set(wrong_type.json()) == {"error"}
        # the sentence names both media types /v2 accepts (JSON and the binary extension's octet-stream)
        assert "application/json" in wrong_type.json()["error"]
        assert "application/octet-stream" in wrong_type.json()["error"]
        v1_wrong = await client.post("/v1/losses/mse", content=b"{}", headers={"Content-Type": "text/plain"})
        assert v1_wrong.status_code == 415 and "octet-stream" not in v1_wrong.json()["detail"]


@pytest.mark.parametrize(("data", "at"), [([1.0, True, 2.0, 3.0], "inputs[1].data[1] is true"),
                                          ([[1.0, 2.0], [False, 3.0]], "inputs[1].data[1][0] is false")])
async def test_a_boolean_among_numbers_is_refused_not_read_as_one(data, at):
    # NumPy would read [1.0, true] as [1.0, 1.0]; the header's true/false tokens give it away
    body = {"inputs": [{"name": "y_true", "shape": [2, 2], "datatype": "FP64", "data": [0, 0, 0, 0]},
                       {"name": "y_pred", "shape": [2, 2], "datatype": "FP64", "data": data}],
            "parameters": {"binary_data_output": False}}
    async with make_client() as client:
        response = await client.post("/v2/models/mse/infer", json=body)
        assert response.status_code == 400 and at in response.json()["error"], response.text
        body["inputs"][1]["data"] = [1.0, 1.0, 2.0, 3.0]  # the same request with numbers (and the parameter's false)
        assert (await client.post("/v2/models/mse/infer", json=body)).status_code == 200


async def test_a_fraction_in_an_integer_tensor_is_refused_not_truncated():
    body = {"inputs": [{"name": "y_true", "shape": [2], "datatype": "INT64", "data": [0, 1.5]},
                       {"name": "y_pred", "shape": [2, 2], "datatype": "FP64", "data": [[0.2, 0.8], [0.5, 0.5]]}]}
    async with make_client() as client:
        response = await client.post("/v2/models/torch.cross_entropy/infer", json=body)
        assert response.status_code == 400 and "1.5 (flat index 1)" in response.json()["error"], response.text
        body["inputs"][0]["data"] = [0, 1.0]  # an integral float is an integer
        assert (await client.post("/v2/models/torch.cross_entropy/infer", json=body)).status_code == 200


async def test_versioned_paths_serve_the_one_version_and_refuse_others():
    """/v2/models/{name}/versions/{version}/...: version "1" (the metadata's only one) answers as the
    unversioned path does; another version, or an unknown model, is a 404 OIP error saying which."""
    body, headers = binary_request(GOOD_INPUTS, GOOD_PAYLOAD)
    async with make_client() as client:
        meta = (await client.get("/v2/models/mse")).json()
        assert meta["versions"] == ["1"]
        assert (await client.get("/v2/models/mse/versions/1")).json() == meta
        assert (await client.get("/v2/models/mse/versions/1/ready")).json() == {"name": "mean_squared_error",
                                                                              "ready": True}
        plain = await client.post("/v2/models/mse/infer", content=body, headers=headers)
        versioned = await client.post("/v2/models/mse/versions/1/infer", content=body, headers=headers)
        assert plain.status_code == versioned.status_code == 200
        assert versioned.content == plain.content and versioned.json()["model_version"] == "1"
        for path in ("/v2/models/mse/versions/2", "/v2/models/mse/versions/2/ready"):
            r = await client.get(path)
            assert r.status_code == 404 and "has no version '2'" in r.json()["error"], (path, r.text)
        r = await client.post("/v2/models/mse/versions/2/infer", content=body, headers=headers)
        assert r.status_code == 404 and "has no version '2'" in r.json()["error"]
        r = await client.get("/v2/models/nosuchloss/versions/1")
        assert r.status_code == 404 and "no loss named" in r.json()["error"]
