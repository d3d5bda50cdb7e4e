"""Open Inference Protocol v2 bodies (``/v2``), as KServe's REST protocol defines them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

DATATYPES = ["FP64", "FP32", "FP16", "BF16", "INT64", "INT32", "UINT8", "BOOL"]


class OipError(BaseModel):
    """Every non-200 answer of /v2: the same sentence /v1 puts in a problem's ``detail``."""

    error: str = Field(description="What was wrong and how to fix it.")


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str] = Field(description='Protocol extensions: "binary_tensor_data" (Triton\'s binary tensors).')


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 for a variable dimension.")
    parameters: dict[str, Any] | None = None


class ModelMetadata(BaseModel):
    """A loss as a model: inputs y_true, y_pred, sample_weight and its array parameters; outputs loss,
    per_sample, gradient and (where offered) hessian."""

    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class InferOutput(BaseModel):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = Field(None, description="binary_data_size when the data follows the header.")
    data: list[float] | None = Field(None, description="Flattened row-major values (JSON outputs).")


class InferResponse(BaseModel):
    """The JSON part of the response; with binary outputs it is followed by their raw little-endian
    bytes, its length in the Inference-Header-Content-Length response header."""

    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferOutput]


INFER_REQUEST_SCHEMA = {
    "type": "object",
    "description": "An inference request: the tensors y_pred, y_true, sample_weight and the loss's array "
                   "parameters as inputs; the loss's scalar parameters, reduction and dtype in parameters. With "
                   "Triton's binary extension the JSON header is followed by the inputs' raw little-endian bytes "
                   "(each input's parameters.binary_data_size; the header's length in "
                   "Inference-Header-Content-Length).",
    "required": ["inputs"],
    "properties": {
        "id": {"type": "string"},
        "parameters": {"type": "object", "description": "reduction, dtype (float64 or float32), binary_data_output "
                                                        "(all outputs binary) and the loss's scalar parameters."},
        "inputs": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "datatype": {"type": "string", "enum": DATATYPES},
                "parameters": {"type": "object", "properties": {"binary_data_size": {"type": "integer", "minimum": 0}}},
                "data": {"type": "array", "description": "Row-major values, flat or nested."}}}},
        "outputs": {"type": "array", "items": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string", "enum": ["loss", "per_sample", "gradient", "hessian"]},
                           "parameters": {"type": "object",
                                          "properties": {"binary_data": {"type": "boolean"}}}}}}},
}
