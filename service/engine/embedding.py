"""Similarity and embedding losses."""

from __future__ import annotations

import numpy as np

from . import checks
from . import vecmath as vm
from ._math import eps_like, sigmoid, softplus
from .errors import DomainError, ShapeError
from .params import BOOL, FLOAT, POSITIVE, Param, normalize_axes
from .registry import Evaluation, Loss, register


def l2_normalize(v: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keras's ``normalize``: ``v * rsqrt(max(sum(v^2), eps^2))``.

    Returns the normalised array, the inverse norm used, and where the floor is inactive (there
    the inverse norm depends on ``v``)."""
    eps = eps_like(v)
    square_sum = (v * v).sum(axis=axis, keepdims=True)
    inv = 1 / np.sqrt(np.maximum(square_sum, eps * eps))
    return v * inv, inv, square_sum > eps * eps


@register
class CosineSimilarity(Loss):
    name = "cosine_similarity"
    aliases = ("CosineSimilarity",)
    summary = "Negative cosine similarity: -1 for identical directions, +1 for opposite ones."
    formula = r"\ell = -\sum_j \frac{y_j}{\lVert y\rVert}\,\frac{\hat y_j}{\lVert \hat y\rVert}"
    params = (Param("axis", "axis", -1, "the axis along which the similarity is computed"),)
    y_true_doc = "real vectors, same shape as y_pred"
    y_pred_doc = "real vectors"
    per_sample_doc = "the similarity axis is reduced: shape y_pred.shape without axis"
    notes = ("Norms are floored at 1e-7 (Keras: v * rsqrt(max(sum v^2, eps^2))), so a zero vector gives 0. "
             "The Keras metric CosineSimilarity returns +cos; this loss returns -cos. The Hessian's diagonal is "
             "(2 u_i x_i/|x| + c - 3 c x_i^2/|x|^2) / |x|^2 with u = y/|y| and c the cosine; 0 where the norm is "
             "floored (the loss is linear in y_pred there).")
    hessian = True
    test_variants = ({"axis": 0},)
    references = {"keras": "keras.losses.CosineSimilarity", "pytorch": "torch.nn.CosineEmbeddingLoss (pairs)",
                  "optax": "optax.losses.cosine_similarity"}
    examples = ({"y_true": [[0.0, 1.0], [1.0, 1.0]], "y_pred": [[1.0, 0.0], [1.0, 1.0]], "params": {"axis": 1}},)

    def evaluate(self, y_true, y_pred, p):
        if y_pred.ndim == 0:
            y_true, y_pred = y_true.reshape(1), y_pred.reshape(1)
        axis = normalize_axes(p["axis"], y_pred.ndim)[0]
        yn, _, _ = l2_normalize(y_true, axis)
        xn, inv, active = l2_normalize(y_pred, axis)
        per_sample = -(yn * xn).sum(axis=axis)

        def vjp(up):
            g = -yn * np.expand_dims(up, axis)
            projection = np.where(active, (g * xn).sum(axis=axis, keepdims=True) * xn, 0)
            return inv * (g - projection)

        def hess(up):
            # d^2/dx_i^2 of -(u . x)/|x| with u = y/|y|, c = u . x/|x|:  (2 u_i xn_i + c - 3 c xn_i^2) / |x|^2;
            # where the norm is floored the loss is linear in x, so 0
            c = -np.expand_dims(per_sample, axis)
            h = inv * inv * (2 * yn * xn + c - 3 * c * xn * xn)
            return np.where(active, h * np.expand_dims(up, axis), 0)

        return Evaluation(per_sample, vjp, hess)


UNIT_NORM_TOLERANCE = 1e-2  # |norm - 1| allowed for Circle's "L2-normalised" rows


def _masked_softmax(z: np.ndarray, mask: np.ndarray, lse: np.ndarray) -> np.ndarray:
    """``exp(z - lse)`` on ``mask`` and 0 elsewhere; 0 on rows whose logsumexp is -inf (no NaN)."""
    finite = np.isfinite(lse)
    ok = mask & finite[:, None]
    shifted = np.where(ok, z - np.where(finite, lse, z.dtype.type(0))[:, None], z.dtype.type(0))
    return np.where(ok, vm.exp(shifted), z.dtype.type(0))


def _masked_logsumexp(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row-wise logsumexp of ``where(mask, z, -inf)``: -inf on rows with nothing unmasked."""
    dt = z.dtype.type
    masked = np.where(mask, z, dt(-np.inf))
    m = masked.max(axis=1)
    shift = np.where(np.isfinite(m), m, dt(0))
    with np.errstate(divide="ignore"):  # log(0) = -inf for empty rows, as Keras gives
        return vm.log(vm.exp(masked - shift[:, None]).sum(axis=1)) + shift


@register
class Circle(Loss):
    """Circle loss on L2-normalised embeddings (Sun et al. 2020), Keras semantics
    (``keras.losses.Circle``), with ``y_pred`` as its own reference set."""

    name = "circle"
    aliases = ("Circle",)
    summary = ("Circle loss: pulls same-label embeddings together and pushes different-label ones apart, "
               "weighting each pair by how far it is from its optimum.")
    formula = (r"\ell_i = \operatorname{softplus}\Big(\log\sum_{j \in P_i} e^{-\gamma\,[m + d_{ij}]_+\,(m - d_{ij})}"
               r" + \log\sum_{j \in N_i} e^{\gamma\,[1 + m - d_{ij}]_+\,(1 - m - d_{ij})}\Big),\quad "
               r"d_{ij} = \max(1 - \hat y_i \cdot \hat y_j, 0)")
    params = (Param("gamma", FLOAT, 80.0, "scale of the similarity scores", POSITIVE),
              Param("margin", FLOAT, 0.4, "relaxation margin m: in cosine distance, positives are weighted by "
                                          "their distance above -m and negatives below 1 + m, with decision "
                                          "boundaries m (positives) and 1 - m (negatives)"),
              Param("remove_diagonal", BOOL, True, "exclude each embedding's pair with itself from its positives"))
    y_true_doc = "integer class labels, shape (B,)"
    y_pred_doc = "L2-normalised embeddings, shape (B, D) (each row of unit norm, within 1e-2)"
    per_sample_doc = "one value per embedding: shape (B,)"
    notes = (
        "P_i: rows j with the same label as i (j != i when remove_diagonal), N_i: rows with a different label; "
        "y_pred is also the reference set (Keras's ref_labels/ref_embeddings are not offered). "
        "Exactly Keras's formula: distances are clamped at 0, both weights at 0 (derivative 0 at the kink), "
        "an empty P_i or N_i gives log 0 = -inf and a loss of softplus(-inf) = 0. As in Keras, the loss "
        "carries the mask loss > 0, so sum_over_batch_size/mean average over the rows with a positive loss "
        "only (the others are left out, not counted as 0) and an all-zero batch gives 0. "
        "Keras does not normalise y_pred; here rows whose L2 norm is more than 1e-2 away from 1 are a 422 "
        "(normalise them first). The gradient is with respect to the embeddings as sent (y_pred is on both "
        "sides of y_pred @ y_pred.T), not projected onto the sphere. Labels need not be 0-based; "
        "non-integral labels are a 422.")
    references = {"keras": "keras.losses.Circle", "pytorch": None, "optax": None,
                  "paper": "Sun et al. 2020, Circle Loss (arXiv:2002.10857)"}
    examples = (
        {"y_true": [1, 1, 2, 2, 3],
         "y_pred": [[0.70014004, -0.42008403, 0.14002801, 0.56011203],
                    [0.17609018, 0.70436073, -0.52827054, 0.44022545],
                    [-0.34050261, 0.25537696, -0.68100522, 0.59587957],
                    [0.32163376, -0.75047877, 0.53605627, -0.21442251],
                    [0.51261459, -0.34174306, 0.17087153, 0.76892189]],
         "params": {"gamma": 80.0, "margin": 0.4}},
    )
    hessian = False
    without_hessian = ("not implemented: the diagonal runs through every pair's logsumexp weights and the "
                       "soft-plus, as much work again as the gradient's B x B pairs; the loss is twice "
                       "differentiable away from its clamps")
    align_ranks = False
    y_true_kind, y_pred_kind = "labels", "unit_rows"
    sample_shape = (6, 3)
    test_shapes = ((6, 3), (5, 4))
    work_doc = "B x B: the similarity of every pair of embeddings"

    def work(self, y_true, y_pred, p):
        return max(y_pred.shape[0] ** 2, y_pred.size)

    def prepare(self, y_true, y_pred, p):
        labels = checks.labelled_embeddings(y_true, y_pred)
        norms = np.sqrt((y_pred * y_pred).sum(axis=1))
        bad = ~(np.abs(norms - 1) <= UNIT_NORM_TOLERANCE)
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise DomainError(
                f"y_pred rows must be L2-normalised embeddings (norm 1 within {UNIT_NORM_TOLERANCE:g}); "
                f"y_pred[{i}] has norm {float(norms[i]):.6g}. Divide each row by its norm first.", ("y_pred", i))
        return labels, y_pred

    def evaluate(self, labels, y_pred, p):
        dt = y_pred.dtype.type
        gamma, m = dt(p["gamma"]), dt(p["margin"])
        zero, one = dt(0), dt(1)
        same = labels[:, None] == labels[None, :]
        pos = same & ~np.eye(len(labels), dtype=bool) if p["remove_diagonal"] else same
        neg = ~same

        raw = one - y_pred @ y_pred.T
        dist = np.maximum(raw, zero)
        pos_f, neg_f = pos.astype(y_pred.dtype), neg.astype(y_pred.dtype)
        wp_raw = (m + dist) * pos_f
        wn_raw = (one + m - dist) * neg_f
        wp, wn = np.maximum(wp_raw, zero), np.maximum(wn_raw, zero)
        pos_d, neg_d = m - dist, (one - m) - dist
        a = -gamma * wp * pos_d
        b = gamma * wn * neg_d
        p_lse = _masked_logsumexp(a, pos)
        n_lse = _masked_logsumexp(b, neg)
        z = p_lse + n_lse
        per_sample = softplus(z)

        def vjp(up):
            s = up * sigmoid(z)  # d loss_i / d z_i, 0 where z = -inf
            sp = _masked_softmax(a, pos, p_lse)
            sn = _masked_softmax(b, neg, n_lse)
            # d a / d dist and d b / d dist through the clamped weights (max' = 0 at the kink)
            da = -gamma * (np.where(wp_raw > 0, pos_d, zero) - wp)
            db = gamma * (np.where(wn_raw > 0, -neg_d, zero) - wn)
            g_dist = s[:, None] * (sp * da + sn * db)
            g_sim = -np.where(raw > 0, g_dist, zero)  # d/d (y_pred @ y_pred.T)
            return g_sim @ y_pred + g_sim.T @ y_pred

        return Evaluation(per_sample, vjp, mask=per_sample > 0)

    def sample(self, rng, shape, p, decimals=None):
        """Labels with repeated classes, then unit rows. Draw order (after the PCG64 seed):
        labels ``permutation(arange(B) // 2)`` (every class twice, one singleton if B is odd, so
        rows have positives and, for B >= 3, negatives); embeddings ``normal(0, 1, (B, D))``, each
        row divided by its norm. With ``decimals``, each row is rounded and then its largest entry is
        reset to ``sign * round(sqrt(1 - sum of the others' squares))``, which keeps the norm within
        ``0.5 * 10**-decimals`` of 1; a row that still misses the 1e-2 tolerance (decimals < 2)
        becomes the signed unit vector of its largest entry."""
        if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
            raise ShapeError(f"shape must be (batch, dim) for circle; got {list(shape)}.", ("shape",))
        B, _ = shape
        labels = rng.permutation(np.arange(B) // 2).astype(np.float64)
        x = rng.normal(0.0, 1.0, shape)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        if decimals is not None:
            k = np.argmax(np.abs(x), axis=1)
            rows = np.arange(B)
            sign = np.where(x[rows, k] < 0, -1.0, 1.0)
            x = np.round(x, decimals)
            x[rows, k] = 0.0
            rest = (x * x).sum(axis=1)
            x[rows, k] = sign * np.round(np.sqrt(np.maximum(1.0 - rest, 0.0)), decimals)
            off = np.abs(np.linalg.norm(x, axis=1) - 1) > UNIT_NORM_TOLERANCE
            if np.any(off):
                x[off] = 0.0
                x[rows[off], k[off]] = sign[off]
        return {"y_true": labels, "y_pred": x}
