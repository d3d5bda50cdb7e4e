"""Request bodies and response parsing, shared by the sync and async clients (no I/O here).

Each public client method builds a :class:`Call` (method, path, body, headers, and the function that
turns the answer into a result); the clients only send it. JSON bodies are written by orjson
straight from NumPy buffers; OIP binary bodies are a JSON header followed by the raw little-endian
bytes of each tensor (Triton's binary_tensor_data extension), and binary outputs are read back
with ``np.frombuffer`` on the response bytes, without a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from .errors import LossServiceError, error_from_body, error_from_response

OUTPUT_NAMES = ("loss", "per_sample", "gradient", "hessian")
HEADER_LENGTH = "Inference-Header-Content-Length"

# orjson writes these dtypes straight from the buffer; anything else is converted once in _default
_ORJSON_NATIVE = {"float64", "float32", "float16", "int64", "int32", "int16", "int8",
                  "uint64", "uint32", "uint16", "uint8", "bool"}

OIP_DATATYPES = {"FP64": np.dtype("<f8"), "FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"),
                 "INT64": np.dtype("<i8"), "INT32": np.dtype("<i4")}
_OIP_NAMES = {dtype.name: name for name, dtype in OIP_DATATYPES.items()}


@dataclass
class LossResult:
    """What a loss computation returns.

    ``loss`` is a float (an array with ``reduction="none"``); ``per_sample``, ``gradient`` and
    ``hessian`` are NumPy arrays in the computation's dtype, or None when not asked for (or, for
    ``gradient``, when the loss is not differentiable). ``meta`` is the service's ``meta`` block
    (``/v1``) or the OIP response's ``model_name``, ``id`` and ``parameters`` (``/v2``).
    """

    loss: float | np.ndarray | None
    per_sample: np.ndarray | None = None
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dtype(self) -> np.dtype | None:
        for value in (self.per_sample, self.gradient, self.hessian, self.loss):
            if isinstance(value, np.ndarray):
                return value.dtype
        return None


@dataclass
class Exercise:
    """Seeded inputs from ``POST /v1/exercises``, as NumPy arrays, plus the rest of the answer in ``meta``."""

    y_true: np.ndarray | None
    y_pred: np.ndarray
    sample_weight: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    method: str
    path: str
    parse: Callable[[int, bytes, Mapping[str, str]], Any]
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- JSON (/v1)

def _default(obj: Any) -> Any:
    """orjson's fallback: arrays it cannot write from their buffer (non-contiguous, byte-swapped,
    other dtypes) are made contiguous native float64/int64 once; NumPy scalars become Python numbers."""
    if isinstance(obj, np.ndarray):
        kind = obj.dtype.kind
        target = obj.dtype if obj.dtype.isnative and obj.dtype.name in _ORJSON_NATIVE else (
            np.int64 if kind in "iu" else np.bool_ if kind == "b" else np.float64)
        converted = np.ascontiguousarray(obj, dtype=target)
        if converted is obj:
            raise TypeError(f"cannot write an array of dtype {obj.dtype} as JSON")
        return converted
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def exact_for_json(value: Any) -> Any:
    """Half-precision arrays as float64: orjson writes float16 in float32's digits, which a float64
    computation would read as another number; every half value is exact in float64's digits."""
    if isinstance(value, np.ndarray) and value.dtype.itemsize == 2 and value.dtype.kind in "fV":
        return value.astype(np.float64)
    return value


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _parse_json(status: int, content: bytes, headers: Mapping[str, str]) -> Any:
    if status >= 400:
        raise error_from_response(status, content, dict(headers))
    return orjson.loads(content)


def json_call(method: str, path: str, body: Any = None, parse: Callable[[Any], Any] = lambda value: value,
              query: dict[str, str] | None = None) -> Call:
    content = None if body is None else dumps(body)
    headers = {} if body is None else {"Content-Type": "application/json"}
    return Call(method, path, lambda status, data, hdrs: parse(_parse_json(status, data, hdrs)), content, headers,
                query or {})


def loss_request(y_true: Any, y_pred: Any, sample_weight: Any, params: Mapping[str, Any] | None,
                 reduction: str | None, outputs: Sequence[str] | None, dtype: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"y_pred": exact_for_json(y_pred)}
    if params is not None:
        params = {key: exact_for_json(value) for key, value in params.items()}
    for key, value in (("y_true", exact_for_json(y_true)), ("sample_weight", exact_for_json(sample_weight)),
                       ("params", params), ("reduction", reduction), ("dtype", dtype)):
        if value is not None:
            body[key] = value
    if outputs is not None:
        body["outputs"] = list(outputs)
    return body


def _array(value: Any, dtype: np.dtype) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=dtype)


def loss_result(body: Mapping[str, Any]) -> LossResult:
    meta = dict(body.get("meta") or {})
    dtype = np.dtype(meta.get("dtype") or "float64")
    loss = body.get("loss")
    if loss is not None:   # a float32 loss comes as float32's shortest digits: read back the float32 value
        loss = np.asarray(loss, dtype=dtype) if isinstance(loss, list) else float(dtype.type(loss))
    return LossResult(loss=loss,
                      per_sample=_array(body.get("per_sample"), dtype), gradient=_array(body.get("gradient"), dtype),
                      hessian=_array(body.get("hessian"), dtype), meta=meta)


