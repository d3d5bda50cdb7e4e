"""End to end: a real uvicorn process on loopback, driven over TCP."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import numpy as np
import pytest

from .conftest import live_server


@pytest.fixture(scope="module")
def server():
    with live_server({"LOSS_SERVICE_MAX_BODY_BYTES": "2000000", "LOSS_SERVICE_MAX_ELEMENTS": "200000"}) as running:
        yield running


def test_compute_over_loopback(server):
    base = server.url
    r = httpx.post(f"{base}/v1/losses/categorical_crossentropy",
                   json={"y_true": [[0, 1, 0], [0, 0, 1]], "y_pred": [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]})
    assert r.status_code == 200
    assert r.json()["loss"] == pytest.approx(1.176939193690798, rel=1e-12)


def test_problem_json_over_loopback(server):
    base = server.url
    r = httpx.post(f"{base}/v1/losses/mse", content=b'{"y_true": [1], "y_pred": [NaN]}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "y_pred[0]" in r.json()["detail"]


def test_content_length_over_limit_answers_413_without_the_body(server):
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/losses/mse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 413


def test_element_limit_over_loopback(server):
    base = server.url
    big = np.zeros((400, 300)).tolist()
    r = httpx.post(f"{base}/v1/losses/mse", json={"y_true": big, "y_pred": big})
    assert r.status_code == 413
    assert "LOSS_SERVICE_MAX_ELEMENTS" in r.json()["detail"]


def test_health_answers_while_a_large_request_computes(server):
    base = server.url
    rng = np.random.default_rng(0)
    body = json.dumps({"y_true": rng.random((200, 200)).tolist(), "y_pred": rng.random((200, 200)).tolist()})
    results = {}

    def big():
        results["big"] = httpx.post(f"{base}/v1/losses/mse", content=body,
                                    headers={"content-type": "application/json"}, timeout=60).status_code

    thread = threading.Thread(target=big)
    thread.start()
    latencies = []
    while thread.is_alive() and len(latencies) < 200:
        start = time.perf_counter()
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        latencies.append(time.perf_counter() - start)
    thread.join(timeout=60)
    assert results["big"] == 200
    assert max(latencies, default=0) < 5


def test_concurrent_requests_all_succeed(server):
    base = server.url
    outcomes = []

    def one(i):
        r = httpx.post(f"{base}/v1/losses/mae", json={"y_true": [[float(i)]], "y_pred": [[0.0]]}, timeout=30)
        outcomes.append((i, r.status_code, r.json().get("loss")))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == [(i, 200, float(i)) for i in range(16)]
