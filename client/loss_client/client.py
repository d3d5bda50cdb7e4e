"""``LossClient`` (sync) and ``AsyncLossClient``: the same methods over one set of request builders.

Example::

    import numpy as np
    from loss_client import LossClient

    with LossClient("http://127.0.0.1:8000") as client:
        result = client.compute("categorical_crossentropy", [[0, 1, 0], [0, 0, 1]],
                                np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]), sample_weight=[1.0, 0.5])
        result.loss            # 0.6012929...
        result.gradient.shape  # (2, 3)

        # Large arrays: the Open Inference Protocol's binary tensors, no decimal text either way
        big = client.compute("mse", np.zeros((1000, 1000)), np.ones((1000, 1000)), transport="oip")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack
from urllib.parse import quote

import httpx

from . import _wire
from ._wire import Call, Exercise, LossResult
from .errors import LossServiceError

Transport = Literal["json", "oip"]
DEFAULT_TIMEOUT = 60.0


class ComputeOptions(TypedDict, total=False):
    """The optional fields of a loss computation (as in ``POST /v1/losses/{name}``)."""

    sample_weight: Any
    params: Mapping[str, Any] | None
    reduction: str | None
    outputs: Sequence[str] | None
    dtype: str | None
    transport: Transport


class GradeOptions(TypedDict, total=False):
    """The optional fields of ``POST /v1/grade``; ``format="gradescope"`` asks for Gradescope's results.json."""

    y_true: Any
    y_pred: Any
    sample_weight: Any
    exercise: Mapping[str, Any] | None
    params: Mapping[str, Any] | None
    reduction: str | None
    dtype: str | None
    outputs: Sequence[str] | None
    tolerance: Mapping[str, float] | None
    reveal_expected: bool
    gradescope: Mapping[str, Any] | None
    format: Literal["json", "gradescope"]


def _name(loss: str) -> str:
    return quote(loss, safe="")


class _Calls:
    """Builds each method's ``Call``; the subclasses send it (one way, sync or async)."""

    def _compute(self, loss: str, y_true: Any, y_pred: Any, *, sample_weight: Any = None,
                 params: Mapping[str, Any] | None = None, reduction: str | None = None,
                 outputs: Sequence[str] | None = None, dtype: str | None = None, transport: Transport = "json") -> Call:
        if transport == "oip":
            content, head_size = _wire.oip_request(y_true, y_pred, sample_weight, params, reduction, outputs, dtype)
            return Call("POST", f"/v2/models/{_name(loss)}/infer", _wire.oip_result(reduction), content,
                        # no Content-Type, as tritonclient sends it; raw floats gain little from gzip, and
                        # the outputs are read in place from the bytes as they arrive
                        {_wire.HEADER_LENGTH: str(head_size), "Accept-Encoding": "identity"})
        if transport != "json":
            raise ValueError(f"transport must be 'json' or 'oip', not {transport!r}")
        body = _wire.loss_request(y_true, y_pred, sample_weight, params, reduction, outputs, dtype)
        return _wire.json_call("POST", f"/v1/losses/{_name(loss)}", body, _wire.loss_result)

    def _batch(self, requests: Sequence[Mapping[str, Any]]) -> Call:
        items = [{key: _wire.exact_for_json(value) for key, value in item.items()} for item in requests]
        return _wire.json_call("POST", "/v1/batch", {"requests": items}, _wire.batch_results)

    def _grade(self, loss: str, submission: Mapping[str, Any], **options: Unpack[GradeOptions]) -> Call:
        fmt = options.pop("format", "json")
        body = {"loss": loss, "submission": submission, **{k: v for k, v in options.items() if v is not None}}
        return _wire.json_call("POST", "/v1/grade", body, query={"format": fmt} if fmt != "json" else None)

    def _exercises(self, loss: str, *, seed: int, shape: Sequence[int] | None = None,
                   params: Mapping[str, Any] | None = None, sample_weight: bool = False,
                   decimals: int | None = 4) -> Call:
        body: dict[str, Any] = {"loss": loss, "seed": seed, "sample_weight": sample_weight, "decimals": decimals}
        if shape is not None:
            body["shape"] = list(shape)
        if params is not None:
            body["params"] = params
        return _wire.json_call("POST", "/v1/exercises", body, _wire.exercise_result)


def _http_options(api_key: str | None) -> dict[str, Any]:
    return {"headers": {"X-API-Key": api_key} if api_key else {}}


