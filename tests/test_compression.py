"""Content-Encoding both ways (issue 12, item 3): compressed request bodies, zip bombs, gzip responses."""

from __future__ import annotations

import gzip
import json
import struct
import threading
import time
import zlib

import httpx
import numpy as np
import psutil
import pytest

from service.api import compression
from service.api.compression import GzipMiddleware, Inflater, accepts_gzip
from service.engine.errors import LimitExceeded

from .conftest import assert_problem, live_server, make_client
from .test_hostile import GENEROUS, Watch, tree_rss

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}
MSE = {"y_true": [[0.0, 1.0], [1.0, 0.0]], "y_pred": [[0.2, 0.8], [0.6, 0.4]], "sample_weight": [1.0, 0.5]}
BATCH = {"requests": [{"loss": "mse", **MSE}, {"loss": "huber", **MSE, "params": {"delta": 0.5}}]}
GRADE = {"loss": "mse", **MSE, "submission": {"loss": 0.1, "gradient": [[0.0, 0.0], [0.0, 0.0]]}}


def raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


ENCODERS = {
    "gzip": ("gzip", gzip.compress),
    "deflate": ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 defines deflate
    "raw-deflate": ("deflate", raw_deflate),  # as some browsers send it
    "x-gzip": ("x-gzip", gzip.compress),
    "two-gzip-members": ("gzip", lambda data: gzip.compress(data[:10]) + gzip.compress(data[10:])),
    "identity": ("identity", lambda data: data),
}


@pytest.mark.parametrize("path,body", [("/v1/losses/mse", MSE), ("/v1/batch", BATCH), ("/v1/grade", GRADE)])
@pytest.mark.parametrize("encoder", list(ENCODERS))
async def test_a_compressed_body_gets_the_same_answer_as_a_plain_one(client, path, body, encoder):
    encoding, encode = ENCODERS[encoder]
    data = json.dumps(body).encode()
    plain = await client.post(path, content=data, headers=JSON)
    packed = await client.post(path, content=encode(data), headers={**JSON, "content-encoding": encoding})
    assert plain.status_code == 200, plain.text
    assert packed.status_code == 200, packed.text
    assert packed.content == plain.content


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


