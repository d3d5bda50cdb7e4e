"""Reading JSON request bodies: content type (415) and size (413) checks, before any parsing."""

from __future__ import annotations

from collections.abc import Mapping

import anyio
from fastapi import Request

from ..engine.errors import LimitExceeded, LossServiceError

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


def check_headers(headers: Mapping[str, str], max_bytes: int, media_types: tuple[str, ...] = _JSON_TYPES) -> None:
    """The 415 and 413 that the headers alone decide (also run by the /docs examples, service.api.doc_examples);
    ``media_types`` are accepted besides JSON's (OIP's binary bodies)."""
    encoding = headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        # a compressed body read as JSON would be a confusing 400 (or worse, bytes that happen to parse)
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; send the body uncompressed, "
                                   f"without a Content-Encoding header.")
    content_type = headers.get("content-type")
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media not in _JSON_TYPES + media_types and not (media.startswith("application/") and media.endswith("+json")):
            raise UnsupportedMediaType(
                f"Content-Type {content_type!r} is not supported; send the body as JSON with "
                f"'Content-Type: application/json' (curl: -H 'Content-Type: application/json').")
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, int(declared))  # answered before a byte of the body is read


async def read_json_body(request: Request, max_bytes: int, timeout: float,
                         media_types: tuple[str, ...] = _JSON_TYPES) -> bytes:
    """The body's bytes, read within ``timeout`` seconds (a slow or lying client gets a 408)."""
    check_headers(request.headers, max_bytes, media_types)
    declared = request.headers.get("content-length")
    chunks = []
    size = 0
    with anyio.move_on_after(timeout) as deadline:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)
    if deadline.cancelled_caught:
        raise BodyTimeout(timeout, size, declared)
    return b"".join(chunks)
