"""Reading JSON request bodies: content type and encoding (415) and size (413) checks, before any parsing,
and compressed bodies inflated as they arrive (``service.api.compression``), within the same size limit."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
from fastapi import Request

from ..engine.errors import LimitExceeded, LossServiceError
from .compression import INFLATE_BATCH, INLINE_OUTPUT, Inflater, request_encoding

_JSON_TYPES = ("application/json",)


class UnsupportedMediaType(LossServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=415, slug="unsupported-media-type", title="Unsupported media type")


class BodyTimeout(LossServiceError):
    def __init__(self, timeout: float, received: int, declared: str | None) -> None:
        of = f" of the {int(declared):,} declared" if declared is not None and declared.isdigit() else ""
        super().__init__(
            detail=f"The request body did not arrive within {timeout:g} s (LOSS_SERVICE_BODY_TIMEOUT): "
                   f"{received:,} bytes{of} were received; send the whole body, with a Content-Length that matches it.",
            status=408, slug="body-timeout", title="Request body timeout")
        self.headers = {"Connection": "close"}  # the rest of a half-sent body must not be read as the next request


def _too_large(limit: int, size: int | None = None) -> LimitExceeded:
    said = f" ({size:,} bytes)" if size is not None else ""
    return LimitExceeded(f"The request body{said} is over the limit of {limit:,} bytes "
                         f"(LOSS_SERVICE_MAX_BODY_BYTES); split the request or use smaller arrays.", ("body",))


def unsupported_media_message(content_type: str, media_types: tuple[str, ...]) -> str:
    """The 415's sentence: every media type this route accepts, JSON first (the one most clients want)."""
    others = [m for m in media_types if m not in _JSON_TYPES]
    accepted = "JSON ('Content-Type: application/json')" + "".join(f" or {m!r}" for m in others)
    return (f"Content-Type {content_type!r} is not supported here; send the body as {accepted} "
            f"(curl: -H 'Content-Type: application/json').")


def check_headers(headers: Mapping[str, str], max_bytes: int, media_types: tuple[str, ...] = _JSON_TYPES) -> str:
    """The 415 and 413 that the headers alone decide (also run by the /docs examples, service.api.doc_examples);
    ``media_types`` are accepted besides JSON's (OIP's binary bodies). Returns the body's Content-Encoding."""
    encoding = request_encoding(headers.get("content-encoding"))
    content_type = headers.get("content-type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES + media_types and not (media.startswith("application/") and media.endswith("+json")):
            raise UnsupportedMediaType(unsupported_media_message(content_type, media_types))
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, int(declared))  # answered before a byte of the body is read
    return encoding


async def read_json_body(request: Request, max_bytes: int, timeout: float,
                         media_types: tuple[str, ...] = _JSON_TYPES) -> bytes:
    """The body's bytes, inflated if compressed, read within ``timeout`` seconds (a slow or lying client
    gets a 408). ``max_bytes`` bounds both the bytes received and the inflated body."""
    encoding = check_headers(request.headers, max_bytes, media_types)
    inflater = None if encoding == "identity" else Inflater(encoding, max_bytes)
    declared = request.headers.get("content-length")
    chunks = []
    size = pending = 0
    with anyio.move_on_after(timeout) as deadline:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
            pending += len(chunk)
            if inflater is not None and pending >= INFLATE_BATCH:
                # zlib releases the GIL: a large body inflates in a thread while the loop serves others
                await anyio.to_thread.run_sync(inflater.feed, b"".join(chunks))
                chunks.clear()
                pending = 0
        if inflater is not None:
            # a small body inflates here at once (bounded output: a bomb's rest goes to a thread)
            if inflater.feed(b"".join(chunks), INLINE_OUTPUT):
                await anyio.to_thread.run_sync(inflater.feed, b"")
            chunks = [inflater.finish()]
    if deadline.cancelled_caught:
        raise BodyTimeout(timeout, size, declared)
    return b"".join(chunks)