GOOD = _gz(json.dumps(MSE).encode())
CORRUPT = {
    "not-gzip": ("gzip", json.dumps(MSE).encode(), "incorrect header check"),
    "truncated": ("gzip", GOOD[:-12], "ends early"),
    "empty": ("gzip", b"", "ends early"),
    "trailing-garbage": ("gzip", GOOD + b"garbage", "7 bytes after the end"),
    "crc-error": ("gzip", GOOD[:-8] + bytes(4) + GOOD[-4:], "incorrect data check"),
    "length-error": ("gzip", GOOD[:-4] + bytes(4), "incorrect length check"),
    "zlib-truncated": ("deflate", zlib.compress(json.dumps(MSE).encode())[:-6], "ends early"),
    "gzip-as-deflate": ("deflate", GOOD, "invalid"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
async def test_corrupt_compressed_data_is_a_400_naming_content_encoding(client, case):
    encoding, data, why = CORRUPT[case]
    response = await client.post("/v1/losses/mse", content=data, headers={**JSON, "content-encoding": encoding})
    problem = assert_problem(response, 400, "Content-Encoding")
    assert problem["type"] == "/problems/bad-content-encoding"
    assert why in problem["detail"] and encoding in problem["detail"]
    assert problem["errors"][0]["loc"] == ["header", "content-encoding"]


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, gzip", "gzip, identity"])
@pytest.mark.parametrize("path", ["/v1/losses/mse", "/v1/batch", "/v1/grade", "/v1/exercises"])
async def test_an_unsupported_encoding_is_a_415_naming_the_supported_ones(client, path, encoding):
    response = await client.post(path, content=GOOD, headers={**JSON, "content-encoding": encoding})
    problem = assert_problem(response, 415, "Content-Encoding")
    assert repr(encoding) in problem["detail"] and "gzip, deflate, identity" in problem["detail"]


async def test_the_compressed_bytes_are_held_to_the_limit_too():
    noise = _gz(np.random.default_rng(0).bytes(5000))  # incompressible: over 2,000 bytes compressed

    async def streamed():
        yield noise

    async with make_client(max_body_bytes=2000) as client:
        declared = await client.post("/v1/losses/mse", content=noise, headers={**JSON, "content-encoding": "gzip"})
        assert "5,0" in assert_problem(declared, 413, None)["detail"]
        chunked = await client.post("/v1/losses/mse", content=streamed(), headers={**JSON, "content-encoding": "gzip"})
        assert_problem(chunked, 413, None)


async def test_a_body_that_inflates_over_the_limit_is_a_413_naming_the_setting():
    bomb = b"".join(zip_bomb(64 << 20))  # 64 MiB of zeros in 66 KB
    async with make_client(max_body_bytes=100_000) as client:
        response = await client.post("/v1/losses/mse", content=bomb, headers={**JSON, "content-encoding": "gzip"})
    problem = assert_problem(response, 413, None)
    assert "decompressed" in problem["detail"] and "LOSS_SERVICE_MAX_BODY_BYTES" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body"]


@pytest.mark.parametrize("most", [None, 1000])
def test_inflating_a_bomb_stops_one_byte_past_the_limit(most):
    inflater = Inflater("gzip", max_bytes=50_000)
    bomb = b"".join(zip_bomb(64 << 20))
    with pytest.raises(LimitExceeded):
        while inflater.feed(bomb, most):  # with ``most``, each call stops early and is resumed
            bomb = b""
    assert inflater.size == 50_001  # not 64 MiB: zlib was never asked for more


def test_a_bounded_call_resumes_where_it_stopped():
    data = json.dumps({"y": list(range(20000))}).encode()
    inflater = Inflater("deflate", max_bytes=len(data))
    calls = 1
    more = inflater.feed(zlib.compress(data), 4096)
    while more:
        more = inflater.feed(b"", 4096)
        calls += 1
    assert calls > len(data) // 4096 and inflater.finish() == data


async def test_a_large_body_is_inflated_off_the_event_loop(client, monkeypatch):
    calls = []
    original = Inflater.feed

    def recording(self, data, most=None):
        calls.append((most, threading.current_thread() is threading.main_thread()))
        return original(self, data, most)

    monkeypatch.setattr(Inflater, "feed", recording)
    small = await client.post("/v1/losses/mse", content=_gz(json.dumps(MSE).encode()),
                              headers={**JSON, "content-encoding": "gzip"})
    assert small.status_code == 200 and calls == [(compression.INLINE_OUTPUT, True)]  # a hop would cost more
    calls.clear()
    large = json.dumps(BIG).encode()
    assert len(large) > compression.INLINE_OUTPUT
    response = await client.post("/v1/losses/mse", content=_gz(large), headers={**JSON, "content-encoding": "gzip"})
    assert response.status_code == 200
    assert calls == [(compression.INLINE_OUTPUT, True), (None, False)]  # its first 64 KiB, then the rest in a thread


def zip_bomb(total: int = 1 << 30, piece: int = 1 << 20):
    """A valid gzip of ``total`` zeros (1 GiB in about 1 MB), made a piece at a time: after a full flush a
    piece of zeros compresses to the same block whatever came before, so the block is made once."""
    zeros = bytes(piece)
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)  # the gzip header and the first piece
    block = deflater.compress(zeros) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(zeros)
    for _ in range(total // piece - 1):
        yield block
        crc = zlib.crc32(zeros, crc)
    yield b"\x03\x00" + struct.pack("<II", crc, total & 0xFFFFFFFF)  # an empty final block, then the trailer


def test_the_zip_bomb_is_valid_gzip():
    assert gzip.decompress(b"".join(zip_bomb(8 << 20))) == bytes(8 << 20)


def test_a_gigabyte_zip_bomb_is_a_413_and_the_server_stays_small():
    limit = 16 * 1024 * 1024
    with live_server({"LOSS_SERVICE_MAX_BODY_BYTES": str(limit)}) as live, \
            httpx.Client(base_url=live.url, timeout=GENEROUS) as client:
        assert client.post("/v1/losses/mse", json=MSE).status_code == 200  # warm
        # inflated whole it would be 1 GiB; held to the limit it is the limit and a batch of compressed bytes
        bound = tree_rss(psutil.Process(live.pid)) + 4 * limit + 100 * 1024 * 1024  # with its workers, as Watch
        with Watch(live) as watch:
            start = time.monotonic()
            response = client.post("/v1/losses/mse", content=zip_bomb(),
                                   headers={**JSON, "content-encoding": "gzip"})
            elapsed = time.monotonic() - start
    assert response.status_code == 413, response.text
    assert "decompressed" in response.json()["detail"]
    assert watch.peak < bound, (watch.peak, bound)
    assert elapsed < GENEROUS, elapsed


# --- responses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("header,gzipped", [
    ("gzip", True), ("GZIP", True), ("gzip;q=0.5, identity", True), ("br, gzip", True), ("*", True),
    ("x-gzip", True), (None, False), ("", False), ("identity", False), ("br", False), ("gzip;q=0", False),
    ("gzip; q=0.000", False), ("*;q=0", False), ("*, gzip;q=0", False), ("gzip;q=nonsense", False),
])
def test_accept_encoding_q_values(header, gzipped):
    assert accepts_gzip(header) is gzipped


