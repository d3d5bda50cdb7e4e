"""``exp``, ``log`` and ``tanh`` for the engine: Intel MKL's vector math where it is installed,
NumPy's otherwise.

Why: NumPy has SIMD float64 ``exp``/``log`` only for CPUs with AVX-512; elsewhere (AVX2 servers,
most AMD parts) it calls the C library once per element, 6-9 ns each, and the transcendental
losses (softmax cross-entropies, BCE on logits, CTC's softmax, Circle) spend most of their time
there. MKL's VML (``mkl_umath``'s ufuncs, wheels for x86-64 Linux) vectorises them on every
x86-64 CPU: 2-4x faster at one thread in float64, about 4x in float32 (bench/bench_losses.py), and
within one ulp of the correctly rounded result in both dtypes (NumPy's float32 SIMD versions are
within two to four), with the same IEEE special values (0, inf, NaN, subnormals). The two
backends may differ in the last bit of a result.

The functions are ufuncs: ``vecmath.exp(x, out=x)`` works as with NumPy. Callers look them up
as ``vecmath.exp`` at call time, so ``use`` switches the whole engine at once (the service does
it at start-up from ``LOSS_SERVICE_VECTOR_MATH``; the tests run both backends).
"""

from __future__ import annotations

import numpy as np

try:  # optional: absent on other platforms, or removed to save space
    import mkl_umath as _mkl
except ImportError:  # pragma: no cover - the locked environments install it
    _mkl = None

BACKENDS = ("auto", "numpy", "mkl")

exp = np.exp
log = np.log
tanh = np.tanh
backend = "numpy"


def available() -> tuple[str, ...]:
    """The backends this environment can run."""
    return ("numpy", "mkl") if _mkl is not None else ("numpy",)


def use(name: str = "auto") -> str:
    """Switch the engine's ``exp``/``log``/``tanh`` to ``name`` ("auto": MKL if installed, else
    NumPy). Returns the backend now in use; asking for "mkl" where it is not installed is an error."""
    global exp, log, tanh, backend
    if name not in BACKENDS:
        raise ValueError(f"vector math backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    chosen = ("mkl" if _mkl is not None else "numpy") if name == "auto" else name
    if chosen not in available():
        raise ValueError("vector math backend 'mkl' needs the mkl-umath package (x86-64 Linux wheels); "
                         "install it or use 'numpy'")
    module = _mkl if chosen == "mkl" else np
    exp, log, tanh, backend = module.exp, module.log, module.tanh, chosen
    return chosen


use("auto")
