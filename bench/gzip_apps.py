"""The two apps of ``bench_compression.py``, each the service plus ``GET /bench/large``: a prebuilt JSON
body (the gradient of a 1000 x 1000 request, ~20 MB), so that a request's time is its compression and
sending alone, with no parsing or serializing in it. Benchmark baselines, not part of the service.

* ``threaded``: the service as it is (its ``GzipMiddleware``: bodies over 64 KiB compressed in a worker thread);
* ``starlette``: the service with Starlette's ``GZipMiddleware`` in place of its own, at the same zlib
  level (Starlette 1.10 compresses bodies of 128 KiB or more in a worker thread too);
* ``on_loop``: the same with Starlette's thread cut set beyond any body: every body compressed on the
  event loop, as Starlette did before.
"""

from __future__ import annotations

import numpy as np
import orjson
from fastapi import FastAPI, Response
from starlette.middleware.gzip import GZipMiddleware

from service.app import create_app
from service.config import Settings

LARGE = orjson.dumps({"gradient": np.random.default_rng(1).normal(size=(1000, 1000))},
                     option=orjson.OPT_SERIALIZE_NUMPY)


def _with_large(app: FastAPI) -> FastAPI:
    async def large() -> Response:
        return Response(LARGE, media_type="application/json")
    app.add_api_route("/bench/large", large, methods=["GET"])
    return app


_settings = Settings()
NEVER = 1 << 62


def _starlette(thread_minimum_size: int) -> FastAPI:
    app = _with_large(create_app(Settings(gzip_min_bytes=NEVER)))  # the service's own gzip never applies
    app.add_middleware(GZipMiddleware, minimum_size=_settings.gzip_min_bytes, compresslevel=_settings.gzip_level,
                       thread_minimum_size=thread_minimum_size)
    return app


threaded = _with_large(create_app(_settings))
starlette = _starlette(128 * 1024)
on_loop = _starlette(NEVER)
