"""Array fields: documented in OpenAPI as nested number arrays, validated by ``service.transport.json``.

Pydantic leaves these fields untouched (``Any``), so large arrays never become Python-validated
objects; the wire layer turns them into NumPy with precise, index-naming errors.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import WithJsonSchema

_NESTED = {
    "anyOf": [
        {"type": "number"},
        {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "array", "items": {}}]}},
    ],
}

NDArray = Annotated[Any, WithJsonSchema({
    **_NESTED, "description": "A JSON number or nested arrays of numbers, row-major (NumPy order). "
                              "NaN, Infinity, strings and booleans are rejected (422)."})]
OptionalNDArray = Annotated[Any, WithJsonSchema({
    "anyOf": [*_NESTED["anyOf"], {"type": "null"}],
    "description": "A JSON number, nested arrays of numbers, or null."})]
