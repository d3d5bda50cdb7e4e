"""Process-wide runtime tuning applied by the service at start-up (not by the engine library)."""

from __future__ import annotations

import ctypes
import functools
import ctypes.util
import logging
import sys

log = logging.getLogger("service")

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ``ldconfig -p`` in a child process: once, at start-up, never after a computation
    # (a fork of a worker holding a computation's heap would briefly count its pages twice)
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def reuse_freed_memory() -> bool:
    """Let glibc keep freed large blocks for reuse instead of unmapping them.

    By default every NumPy array above glibc's mmap threshold is a fresh ``mmap`` whose pages
    fault in on first touch, and is unmapped again when freed: a loss on a million floats
    allocates a dozen such arrays, and the page faults can cost more than the arithmetic
    (Huber on 1M float32: 22 ms before, 4 ms after, in bench/). PyTorch avoids the same cost
    with its caching allocator. The price is that the process keeps its peak heap. Returns
    whether the setting was applied (glibc on Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = _libc()
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    if ok:
        log.debug("glibc malloc: large blocks are reused instead of unmapped")
    return ok


def return_freed_memory() -> bool:
    """Give the heap's free pages back to the OS (glibc's ``malloc_trim``), undoing what
    ``reuse_freed_memory`` keeps. Worker processes call it after each computation: each would
    otherwise keep the peak heap of the largest computation it ran, and their sum could exceed what
    the work budget allows for all computations together. Returns whether it ran (glibc only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        _libc().malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True


def limit_math_threads(threads: int) -> bool:
    """Cap the threads of NumPy's BLAS (OpenBLAS) and of OpenMP (which MKL's vector math runs on,
    see ``engine.vecmath``) at ``threads``; 0 leaves the libraries' defaults.

    The engine sends row sums and Circle's pairwise products through BLAS, and exp/log through
    MKL. Both would split even a millisecond operation over every core, and their idle threads
    keep spinning afterwards, competing with the computation itself and with concurrent requests
    (the service runs up to ``max_concurrency`` computations at once, one core each). Returns
    whether a limit was applied."""
    if threads <= 0:
        return False
    import numpy  # noqa: F401 - threadpoolctl can only limit libraries that are already loaded
    from threadpoolctl import threadpool_limits  # only the service process needs it

    from .engine import vecmath  # noqa: F401 - loads MKL's OpenMP runtime where it is installed

    # not used as a context manager: the limit stays for the life of the process
    threadpool_limits(limits=threads, user_api="blas")
    threadpool_limits(limits=threads, user_api="openmp")
    log.debug("BLAS and OpenMP threads limited to %d", threads)
    return True
