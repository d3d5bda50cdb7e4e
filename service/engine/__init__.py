"""The loss engine: pure NumPy, no web imports, usable as a library.

>>> from service.engine import compute
>>> r = compute("mse", [[0.0, 1.0]], [[1.0, 1.0]])
>>> float(r.loss)
0.5
"""

from . import (  # noqa: F401 - registers the losses
    boosting,
    embedding,
    hinge,
    metric_learning,
    other,
    polyloss,
    probabilistic,
    regression,
    segmentation,
    sequence,
    torch_losses,
)
from .compute import BYTES_PER_WORK, DEFAULT_OUTPUTS, DTYPES, OUTPUTS, PreparedCall, Result, compute, prepare_call
from .errors import (
                     DomainError,
                     InvalidInput,
                     LimitExceeded,
                     LossServiceError,
                     MalformedJSON,
                     NonFiniteResult,
                     ParameterError,
                     ShapeError,
                     UnknownLoss,
                     UnsupportedOutput,
)
from .reduction import ALL_REDUCTIONS, REDUCTIONS
from .registry import Loss, all_losses, get_loss, name_key

__all__ = [
    "BYTES_PER_WORK", "DEFAULT_OUTPUTS", "DTYPES", "OUTPUTS", "REDUCTIONS", "ALL_REDUCTIONS", "DomainError", "InvalidInput", "LimitExceeded", "Loss",
    "LossServiceError", "MalformedJSON", "NonFiniteResult", "ParameterError", "PreparedCall", "Result", "ShapeError", "UnknownLoss",
    "UnsupportedOutput", "all_losses", "compute", "get_loss", "name_key",
    "prepare_call",
]
