"""Settings from environment variables, all prefixed ``LOSS_SERVICE_`` (see README, "Configuration")."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOSS_SERVICE_", extra="ignore")

    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0, description="largest request body accepted (413 above)")
    max_elements: int = Field(5_000_000, gt=0, description="most numbers in all arrays of one request (413 above)")
    work_budget: int = Field(5_000_000, gt=0, description=(
        "most declared work (Loss.work: values in the largest array a loss builds) of all computations running "
        "at once in the process; others wait in the queue. Memory: about 128 bytes per unit in float64"))
    max_request_work: int = Field(5_000_000, gt=0, description=(
        "most declared work of one request, a batch's items together (413 above, and above work_budget)"))
    max_queue: int = Field(8, gt=0, description=(
        "parsed requests waiting for room in the work budget; a request that would wait beyond them is a 503 "
        "with Retry-After, and /readyz is 503 while the queue is full"))
    max_rank: int = Field(8, ge=1, le=32, description="most dimensions of one array (422 above)")
    max_batch_items: int = Field(64, gt=0, description="most requests in one /v1/batch call (413 above)")
    max_concurrency: int = Field(2, gt=0, description=(
        "threads parsing at once, and as many computing (parsing takes about 4x the body in memory)"))
    gzip_min_bytes: int = Field(1024, ge=0, description=(
        "smallest response body gzipped for a client whose Accept-Encoding allows it"))
    gzip_level: int = Field(1, ge=1, le=9, description=(
        "zlib level of gzipped responses: 1 is about 4x faster than 6 on JSON numbers for 6% more bytes"))
    executor: Literal["thread", "process"] = Field("process", description=(
        "where requests are parsed and computed: process (max_concurrency worker processes, so that parsing "
        "never holds the event loop's GIL) or thread (worker threads of the server process)"))
    # On by default, measured with bench/bench_http.py on 2 cores (2 x 1000 x 1000 float64 mse, all outputs):
    # OIP binary 65.2 ms median through the worker processes, 23.8 ms with this on (the thread executor: 23.5 ms),
    # what the workers add being the 16 MB in and the 16 MB of outputs through the pipes and the page faults after
    # malloc_trim; and /healthz p99 under 4 such requests back to back 14.6 ms with it on, 19.4 ms without
    # (--healthz --binary-load). The workers exist for JSON's GIL-holding parse, which a binary body does not have.
    binary_in_process: bool = Field(True, description=(
        "with the process executor, OIP binary requests (Inference-Header-Content-Length) are decoded and computed "
        "in threads of the server process, under the same work budget: their decoding is np.frombuffer, not a parse "
        "holding the GIL, and they skip the worker pipes (the body in, the outputs out). false sends them to the "
        "worker processes like JSON (a loss whose computation held the GIL in Python loops for long would delay "
        "/healthz in this process)"))
    body_timeout: float = Field(30.0, gt=0, description="seconds to receive a request body (408 after)")
    max_connections: int = Field(1000, gt=0, description=(
        "open connections (uvicorn's limit_concurrency); idle ones are closed first to make room"))
    keep_alive_timeout: int = Field(5, gt=0, description=(
        "seconds an idle connection (new or kept alive) stays open without sending a request"))
    workers: int = Field(1, gt=0, description="uvicorn worker processes (used by dev.py serve and the image)")
    host: str = Field("127.0.0.1", description="address to serve on (dev.py serve; the image uses 0.0.0.0)")
    port: int = Field(8000, gt=0, lt=65536, description="port to serve on")
    log_level: str = Field("info", description="uvicorn and service log level")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS (JSON list)")
    api_key: str | None = Field(None, description="if set, /v1 routes require the X-API-Key header")
    reuse_memory: bool = Field(True, description="keep freed large blocks for reuse (glibc), avoiding page faults")
    blas_threads: int = Field(1, ge=0, description=(
        "threads of NumPy's BLAS and of MKL's vector math per computation (0: the libraries' defaults)"))
    vector_math: Literal["auto", "numpy", "mkl"] = Field("auto", description=(
        "exp/log/tanh backend of the engine: mkl (Intel MKL's vector math, installed on x86-64 Linux), numpy, "
        "or auto (mkl where installed)"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
