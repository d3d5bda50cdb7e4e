"""The HTTP echo floor of bench/bench_http.py's binary run: the least an ASGI app can do with the binary
request, so that (service over HTTP) / (this over HTTP) is the service's own cost beyond HTTP's.

A bare ASGI app (no Starlette, no FastAPI, no middleware) served by the same uvicorn command as the
service: ``POST`` reads the whole body (chunks joined once, as Starlette's ``request.body()`` does) and
answers ``?bytes=N`` zero bytes, an ``application/octet-stream`` body built once per size and then
reused, with the ``Inference-Header-Content-Length`` header the OIP client reads (0: no JSON header).
``GET /healthz`` answers 200 so that bench._common.Server can wait for it. Nothing is computed.
glibc's malloc is tuned as the service tunes it (``service.runtime.reuse_freed_memory``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from service.runtime import reuse_freed_memory

# the service's malloc setting (service.app.create_app applies it): without it every 16 MB body joined here is a
# fresh mmap whose pages fault in, and this "floor" measured slower than the service itself (59 vs 25 ms, 10 rounds)
reuse_freed_memory()
_BODIES: dict[int, bytes] = {}  # response size -> the precomputed response body, so answering copies nothing new
MAX_ECHO_BYTES = 1 << 30  # a typo in ?bytes= must not allocate the machine's memory


def _response_body(query: bytes) -> bytes:
    values = parse_qs(query.decode("latin-1")).get("bytes", ["0"])
    size = min(max(int(values[0]), 0), MAX_ECHO_BYTES)
    body = _BODIES.get(size)
    if body is None:
        body = _BODIES[size] = bytes(size)
    return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        chunks.append(chunk)
        received += len(chunk)
        if not message.get("more_body", False):
            break
    request_body = b"".join(chunks)  # the one copy a framework's request.body() makes
    del chunks
    if scope["method"] == "GET":
        body = b"ok"
    else:
        body = _response_body(scope.get("query_string", b""))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode()),
                            (b"inference-header-content-length", b"0"),
                            (b"x-echo-received", str(len(request_body)).encode())]})
    await send({"type": "http.response.body", "body": body})
