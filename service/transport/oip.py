"""The Open Inference Protocol v2 transport (``/v2``): JSON tensors and Triton's binary tensor extension.

A request is a JSON header (``{"id"?, "parameters"?, "inputs": [...], "outputs"?: [...]}``), followed,
when ``Inference-Header-Content-Length`` says so, by the raw little-endian row-major bytes of the
inputs that carry ``parameters.binary_data_size``, in input order. Binary inputs become NumPy views
of the body (``np.frombuffer``: no copy when the offset is aligned for the datatype); the response
uses the same framing for the outputs asked in binary. Each loss is a model; its array parameters
are optional input tensors, its scalar parameters, ``reduction`` and ``dtype`` are request
``parameters``. Errors are the engine's typed errors; bad framing is a ``FramingError`` (400).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import __version__
from ..engine import OUTPUTS, get_loss
from ..engine.compute import DEFAULT_OUTPUTS
from ..engine.errors import InvalidInput, LossServiceError
from ..engine.params import ARRAY_KINDS, INT_ARRAY
from ..engine.registry import Loss
from . import json as json_wire
from .call import ARRAY_FIELDS, Answer, Limits, LossCall, Plan, check_finite, prepare
from .call import where as where_in

HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ("binary_tensor_data",)

# wire datatype -> the little-endian NumPy dtype of its bytes
WIRE_DTYPES = {"FP64": np.dtype("<f8"), "FP32": np.dtype("<f4"), "FP16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
               "INT64": np.dtype("<i8"), "INT32": np.dtype("<i4"), "UINT8": np.dtype("u1"), "BOOL": np.dtype("?")}
FLOAT_TYPES = ("FP64", "FP32", "FP16", "BF16")
HALF_TYPES = ("FP32", "FP16", "BF16")  # computed in float32 unless parameters.dtype says otherwise
OUTPUT_DATATYPE = {"float64": "FP64", "float32": "FP32"}
TRANSPORT_PARAMETERS = ("reduction", "dtype", "binary_data_output")
REQUEST_KEYS = ("id", "parameters", "inputs", "outputs")


class FramingError(LossServiceError):
    """400: the request's framing (header, tensor sizes, datatypes) does not hold together."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=400, slug="bad-framing", title="Bad inference request framing")


# A loss is computed one way: every model has the one version "1", which the versioned paths
# (/v2/models/{name}/versions/{version}/...) accept beside the unversioned ones.
VERSIONS = ("1",)