class LossClient(_Calls):
    """A client of the loss service (it keeps connections open: use it as a context manager or call
    ``close()``). ``api_key`` is sent as ``X-API-Key``; ``timeout`` is in seconds (or an
    ``httpx.Timeout``). Every error answer raises a :class:`~loss_client.LossServiceError` subclass.

    >>> with LossClient("http://127.0.0.1:8000") as client:          # doctest: +SKIP
    ...     client.compute("huber", [[0, 1]], [[0.6, 0.4]], params={"delta": 0.5}).loss
    0.175
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
                 *, http: httpx.Client | None = None) -> None:
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout, **_http_options(api_key))

    def _send(self, call: Call) -> Any:
        response = self._http.request(call.method, call.path, content=call.content, headers=call.headers,
                                      params=call.query or None)
        return call.parse(response.status_code, response.content, response.headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LossClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def compute(self, loss: str, y_true: Any, y_pred: Any, **options: Unpack[ComputeOptions]) -> LossResult:
        """One computation: ``POST /v1/losses/{loss}`` (``transport="json"``, the default) or the OIP
        binary ``POST /v2/models/{loss}/infer`` (``transport="oip"``: NumPy arrays as raw bytes, the
        outputs read back without a copy; scalar params, reduction and dtype go in the request's
        ``parameters``, array params as extra tensors). ``y_true`` may be None for losses that do
        not use it.

        >>> client.compute("mse", np.zeros((2, 3)), np.ones((2, 3)), outputs=["loss"]).loss   # doctest: +SKIP
        1.0
        """
        return self._send(self._compute(loss, y_true, y_pred, **options))

    def compute_binary(self, loss: str, y_true: Any, y_pred: Any, **options: Unpack[ComputeOptions]) -> LossResult:
        """``compute(..., transport="oip")``."""
        return self._send(self._compute(loss, y_true, y_pred, **{**options, "transport": "oip"}))

    def batch(self, requests: Sequence[Mapping[str, Any]]) -> list[LossResult | LossServiceError]:
        """Several computations in one call (``POST /v1/batch``): each item is a dict with ``loss`` and
        the fields of ``compute`` (``y_true``, ``y_pred``, ``params``...). Results come back in order;
        an invalid item is returned (not raised) as its ``LossServiceError``.

        >>> client.batch([{"loss": "mse", "y_true": [[0.0]], "y_pred": [[1.0]]},     # doctest: +SKIP
        ...               {"loss": "nope", "y_true": [[0.0]], "y_pred": [[1.0]]}])
        [LossResult(loss=1.0, ...), NotFound(status=404, ...)]
        """
        return self._send(self._batch(requests))

    def grade(self, loss: str, submission: Mapping[str, Any], **options: Unpack[GradeOptions]) -> dict[str, Any]:
        """Grade a student's outputs (``POST /v1/grade``); the answer as a dict (``passed``, ``score``,
        ``checks``...), or Gradescope's results.json with ``format="gradescope"``.

        >>> client.grade("huber", {"loss": 0.25}, exercise={"seed": 42, "shape": [4, 3]})["passed"]  # doctest: +SKIP
        False
        """
        return self._send(self._grade(loss, submission, **options))

    def exercises(self, loss: str, *, seed: int, shape: Sequence[int] | None = None,
                  params: Mapping[str, Any] | None = None, sample_weight: bool = False,
                  decimals: int | None = 4) -> Exercise:
        """Seeded inputs in the loss's domain (``POST /v1/exercises``): the same request gives the same
        numbers in every release.

        >>> client.exercises("categorical_crossentropy", seed=42, shape=[4, 3]).y_pred.shape   # doctest: +SKIP
        (4, 3)
        """
        return self._send(self._exercises(loss, seed=seed, shape=shape, params=params, sample_weight=sample_weight,
                                          decimals=decimals))

    def losses(self) -> list[dict[str, Any]]:
        """The catalogue (``GET /v1/losses``): name, aliases, formula, params, domains of every loss."""
        return self._send(_wire.json_call("GET", "/v1/losses"))

    def describe(self, loss: str) -> dict[str, Any]:
        """One catalogue entry with runnable ``examples`` (``GET /v1/losses/{loss}``); aliases accepted."""
        return self._send(_wire.json_call("GET", f"/v1/losses/{_name(loss)}"))


class AsyncLossClient(_Calls):
    """``LossClient``'s methods as coroutines, on ``httpx.AsyncClient``.

    >>> async with AsyncLossClient("http://127.0.0.1:8000") as client:   # doctest: +SKIP
    ...     result = await client.compute("mse", [[0.0, 1.0]], [[1.0, 1.0]])
    """

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
                 *, http: httpx.AsyncClient | None = None) -> None:
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout, **_http_options(api_key))

    async def _send(self, call: Call) -> Any:
        response = await self._http.request(call.method, call.path, content=call.content, headers=call.headers,
                                            params=call.query or None)
        return call.parse(response.status_code, response.content, response.headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncLossClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def compute(self, loss: str, y_true: Any, y_pred: Any, **options: Unpack[ComputeOptions]) -> LossResult:
        """As ``LossClient.compute``."""
        return await self._send(self._compute(loss, y_true, y_pred, **options))

    async def compute_binary(self, loss: str, y_true: Any, y_pred: Any,
                             **options: Unpack[ComputeOptions]) -> LossResult:
        """As ``LossClient.compute_binary``."""
        return await self._send(self._compute(loss, y_true, y_pred, **{**options, "transport": "oip"}))

    async def batch(self, requests: Sequence[Mapping[str, Any]]) -> list[LossResult | LossServiceError]:
        """As ``LossClient.batch``."""
        return await self._send(self._batch(requests))

    async def grade(self, loss: str, submission: Mapping[str, Any], **options: Unpack[GradeOptions]) -> dict[str, Any]:
        """As ``LossClient.grade``."""
        return await self._send(self._grade(loss, submission, **options))

    async def exercises(self, loss: str, *, seed: int, shape: Sequence[int] | None = None,
                        params: Mapping[str, Any] | None = None, sample_weight: bool = False,
                        decimals: int | None = 4) -> Exercise:
        """As ``LossClient.exercises``."""
        return await self._send(self._exercises(loss, seed=seed, shape=shape, params=params,
                                                sample_weight=sample_weight, decimals=decimals))

    async def losses(self) -> list[dict[str, Any]]:
        """As ``LossClient.losses``."""
        return await self._send(_wire.json_call("GET", "/v1/losses"))

    async def describe(self, loss: str) -> dict[str, Any]:
        """As ``LossClient.describe``."""
        return await self._send(_wire.json_call("GET", f"/v1/losses/{_name(loss)}"))