async def _raw(client: httpx.AsyncClient, method: str, path: str, **kwargs) -> tuple[httpx.Response, bytes]:
    """The response and its bytes as sent, before httpx undoes the Content-Encoding."""
    async with client.stream(method, path, **kwargs) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


BIG = {"y_true": np.linspace(0, 1, 20000).reshape(-1, 4).tolist(), "y_pred": np.zeros((5000, 4)).tolist()}


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/v1/losses", None), ("GET", "/v1/losses/huber", None), ("POST", "/v1/losses/mse", BIG),
    ("GET", "/metrics", None), ("GET", "/openapi.json", None),
])
async def test_responses_are_gzipped_when_asked_and_plain_when_not(client, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    await client.get("/v1/losses/mse")  # something for /metrics to count
    plain, plain_bytes = await _raw(client, method, path, headers={"accept-encoding": "identity"}, **kwargs)
    packed, packed_bytes = await _raw(client, method, path, headers={"accept-encoding": "gzip"}, **kwargs)
    assert plain.status_code == packed.status_code == 200
    assert "content-encoding" not in plain.headers and packed.headers["content-encoding"] == "gzip"
    assert int(plain.headers["content-length"]) == len(plain_bytes) > 1024
    assert int(packed.headers["content-length"]) == len(packed_bytes) < len(plain_bytes)
    if path != "/metrics":  # its counters moved between the two requests
        assert gzip.decompress(packed_bytes) == plain_bytes
    assert "Accept-Encoding" in plain.headers["vary"] and "Accept-Encoding" in packed.headers["vary"]
    assert packed.headers["content-type"] == plain.headers["content-type"]


async def test_small_responses_stay_plain_without_vary(client):
    response, _ = await _raw(client, "GET", "/healthz", headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in response.headers and "vary" not in response.headers


async def test_problems_are_gzipped_and_stay_problem_json():
    async with make_client(gzip_min_bytes=0) as client:
        response, raw = await _raw(client, "GET", "/v1/losses/hubber", headers={"accept-encoding": "gzip"})
    assert response.status_code == 404 and response.headers["content-encoding"] == "gzip"
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(gzip.decompress(raw))["type"] == "/problems/unknown-loss"


async def test_large_responses_are_compressed_off_the_event_loop(client, monkeypatch):
    threads = []
    original = compression.gzip_bytes

    def recording(body: bytes, level: int) -> bytes:
        threads.append((len(body), threading.current_thread() is threading.main_thread()))
        return original(body, level)

    monkeypatch.setattr(compression, "gzip_bytes", recording)
    response = await client.post("/v1/losses/mse", json=BIG, headers={"accept-encoding": "gzip"})
    small = await client.get("/v1/losses/huber", headers={"accept-encoding": "gzip"})
    assert response.headers["content-encoding"] == small.headers["content-encoding"] == "gzip"
    (large_size, large_on_loop), (small_size, small_on_loop) = threads
    assert large_size > compression.OFFLOAD_BYTES and not large_on_loop
    assert small_size <= compression.OFFLOAD_BYTES and small_on_loop  # a thread hop costs more than it


def _asgi_app(headers: list[tuple[bytes, bytes]], parts: list[bytes], status: int = 200):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": headers})
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})
    return app


@pytest.mark.parametrize("headers,parts,status", [
    ([(b"content-encoding", b"br"), (b"content-length", b"2000")], [b"x" * 2000], 200),  # already encoded
    ([(b"content-type", b"text/plain")], [b"x" * 2000, b"y" * 2000], 200),  # streamed
    ([(b"content-range", b"bytes 0-1999/9000")], [b"x" * 2000], 206),  # a range of the plain bytes
    ([(b"etag", b'"abc"')], [b""], 304),  # no body to compress, even with no minimum
])
async def test_encoded_streamed_partial_and_empty_bodies_pass_through_untouched(headers, parts, status):
    app = GzipMiddleware(_asgi_app(headers, parts, status), min_bytes=0, level=1, threads=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response, raw = await _raw(client, "GET", "/", headers={"accept-encoding": "gzip"})
    assert raw == b"".join(parts)
    already = dict(headers).get(b"content-encoding")
    assert response.headers.get("content-encoding") == (already.decode() if already else None)