def batch_results(body: Mapping[str, Any]) -> list[LossResult | LossServiceError]:
    out: list[LossResult | LossServiceError] = []
    for item in body["results"]:
        if "error" in item and isinstance(item["error"], dict):
            out.append(error_from_body(int(item["error"].get("status") or 422), item["error"]))
        else:
            out.append(loss_result(item))
    return out


def exercise_result(body: Mapping[str, Any]) -> Exercise:
    y_pred = np.asarray(body["y_pred"])
    return Exercise(y_true=None if body.get("y_true") is None else np.asarray(body["y_true"]), y_pred=y_pred,
                    sample_weight=None if body.get("sample_weight") is None else np.asarray(body["sample_weight"]),
                    meta={k: v for k, v in body.items() if k not in ("y_true", "y_pred", "sample_weight")})


# --------------------------------------------------------------------------- OIP v2 binary (/v2)

def _oip_tensor(value: Any) -> tuple[str, np.ndarray]:
    """(OIP datatype, contiguous little-endian array) for an input; labels stay integers."""
    array = np.asarray(value)
    if array.dtype.name == "bfloat16":   # ml_dtypes.bfloat16: sent as its raw 2-byte words
        return "BF16", np.ascontiguousarray(array)
    kind = array.dtype.kind
    if array.dtype.name not in _OIP_NAMES:
        if kind in "iu":
            array = array.astype(np.int64)
        elif kind in "fb":
            array = array.astype(np.float64)
        else:
            raise TypeError(f"an OIP tensor must be numeric; got an array of dtype {array.dtype}")
    name = _OIP_NAMES[array.dtype.name]
    return name, np.ascontiguousarray(array, dtype=OIP_DATATYPES[name])


def oip_request(y_true: Any, y_pred: Any, sample_weight: Any, params: Mapping[str, Any] | None,
                reduction: str | None, outputs: Sequence[str] | None, dtype: str | None) -> tuple[bytes, int]:
    """The binary infer body and its JSON header's length. Array-valued params (lists, tuples,
    arrays) become input tensors of the same name; scalar ones go in the request's ``parameters``."""
    tensors: list[tuple[str, Any]] = [("y_true", y_true), ("y_pred", y_pred), ("sample_weight", sample_weight)]
    parameters: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, (list, tuple, np.ndarray)):
            tensors.append((key, value))
        elif value is not None:
            parameters[key] = value.item() if isinstance(value, np.generic) else value
    if reduction is not None:
        parameters["reduction"] = reduction
    if dtype is not None:
        parameters["dtype"] = dtype
    inputs, buffers = [], []
    for name, value in tensors:
        if value is None:
            continue
        datatype, array = _oip_tensor(value)
        inputs.append({"name": name, "shape": list(array.shape), "datatype": datatype,
                       "parameters": {"binary_data_size": array.nbytes}})
        buffers.append(array.reshape(-1).view(np.uint8))
    header: dict[str, Any] = {"inputs": inputs}
    if outputs is None:
        parameters["binary_data_output"] = True
    else:
        header["outputs"] = [{"name": name, "parameters": {"binary_data": True}} for name in outputs]
    if parameters:
        header["parameters"] = parameters
    head = orjson.dumps(header)
    return b"".join([head, *buffers]), len(head)


def oip_result(reduction: str | None) -> Callable[[int, bytes, Mapping[str, str]], LossResult]:
    def parse(status: int, content: bytes, headers: Mapping[str, str]) -> LossResult:
        if status >= 400:
            raise error_from_response(status, content, dict(headers))
        length = headers.get(HEADER_LENGTH)
        head_size = int(length) if length is not None else len(content)
        header = orjson.loads(memoryview(content)[:head_size])
        offset = head_size
        values: dict[str, Any] = {}
        for output in header.get("outputs") or []:
            dtype = OIP_DATATYPES.get(output.get("datatype", ""))
            if dtype is None:
                raise error_from_body(status, {"error": f"unexpected output datatype {output.get('datatype')!r}"})
            shape = tuple(output.get("shape") or ())
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:
                array = np.asarray(output["data"], dtype=dtype).reshape(shape)
            else:
                if offset + size > len(content):
                    raise error_from_body(status, {"error": f"the response is truncated at output {output['name']!r}"})
                array = np.frombuffer(content, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
                offset += size
            values[output["name"]] = array
        loss = values.get("loss")
        if loss is not None and reduction != "none" and loss.size == 1:
            loss = float(loss.reshape(-1)[0])
        return LossResult(loss=loss, per_sample=values.get("per_sample"), gradient=values.get("gradient"),
                          hessian=values.get("hessian"),
                          meta={k: v for k, v in header.items() if k != "outputs"})
    return parse
