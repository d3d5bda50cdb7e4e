"""Content-Encoding both ways: compressed request bodies inflated under the body limit, and gzip responses.

Requests (``Inflater``, driven by ``service.api.body``): gzip, deflate (zlib-wrapped, or raw as some
browsers send it) and identity. The body is inflated as it arrives, so a body never exists twice
(compressed and inflated), and each ``zlib`` call is given ``max_length``: a zip bomb stops at the
limit plus one byte of output, however far it would expand.

Responses (``GzipMiddleware``): gzip when the client's Accept-Encoding allows it, for every finished
(single-message) body at least ``gzip_min_bytes`` long, whatever the route or transport (problem+json,
/metrics, /v2 binary): the mechanism sits where bodies are finished, not in a transport. Bodies above
``OFFLOAD_BYTES`` are compressed in a worker thread (zlib releases the GIL), after the computation has
given its work budget back. Measured (``bench/bench_compression.py``, 2 loaded cores, level 1): a
19.6 MB JSON body takes 1.1 s to gzip; compressed on the event loop /healthz's p99 during it was
1,128 ms, in a thread 18.6 ms (worst 26 ms). Starlette 1.10's GZipMiddleware also uses a thread (from
128 KiB; p99 15.6 ms), but it gzips for ``Accept-Encoding: gzip;q=0`` (a substring test), so it is
not used; compressing inside the pipeline's thread instead would save one thread hop (0.4 ms) and hold
the work budget while compressing.
"""

from __future__ import annotations

import zlib

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..engine.errors import ErrorItem, LimitExceeded, LossServiceError

REQUEST_ENCODINGS = ("gzip", "deflate", "identity")
_ALIASES = {"x-gzip": "gzip"}  # RFC 9110 8.4.1.3: x-gzip is gzip
INLINE_OUTPUT = 64 * 1024  # inflated on the event loop at most per body (inflating is ~5x faster than gzip)
INFLATE_BATCH = 1024 * 1024  # compressed bytes inflated per thread hop (a hop costs ~0.4 ms)
# responses above it are compressed in a thread: a hop costs ~0.4 ms, as long as level 1 takes on 16 KiB
# on the loaded development machine (64 KiB took 3.9 ms there)
OFFLOAD_BYTES = 16 * 1024


class UnsupportedEncoding(LossServiceError):
    def __init__(self, encoding: str) -> None:
        super().__init__(
            detail=f"Content-Encoding {encoding!r} is not supported; send the body as one of "
                   f"{', '.join(REQUEST_ENCODINGS)} (a single encoding), or uncompressed without the header.",
            errors=[ErrorItem(("header", "content-encoding"), f"unsupported encoding {encoding!r}")],
            status=415, slug="unsupported-media-type", title="Unsupported media type")


class BadCompressedBody(LossServiceError):
    def __init__(self, encoding: str, why: str) -> None:
        detail = (f"The body is not valid {encoding} data ({why}), as its Content-Encoding says; "
                  f"send it compressed whole (curl: --data-binary @body.json.gz), or uncompressed without "
                  f"Content-Encoding.")
        super().__init__(detail=detail, errors=[ErrorItem(("header", "content-encoding"), why)], status=400,
                         slug="bad-content-encoding", title="Body does not match its Content-Encoding")


def request_encoding(header: str | None) -> str:
    """The body's one encoding, from its Content-Encoding header (identity when absent); a 415 otherwise."""
    if header is None:
        return "identity"
    encoding = header.strip().lower()
    encoding = _ALIASES.get(encoding, encoding) or "identity"
    if encoding not in REQUEST_ENCODINGS:  # br, zstd, compress, or a list such as "gzip, gzip"
        raise UnsupportedEncoding(header)
    return encoding


def decompressed_too_large(limit: int) -> LimitExceeded:
    return LimitExceeded(f"The request body, decompressed, is over the limit of {limit:,} bytes "
                         f"(LOSS_SERVICE_MAX_BODY_BYTES applies to the body after its Content-Encoding is undone); "
                         f"split the request or use smaller arrays.", ("body",))


