"""Link functions and the chain rule from a loss's natural scale to raw predictions, written once.

Convention: a model predicts a raw score ``r``; the mean (the loss's natural scale) is
``mu = h(r)`` with ``h`` the *inverse* link (scikit-learn's ``link.inverse``: ``exp`` for the log
link, ``expit`` for the logit link). A loss written in ``mu`` with first and second derivatives
``g = dL/dmu`` and ``H = d2L/dmu2`` has, with respect to the raw score,

    g_raw = h'(r) g        H_raw = h'(r)^2 H + h''(r) g

(``compose``). Each link gives ``h``, ``h'`` and ``h''`` from ``r`` and ``mu`` together, since for
the usual links the derivatives are cheapest in terms of ``mu`` (``exp``: ``h' = h'' = mu``;
``expit``: ``h' = mu (1 - mu)``).

The multinomial link (``softmax`` over the last axis) is not elementwise: ``mu_j`` depends on every
raw score of its row through the Jacobian ``J_jk = mu_j (delta_jk - mu_k)``. ``compose_softmax``
takes a loss whose Hessian in ``mu`` is diagonal (separable in the classes, as the cross-entropy
``-log mu_y`` is) and returns the raw gradient ``J^T g`` and the diagonal of the raw Hessian
``sum_j H_jj J_jk^2 + sum_j g_j d2mu_j/dr_k^2``. ``compose_normalised`` is the same for Keras's
renormalisation of probability rows, ``q = x / sum(x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import vecmath as vm
from ._math import sigmoid, softmax


@dataclass(frozen=True)
class Link:
    """An elementwise inverse link ``mu = h(r)`` with its derivatives in terms of ``(r, mu)``."""

    name: str
    inverse: Callable[[np.ndarray], np.ndarray]
    first: Callable[[np.ndarray, np.ndarray], np.ndarray]  # h'(r)
    second: Callable[[np.ndarray, np.ndarray], np.ndarray]  # h''(r)
    formula: str  # the link g = h^{-1}, as the catalogue states it


def _half_logit_inverse(r: np.ndarray) -> np.ndarray:
    return sigmoid(r * r.dtype.type(2))


def _logit_first(r: np.ndarray, mu: np.ndarray) -> np.ndarray:
    return mu * (1 - mu)


IDENTITY = Link("identity", lambda r: r, lambda r, mu: np.ones_like(r), lambda r, mu: np.zeros_like(r),
                r"r = \mu")
LOG = Link("log", vm.exp, lambda r, mu: mu, lambda r, mu: mu, r"r = \log\mu")
LOGIT = Link("logit", sigmoid, _logit_first, lambda r, mu: mu * (1 - mu) * (1 - 2 * mu),
             r"r = \log\frac{\mu}{1-\mu}")
# scikit-learn's HalfLogitLink (the exponential loss): mu = expit(2 r)
HALF_LOGIT = Link("half_logit", _half_logit_inverse, lambda r, mu: 2 * mu * (1 - mu),
                  lambda r, mu: 4 * mu * (1 - mu) * (1 - 2 * mu), r"r = \tfrac12\log\frac{\mu}{1-\mu}")
LINKS = {link.name: link for link in (IDENTITY, LOG, LOGIT, HALF_LOGIT)}


def compose(link: Link, r: np.ndarray, g: np.ndarray, hess: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(g_raw, H_raw)`` of a loss with derivatives ``g``, ``hess`` in ``mu = link.inverse(r)``
    (``H_raw`` is ``None`` when ``hess`` is)."""
    mu = link.inverse(r)
    d1 = link.first(r, mu)
    g_raw = d1 * g
    if hess is None:
        return g_raw, None
    return g_raw, d1 * d1 * hess + link.second(r, mu) * g


def compose_softmax(mu: np.ndarray, g: np.ndarray, hess: np.ndarray | None = None, axis: int = -1
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """``(g_raw, diag H_raw)`` over ``axis`` for ``mu = softmax(r)``, from the loss's derivatives
    ``g`` and (diagonal) ``hess`` in ``mu``.

    With ``s = sum_j g_j mu_j``: ``g_raw_k = mu_k (g_k - s)``. With ``a_j = H_jj mu_j^2``,
    ``b_j = g_j mu_j`` and their sums ``A``, ``B``, the diagonal
    ``sum_j (a_j + b_j) (delta_jk - mu_k)^2 - mu_k (1 - mu_k) B`` simplifies to
    ``(a_k + b_k) (1 - 2 mu_k) + mu_k^2 (A + B) - mu_k (1 - mu_k) B``."""
    g_raw = mu * (g - _rowsum(g * mu, axis))
    if hess is None:
        return g_raw, None
    a, b = hess * mu * mu, g * mu
    b_sum = _rowsum(b, axis)
    return g_raw, (a * (1 - 2 * mu) + mu * mu * _rowsum(a, axis) + b * (1 - 2 * mu) + mu * mu * b_sum
                   - mu * (1 - mu) * b_sum)


def compose_normalised(q: np.ndarray, total: np.ndarray, g: np.ndarray, hess: np.ndarray | None = None,
                       axis: int = -1) -> tuple[np.ndarray, np.ndarray | None]:
    """``(g_raw, diag H_raw)`` for ``q = x / sum(x)`` over ``axis`` (Keras's renormalisation of
    probability rows; ``total`` is the row sum, kept), from the derivatives ``g`` and (diagonal)
    ``hess`` in ``q``. With ``dq_k/dx_j = (delta_kj - q_k) / S``:
    ``g_raw_k = (g_k - sum_j g_j q_j) / S`` and
    ``H_raw_kk = (H_kk (1 - 2 q_k) + sum_j H_jj q_j^2 - 2 g_k + 2 sum_j g_j q_j) / S^2``."""
    gq = _rowsum(g * q, axis)
    g_raw = (g - gq) / total
    if hess is None:
        return g_raw, None
    return g_raw, (hess * (1 - 2 * q) + _rowsum(hess * q * q, axis) - 2 * g + 2 * gq) / (total * total)


def _rowsum(a: np.ndarray, axis: int) -> np.ndarray:
    return a.sum(axis=axis, keepdims=True)


def softmax_inverse(r: np.ndarray, axis: int = -1) -> np.ndarray:
    """The multinomial inverse link: ``softmax`` over ``axis``."""
    return softmax(r, axis=axis)
