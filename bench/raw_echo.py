"""The socket floor of bench/bench_http.py's binary run: the echo floor's exchange with no ASGI server at all.

One blocking thread, one connection at a time: the request (HTTP/1.1 with a Content-Length, keep-alive)
is read with ``recv_into`` into one preallocated buffer, and a response prepared once per size (status
line, headers, ``?bytes=N`` zero bytes) goes out in one ``sendall``. What is left is what moving the bytes
over loopback TCP costs (the kernel's copies, the client's reads), which no Python HTTP server can go under.
``python -m bench.raw_echo --port N``; ``GET /healthz`` answers 200 for bench._common.Server.
"""

from __future__ import annotations

import argparse
import socket
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1 << 30
_responses: dict[int, bytes] = {}


def _response(size: int) -> bytes:
    if size not in _responses:
        _responses[size] = (b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                            b"content-length: %d\r\ninference-header-content-length: 0\r\n\r\n" % size) + bytes(size)
    return _responses[size]


def serve(conn: socket.socket, buf: bytearray) -> None:
    view = memoryview(buf)
    have = 0
    while True:
        end = buf.find(b"\r\n\r\n", 0, have)
        while end < 0:
            n = conn.recv_into(view[have:], 65536)
            if not n:
                return
            have += n
            end = buf.find(b"\r\n\r\n", 0, have)
        head = bytes(view[:end]).decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = min(int(value), MAX_BODY)
        total = end + 4 + length
        if total > len(buf):  # grow once for a body larger than any before
            buf.extend(bytes(total - len(buf)))
            view = memoryview(buf)
        while have < total:
            n = conn.recv_into(view[have:total])
            if not n:
                return
            have += n
        if method == "GET":
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        else:
            size = int(parse_qs(urlsplit(target).query).get("bytes", ["0"])[0])
            conn.sendall(_response(min(max(size, 0), MAX_BODY)))
        rest = have - total  # a pipelined next request's first bytes
        view[:rest] = view[total:have]
        have = rest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    listener = socket.create_server((args.host, args.port))
    buf = bytearray(64 << 20)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                serve(conn, buf)
            except (ConnectionError, ValueError):  # a client gone or a request this floor does not speak
                pass


if __name__ == "__main__":
    main()
