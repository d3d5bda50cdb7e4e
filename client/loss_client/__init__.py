"""A typed Python client of the loss service.

    from loss_client import LossClient, InvalidInput

    with LossClient("http://127.0.0.1:8000", api_key=None) as client:
        result = client.compute("mse", [[0.0, 1.0]], [[1.0, 1.0]])
        result.loss, result.per_sample, result.gradient    # 0.5, array([0.5]), array([[1., 0.]])

JSON (``/v1``) for everything, and the Open Inference Protocol v2 with binary tensors (``/v2``) for
large NumPy arrays: ``client.compute(..., transport="oip")``. Errors are typed by status
(:class:`InvalidInput`, :class:`NotFound`, :class:`PayloadTooLarge`, :class:`Overloaded`...), all
:class:`LossServiceError`.
"""

from ._wire import Exercise, LossResult
from .client import AsyncLossClient, ComputeOptions, GradeOptions, LossClient
from .errors import (
    BadRequest,
    FieldError,
    InvalidInput,
    LossServiceError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    Unauthorized,
    UnsupportedMediaType,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncLossClient", "BadRequest", "ComputeOptions", "Exercise", "FieldError", "GradeOptions", "InvalidInput",
    "LossClient", "LossResult", "LossServiceError", "MethodNotAllowed", "NotFound", "Overloaded", "PayloadTooLarge",
    "RequestTimeout", "Unauthorized", "UnsupportedMediaType",
]