class UnknownVersion(LossServiceError):
    """404: a versioned path naming a version the model does not have."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(detail=f"Model {name!r} has no version {version!r}; its versions: {', '.join(VERSIONS)} "
                                f"(or leave the version out of the path).", status=404, slug="unknown-version",
                         title="Unknown model version")


def check_version(name: str, version: str) -> None:
    """The model ``name`` exists (404 unknown loss otherwise) and has ``version``."""
    spec = get_loss(name)
    if version not in VERSIONS:
        raise UnknownVersion(spec.name, version)


def input_names(spec: Loss) -> tuple[str, ...]:
    return ARRAY_FIELDS + tuple(p.name for p in spec.params if p.kind in ARRAY_KINDS)


def output_names(spec: Loss) -> tuple[str, ...]:
    return tuple(name for name in OUTPUTS if name != "hessian" or spec.hessian)


def server_metadata() -> dict[str, Any]:
    return {"name": "loss-service", "version": __version__, "extensions": list(EXTENSIONS)}


def model_metadata(name: str) -> dict[str, Any]:
    """A loss as an OIP model: every dimension variable (-1), the rank depending on the loss."""
    spec = get_loss(name)
    arrays = {p.name: p for p in spec.params if p.kind in ARRAY_KINDS}

    def tensor(tensor_name: str) -> dict[str, Any]:
        integral = tensor_name in arrays and arrays[tensor_name].kind == INT_ARRAY
        out: dict[str, Any] = {"name": tensor_name, "datatype": "INT64" if integral else "FP64", "shape": [-1]}
        if tensor_name != "y_pred" and not (tensor_name == "y_true" and spec.y_true_required):
            out["parameters"] = {"optional": True}
        return out

    return {"name": spec.name, "versions": list(VERSIONS), "platform": "loss-service",
            "inputs": [tensor(n) for n in input_names(spec)],
            "outputs": [{"name": n, "datatype": "FP64", "shape": [-1]} for n in output_names(spec)]}


def _header(body: bytes, header_length: str | None) -> tuple[bytes, int]:
    """The JSON header and the offset where the binary tensors start."""
    if header_length is None:
        return body, len(body)
    value = header_length.strip()
    if not value.isdigit():
        raise FramingError(f"{HEADER_LENGTH} must be a non-negative integer (the JSON header's length in bytes); "
                           f"got {header_length!r}.")
    length = int(value)
    if length > len(body):
        raise FramingError(f"{HEADER_LENGTH} is {length:,} but the body has only {len(body):,} bytes; send the JSON "
                           f"header's length in bytes.")
    return body[:length], length


def _shape(tensor: dict, where: str, max_rank: int) -> tuple[int, ...]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise FramingError(f"{where}.shape must be a list of non-negative integers; got {shape!r:.60}.")
    if len(shape) > max_rank:
        raise InvalidInput(f"{tensor['name']} has {len(shape)} dimensions; send at most {max_rank}.", (tensor["name"],))
    return tuple(shape)


def _decode_tensor(tensor: Any, index: int, body: bytes, offset: int, limits: Limits,
                   may_hide_bools: bool = True) -> tuple[np.ndarray, int]:
    """One input tensor as NumPy, and the offset after its binary bytes (if it has some).

    ``may_hide_bools``: the header has ``true``/``false`` tokens that its small fields do not account for,
    so a numeric tensor's data may mix booleans with numbers, which NumPy would read as 1 and 0 (``[1, true]``
    becomes ``[1., 1.]``): only then is the list walked (Python speed), as the /v1 codec does."""
    where = f"inputs[{index}]"
    name = tensor["name"]
    datatype = tensor.get("datatype")
    if datatype not in WIRE_DTYPES:
        raise FramingError(f"{where}.datatype {datatype!r} is not supported; use one of {', '.join(WIRE_DTYPES)}.")
    wire_dtype = WIRE_DTYPES[datatype]
    shape = _shape(tensor, where, limits.max_rank)
    count = math.prod(shape)
    parameters = tensor.get("parameters", {})
    if not isinstance(parameters, dict):
        raise FramingError(f"{where}.parameters must be an object.")
    size = parameters.get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise FramingError(f"{where} has both data and parameters.binary_data_size; send one of them.")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FramingError(f"{where}.parameters.binary_data_size must be a non-negative integer; got {size!r}.")
        if size != count * wire_dtype.itemsize:
            raise FramingError(f"{where}.parameters.binary_data_size is {size:,} bytes but shape {list(shape)} of "
                               f"{datatype} takes {count * wire_dtype.itemsize:,}; send shape x datatype size bytes.")
        if offset + size > len(body):
            raise FramingError(f"The body ends {offset + size - len(body):,} bytes short of {where} ({name}'s "
                               f"{size:,} bytes of binary data); send every binary tensor whole, in input order.")
        arr = np.frombuffer(body, dtype=wire_dtype, count=count, offset=offset)
        if offset % wire_dtype.itemsize:  # unaligned: a copy computes faster than a view
            arr = arr.copy()
        offset += size
    else:
        data = tensor.get("data")
        if not isinstance(data, list):
            raise FramingError(f"{where} has neither data (a list) nor parameters.binary_data_size; send one of them.")
        try:
            arr = np.array(data, dtype=np.bool_ if datatype == "BOOL" else None)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is None or arr.dtype.kind not in ("b" if datatype == "BOOL" else "iuf") or arr.dtype == object:
            raise FramingError(f"{where}.data must be a (flat or nested) list of numbers"
                               f"{' or booleans' if datatype == 'BOOL' else ''}.")
        if arr.size != count:
            raise FramingError(f"{where}.data has {arr.size:,} values but shape {list(shape)} needs {count:,}.")
        if datatype != "BOOL" and may_hide_bools:
            found = json_wire.find_irregularity(data, max_rank=64)  # any depth: only a boolean matters here
            if found is not None and isinstance(found.node, bool):
                raise FramingError(f"{where}.data must hold numbers only for datatype {datatype}; "
                                   f"{where_in(f'{where}.data', found.path)} is {str(found.node).lower()} "
                                   f"(send BOOL tensors as their own input, or 1 and 0 as numbers).")
        if datatype not in FLOAT_TYPES and datatype != "BOOL" and arr.dtype.kind == "f":
            fractional = np.flatnonzero(arr.ravel() != np.trunc(arr.ravel()))
            if fractional.size:
                raise FramingError(f"{where}.data must hold integers for datatype {datatype}; value "
                                   f"{float(arr.ravel()[fractional[0]])!r} (flat index {int(fractional[0])}) is not one.")
        if datatype in FLOAT_TYPES:
            arr = arr.astype(np.float64 if datatype == "FP64" else np.float32, copy=False)
        elif datatype != "BOOL":
            arr = arr.astype(wire_dtype.newbyteorder("="), copy=False)
    if size is not None and datatype == "FP16":
        arr = arr.astype(np.float32)
    elif size is not None and datatype == "BF16":  # bfloat16 is float32's upper half
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    arr = arr.reshape(shape)
    if count == 0:
        raise InvalidInput(f"{name} is empty (shape {list(shape)}); send at least one number.", (name,))
    if datatype in FLOAT_TYPES:
        check_finite(arr, name)
    return arr, offset


def _outputs(obj: dict, spec: Loss, binary_default: bool) -> tuple[tuple[str, ...], dict[str, bool]]:
    if "outputs" not in obj:
        return DEFAULT_OUTPUTS, {n: binary_default for n in OUTPUTS}
    outputs = obj["outputs"]
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                 for o in outputs):
        raise FramingError("outputs must be a list of objects with a name.")
    names, binary = [], {}
    for i, out in enumerate(outputs):
        if out["name"] not in OUTPUTS:
            raise InvalidInput(f"outputs may only name {', '.join(OUTPUTS)}; got {out['name']!r}.", ("outputs", i))
        parameters = out.get("parameters", {})
        if not isinstance(parameters, dict) or not isinstance(parameters.get("binary_data", False), bool):
            raise FramingError(f"outputs[{i}].parameters must be an object whose binary_data is true or false.")
        names.append(out["name"])
        binary[out["name"]] = parameters.get("binary_data", binary_default)
    return tuple(names), binary


def decode(spec: Loss, body: bytes, header_length: str | None, limits: Limits) -> tuple[LossCall, dict]:
    """The request as a ``LossCall``, and how to answer it (``id``, which outputs go binary)."""
    header, offset = _header(body, header_length)
    obj = json_wire.parse_json(header)
    if not isinstance(obj, dict):
        raise FramingError("The inference request header must be a JSON object with inputs.")
    unknown = sorted(set(obj) - set(REQUEST_KEYS))
    if unknown:
        raise FramingError(f"The inference request has unknown field{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(map(repr, unknown))}; it may hold {', '.join(REQUEST_KEYS)}.")
    request_id = obj.get("id")
    if "id" in obj and not isinstance(request_id, str):
        raise FramingError(f"id must be a string; got {request_id!r:.40}.")
    parameters = obj.get("parameters", {})
    if not isinstance(parameters, dict):
        raise FramingError("parameters must be an object of loss parameters, reduction and dtype.")
    if not isinstance(parameters.get("binary_data_output", False), bool):
        raise FramingError("parameters.binary_data_output must be true or false.")
    inputs = obj.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise FramingError("inputs must be a non-empty list of tensors; send at least y_pred.")
    accepted = input_names(spec)
    small_fields = {**obj, "inputs": [{k: v for k, v in t.items() if k != "data"} if isinstance(t, dict) else t
                                      for t in inputs]}
    may_hide_bools = json_wire.count_bool_tokens(header) != json_wire.count_bools(small_fields)
    tensors: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise FramingError(f"inputs[{i}] must be an object with a name, shape and datatype.")
        name = tensor["name"]
        if name not in accepted:
            raise InvalidInput(f"inputs[{i}] is named {name!r}, which is not an input of {spec.name}; its inputs "
                               f"are {', '.join(accepted)}.", ("inputs", i, "name"))
        if name in tensors:
            raise InvalidInput(f"inputs[{i}] repeats the input {name!r}; send each input once.", ("inputs", i, "name"))
        tensors[name], offset = _decode_tensor(tensor, i, body, offset, limits, may_hide_bools)
        datatypes[name] = tensor["datatype"]
    if offset != len(body):
        raise FramingError(f"The body has {len(body) - offset:,} bytes after the JSON header and the binary tensors "
                           f"it declares; send binary_data_size for every binary input.")
    if "y_pred" not in tensors:
        raise InvalidInput("inputs has no y_pred; send the predictions as the input tensor y_pred.", ("y_pred",))
    dtype = parameters.get("dtype", "float32" if datatypes["y_pred"] in HALF_TYPES else "float64")
    outputs, binary = _outputs(obj, spec, parameters.get("binary_data_output", False))
    call = LossCall(spec, tensors.get("y_true"), tensors["y_pred"], tensors.get("sample_weight"),
                    params={k: v for k, v in parameters.items() if k not in TRANSPORT_PARAMETERS},
                    array_params={k: v for k, v in tensors.items() if k not in ARRAY_FIELDS},
                    reduction=parameters.get("reduction"), outputs=outputs, dtype=dtype)
    return call, {"id": request_id, "binary": binary}


def encode_result(spec: Loss, result, answer: dict) -> Answer:
    """The inference response: JSON only, or a JSON header followed by the binary outputs."""
    dtype = result.meta["dtype"]
    parameters: dict[str, Any] = {"reduction": result.meta["reduction"], "dtype": dtype}
    if "gradient" in result.meta:
        parameters["gradient"] = result.meta["gradient"]
    outputs, buffers = [], []
    for name in OUTPUTS:
        value = getattr(result, name)
        if value is None:
            continue
        arr = np.asarray(value, dtype=dtype)  # not ascontiguousarray: it makes the 0-d loss 1-d
        tensor: dict[str, Any] = {"name": name, "datatype": OUTPUT_DATATYPE[dtype], "shape": list(arr.shape)}
        flat = arr.reshape(-1)  # a view when contiguous, else the one copy
        if answer["binary"].get(name):
            tensor["parameters"] = {"binary_data_size": flat.nbytes}
            buffers.append(flat.astype(flat.dtype.newbyteorder("<"), copy=False))
        else:
            tensor["data"] = flat
        outputs.append(tensor)
    response = {"model_name": spec.name, "model_version": VERSIONS[-1], "parameters": parameters, "outputs": outputs}
    if answer["id"] is not None:
        response["id"] = answer["id"]
    header = json_wire.dumps(response)
    if not buffers:
        return Answer(header)
    return Answer(b"".join([header, *buffers]), "application/octet-stream", {HEADER_LENGTH: str(len(header))})


def infer_response(name: str, body: bytes, header_length: str | None, limits: Limits) -> Plan:
    """``POST /v2/models/{name}/infer``: the body (and its header length, if binary) in, the plan out."""
    spec = get_loss(name)  # an unknown model is a 404 before the body is looked at
    call, answer = decode(spec, body, header_length, limits)
    prepared = prepare(call, limits)
    return Plan(prepared.work, lambda: encode_result(spec, prepared.evaluate(), answer))