class Inflater:
    """Inflates one body fed in pieces, holding its output to ``max_bytes``."""

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self.encoding = encoding
        self.max_bytes = max_bytes
        self.parts: list[bytes] = []
        self.size = 0
        self._zlib: zlib._Decompress | None = None  # made on the first bytes: deflate's framing is seen there
        self._ended = False
        self._rest = b""  # input not yet inflated when a call stopped at its output bound

    def _start(self, data: bytes) -> None:
        if self.encoding == "gzip":
            wbits = 16 + zlib.MAX_WBITS
        elif len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0:
            wbits = zlib.MAX_WBITS  # RFC 1950 zlib header: what "deflate" means
        else:
            wbits = -zlib.MAX_WBITS  # raw RFC 1951, as some browsers and servers send "deflate"
        self._zlib = zlib.decompressobj(wbits)
        self._ended = False

    def feed(self, data: bytes, most: int | None = None) -> bool:
        """Inflates ``data`` (after any input left over), stopping after ``most`` bytes of output (None:
        all of it); True if it stopped with more to come: call ``feed(b"")`` again. A 413 as soon as the
        output passes ``max_bytes``, a 400 on bad data."""
        data, self._rest = self._rest + data if self._rest else data, b""
        made = 0
        capped = False  # the last call filled its output: zlib may hold more even with no input left
        try:
            while data or capped:
                if most is not None and made >= most:
                    self._rest = data
                    return True
                if self._ended:
                    if self.encoding != "gzip" or data[:2] != b"\x1f\x8b":  # gzip may have several members
                        raise BadCompressedBody(self.encoding,
                                                f"{len(data):,} bytes after the end of the compressed data")
                    self._zlib = None
                if self._zlib is None:
                    self._start(data)
                room = self.max_bytes - self.size + 1
                step = room if most is None else min(room, most - made)
                out = self._zlib.decompress(data, step)
                self.size += len(out)
                made += len(out)
                if self.size > self.max_bytes:
                    raise decompressed_too_large(self.max_bytes)
                self.parts.append(out)
                self._ended = self._zlib.eof
                capped = len(out) == step and not self._ended
                data = self._zlib.unused_data if self._ended else self._zlib.unconsumed_tail
        except zlib.error as exc:  # not this format, a corrupt block, a CRC or length mismatch
            why = str(exc).removeprefix("Error -3 while decompressing data: ")
            raise BadCompressedBody(self.encoding, why) from None
        return False

    def finish(self) -> bytes:
        if not self._ended:
            raise BadCompressedBody(self.encoding, "the compressed data ends early: truncated, or empty")
        body = b"".join(self.parts)
        self.parts = []
        return body


# --- responses ------------------------------------------------------------------------------------

def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether Accept-Encoding allows gzip: listed (or ``*``) with a q-value above 0 (RFC 9110 12.5.3)."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        weights[coding.lower()] = q
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


def gzip_bytes(body: bytes, level: int) -> bytes:
    deflater = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return deflater.compress(body) + deflater.flush()


def _vary(headers: MutableHeaders) -> None:
    present = [v.strip().lower() for v in headers.get("vary", "").split(",")]
    if "accept-encoding" not in present and "*" not in present:
        headers.add_vary_header("Accept-Encoding")


class GzipMiddleware:
    """Pure ASGI: a finished body of at least ``min_bytes`` is gzipped when the client accepts gzip
    (large ones in a worker thread, at most ``threads`` at once). Streamed bodies (several messages)
    and bodies that already have a Content-Encoding pass through untouched."""

    def __init__(self, app: ASGIApp, *, min_bytes: int, level: int, threads: int) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self.level = level
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    async def _gzip(self, body: bytes) -> bytes:
        if len(body) <= OFFLOAD_BYTES:
            return gzip_bytes(body, self.level)
        if self._limiter is None:  # created lazily: it must belong to the running event loop
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(gzip_bytes, body, self.level, limiter=self._limiter)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        wanted = accepts_gzip(Headers(scope=scope).get("accept-encoding"))
        start: Message | None = None

        async def gzipping_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message  # held until the body shows whether it is finished
                return
            held, start = start, None
            if held is None or message["type"] != "http.response.body":  # a streamed body's later parts
                if held is not None:  # another kind of body (pathsend): sent as it is
                    await send(held)
                await send(message)
                return
            body = message.get("body", b"")
            headers = MutableHeaders(raw=list(held.get("headers", [])))
            partial = held["status"] == 206  # a byte range of the plain representation (StaticFiles)
            if (message.get("more_body", False) or "content-encoding" in headers or partial or not body
                    or len(body) < self.min_bytes):
                await send(held)
                await send(message)
                return
            _vary(headers)  # the answer depends on Accept-Encoding, compressed or not
            if wanted:
                body = await self._gzip(body)
                headers["content-encoding"] = "gzip"
                headers["content-length"] = str(len(body))
                if headers.get("etag", "").startswith('"'):  # another representation: not the same strong tag
                    headers["etag"] = "W/" + headers["etag"]
            await send({**held, "headers": headers.raw})
            await send({**message, "body": body})

        await self.app(scope, receive, gzipping_send)
