"""Metric-learning losses ("Other losses"): the seed's FaceNet triplet loss, the quadruplet loss,
TensorFlow Addons' contrastive loss and Optax's NT-Xent. Keras-style requests (sample_weight, Keras
reductions).

Hinge kinks follow the peer the triplet loss comes from, the seed's ``tf.maximum(basic_loss, 0.0)``:
TensorFlow's gradient of ``maximum(x, y)`` goes to ``x`` where ``x >= y``, so a hinge exactly at 0
counts as active (full gradient, and its Hessian) rather than relu's 0.
"""

from __future__ import annotations

import numpy as np

from . import checks, sampling
from . import vecmath as vm
from ._math import Elementwise, Terms
from .errors import DomainError, ShapeError
from .params import FLOAT, NON_NEGATIVE, POSITIVE, REAL, Param
from .registry import Evaluation, Loss, register

SEED_TRIPLET = "the seed's triplet_loss (tf.split(y_pred, 3, axis=-1), squared L2 distances, tf.maximum)"


class _Tuplet(Loss):
    """Losses on k embeddings per sample, sent stacked ``(B, k, D)`` or concatenated ``(B, k·D)`` and
    read as ``tf.split(y_pred, k, axis=-1)`` reads it (the i-th block of D columns is the i-th embedding)."""

    family = "other"
    k: int = 3
    roles: str = ""
    hessian = True
    y_true_required = False
    align_ranks = False
    y_true_doc = "unused (may be omitted; any array sent is ignored)"
    per_sample_doc = "one value per sample: shape (B,)"
    sample_shape = (4, 3, 3)
    test_shapes = ((4, 3, 3), (3, 9))

    def prepare(self, y_true, y_pred, p):
        k = self.k
        if y_pred.ndim == 3 and y_pred.shape[1] == k:
            return None, y_pred
        if y_pred.ndim == 2 and y_pred.shape[1] % k == 0:
            # tf.split(y_pred, k, axis=-1): column blocks [0, D), [D, 2D), ...; a reshape reads exactly those
            return None, y_pred.reshape(y_pred.shape[0], k, y_pred.shape[1] // k)
        raise ShapeError(f"y_pred must hold the {self.roles} embeddings stacked along axis 1, shape (B, {k}, D), or "
                         f"concatenated along the last axis as tf.split(y_pred, {k}, axis=-1) reads them, shape "
                         f"(B, {k}·D); got shape {list(y_pred.shape)}.", ("y_pred",))

    def sample(self, rng, shape, p, decimals=None):
        # y_true is unused: zeros, one per sample, keep the exercise's shape simple
        return {"y_true": np.zeros(shape[:1]), "y_pred": sampling.draw("real", rng, shape, decimals)}


def _hinge(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """max(z, 0) and where it is active, z >= 0 (tf.maximum's gradient rule on a tie)."""
    return np.maximum(z, z.dtype.type(0)), (z >= 0).astype(z.dtype)


def _squared_distance(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    w = u - v
    return (w * w).sum(axis=-1)


@register
class Triplet(_Tuplet):
    name = "triplet"
    aliases = ("triplet_loss", "TripletLoss")
    summary = "FaceNet's triplet loss: the anchor nearer its positive than its negative by a margin (squared L2)."
    formula = r"\ell_b = \max\!\big(\lVert a_b - p_b\rVert^2 - \lVert a_b - n_b\rVert^2 + \alpha,\ 0\big)"
    params = (Param("alpha", FLOAT, 0.2, "the margin α between the squared distances", REAL),)
    roles = "anchor, positive and negative"
    y_pred_doc = ("anchor, positive and negative: stacked along axis 1, shape (B, 3, D), or concatenated along the "
                  "last axis, shape (B, 3·D), as the seed's tf.split(y_pred, 3, axis=-1) reads it")
    notes = ("Squared L2 distances, no normalisation: L2-normalise the embeddings first, as FaceNet does. A rank-2 "
             "y_pred is split into three column blocks of D = y_pred.shape[1] / 3 (anchor, positive, negative), "
             "exactly as tf.split does; a layout that is neither (B, 3, D) nor (B, 3·D) is a 422. The seed returns "
             "tf.reduce_sum over the batch: reduction sum here. At exactly the margin (z = 0) the hinge counts as "
             "active, as tf.maximum's gradient has it (full gradient, not relu's 0). Hessian diagonal: 0 for the "
             "anchor, 2 for the positive, -2 for the negative, where the hinge is active.")
    references = {"seed": SEED_TRIPLET,
                  "paper": "Schroff, Kalenichenko & Philbin 2015, FaceNet (arXiv:1503.03832)",
                  "pytorch": "torch.nn.TripletMarginLoss (unsquared distances, margin 1)",
                  "optax": "optax.losses.triplet_margin_loss (unsquared distances)"}
    examples = ({"y_pred": [[[0.0, 1.0], [0.1, 0.9], [1.0, 0.0]], [[0.6, 0.8], [0.8, 0.6], [0.7, 0.7]]]},
                {"y_pred": [[0.0, 1.0, 0.1, 0.9, 1.0, 0.0], [0.6, 0.8, 0.8, 0.6, 0.7, 0.7]],
                 "reduction": "sum"})

    def evaluate(self, y_true, x, p) -> Evaluation:
        a, pos, neg = x[:, 0], x[:, 1], x[:, 2]
        loss, active = _hinge(_squared_distance(a, pos) - _squared_distance(a, neg) + x.dtype.type(p["alpha"]))
        two = x.dtype.type(2)

        def vjp(up):
            c = (two * active * up)[:, None]
            return np.stack([c * (neg - pos), c * (pos - a), c * (a - neg)], axis=1)

        def hess(up):
            c = (two * active * up)[:, None, None]
            return c * np.array([0, 1, -1], dtype=x.dtype)[None, :, None] * np.ones_like(x)

        return Evaluation(loss, vjp, hess)


@register
class Quadruplet(_Tuplet):
    name = "quadruplet"
    aliases = ("quadruplet_loss", "QuadrupletLoss")
    summary = ("Quadruplet loss: the triplet term plus a weaker push between the positive pair and a pair of two "
               "other negatives (squared L2).")
    formula = (r"\ell_b = \max\!\big(\lVert a - p\rVert^2 - \lVert a - n_1\rVert^2 + \alpha_1, 0\big) + "
               r"\max\!\big(\lVert a - p\rVert^2 - \lVert n_1 - n_2\rVert^2 + \alpha_2, 0\big)")
    params = (Param("alpha1", FLOAT, 1.0, "the margin α1 of the triplet term", REAL),
              Param("alpha2", FLOAT, 0.5, "the margin α2 of the (weaker) negative-pair term", REAL))
    k = 4
    roles = "anchor, positive, negative1 and negative2"
    y_pred_doc = ("anchor, positive, negative1, negative2: stacked along axis 1, shape (B, 4, D), or concatenated "
                  "along the last axis, shape (B, 4·D), read as tf.split(y_pred, 4, axis=-1)")
    sample_shape = (4, 4, 3)
    test_shapes = ((4, 4, 3), (3, 8))
    notes = ("Chen et al.'s loss with squared distances on one quadruplet per sample (n2 of a class other than "
             "the anchor's and n1's); no normalisation. A layout that is neither (B, 4, D) nor (B, 4·D) is a 422. "
             "Each hinge at exactly 0 counts as active, as tf.maximum's gradient has it (the triplet loss's "
             "convention). Hessian diagonal, per active hinge: anchor 2·[z2 >= 0], positive 2 per active hinge, "
             "negative1 -2 per active hinge, negative2 -2·[z2 >= 0].")
    references = {"paper": "Chen, Chen, Zhang & Huang 2017, Beyond triplet loss (CVPR, arXiv:1704.01719)",
                  "seed": "the seed article's quadruplet loss, written as its triplet_loss is"}
    examples = ({"y_pred": [[[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.3]],
                            [[0.6, 0.8], [0.8, 0.6], [0.7, 0.7], [0.0, 1.0]]]},)

    def evaluate(self, y_true, x, p) -> Evaluation:
        dt = x.dtype.type
        a, pos, n1, n2 = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        d_ap = _squared_distance(a, pos)
        first, act1 = _hinge(d_ap - _squared_distance(a, n1) + dt(p["alpha1"]))
        second, act2 = _hinge(d_ap - _squared_distance(n1, n2) + dt(p["alpha2"]))
        two = dt(2)

        def vjp(up):
            c1, c2 = (two * act1 * up)[:, None], (two * act2 * up)[:, None]
            return np.stack([c1 * (n1 - pos) + c2 * (a - pos), (c1 + c2) * (pos - a),
                             c1 * (a - n1) + c2 * (n2 - n1), c2 * (n1 - n2)], axis=1)

        def hess(up):
            c1, c2 = two * act1 * up, two * act2 * up
            diag = np.stack([c2, c1 + c2, -(c1 + c2), -c2], axis=1)  # (B, 4): the same for every coordinate
            return diag[:, :, None] * np.ones_like(x)

        return Evaluation(first + second, vjp, hess)


@register
class Contrastive(Elementwise):
    name = "contrastive"
    aliases = ("contrastive_loss", "ContrastiveLoss")
    family = "other"
    summary = "Contrastive loss of pair distances: similar pairs pulled to 0, dissimilar ones pushed past a margin."
    formula = r"\ell = y\,d^2 + (1 - y)\max(m - d, 0)^2"
    params = (Param("margin", FLOAT, 1.0, "the margin m dissimilar pairs are pushed beyond", REAL),)
    y_true_doc = "1 for a similar pair, 0 for a dissimilar one (TensorFlow Addons' convention), same shape as y_pred"
    y_pred_doc = "pair distances >= 0 (e.g. the L2 distance of the two embeddings), shape (B,) or any shape"
    per_sample_doc = "elementwise: the shape of y_pred"
    y_true_interval = None
    y_pred_interval = NON_NEGATIVE
    y_true_kind, y_pred_kind = "binary", "positive"
    sample_shape = (8,)
    test_shapes = ((8,), (3, 2))
    notes = ("TensorFlow Addons' contrastive_loss exactly: label 1 = similar (Hadsell et al. write Y = 0 for similar "
             "and halve both terms), no 1/2. Labels other than 0 and 1 and negative distances are 422s (TFA computes "
             "a meaningless number for them). At d = m the first derivative is continuous (0 from the margin term); "
             "the Hessian there takes the margin side, 2(1 - y), as tf.maximum's gradient rule gives.")
    references = {"tensorflow_addons": "tfa.losses.contrastive_loss",
                  "tensorflow_addons_docs": "https://www.tensorflow.org/addons/api_docs/python/tfa/losses/contrastive_loss",
                  "paper": "Hadsell, Chopra & LeCun 2006, Dimensionality Reduction by Learning an Invariant Mapping"}
    examples = ({"y_true": [1, 0, 0, 1], "y_pred": [0.3, 0.4, 1.5, 0.0]},
                {"y_true": [1, 0], "y_pred": [0.5, 0.5], "params": {"margin": 2.0}, "sample_weight": [1.0, 0.5]})

    def prepare(self, y_true, y_pred, p):
        y_true, y_pred = super().prepare(y_true, y_pred, p)
        checks.check_in_set(y_true, (0.0, 1.0), "y_true", "pair labels, 1 for similar and 0 for dissimilar")
        return y_true, y_pred

    def terms(self, y, d, p) -> Terms:
        dt = d.dtype.type
        gap = dt(p["margin"]) - d
        push = np.maximum(gap, dt(0))
        apart = dt(1) - y
        two = dt(2)
        return (y * d * d + apart * push * push, lambda: two * (y * d - apart * push),
                lambda: two * (y + apart * (gap >= 0)))


def _unit_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optax's cosine normalisation: u = x / sqrt(max(|x|^2, eps)) with eps = finfo(dtype).eps; returns u,
    the norm used (per row, a column) and where the floor is inactive (there the norm depends on x)."""
    square = (x * x).sum(axis=1, keepdims=True)
    eps = np.finfo(x.dtype).eps
    norm = np.sqrt(np.maximum(square, eps))
    return x / norm, norm, (square > eps).astype(x.dtype)


@register
class NTXent(Loss):
    name = "ntxent"
    aliases = ("nt_xent", "NTXentLoss", "NTXent")
    family = "other"
    summary = ("NT-Xent (SimCLR's normalised temperature-scaled cross-entropy): each positive pair against the "
               "anchor's negatives, on cosine similarities.")
    formula = (r"\ell = \frac{1}{|P|}\sum_{(i,j) \in P} -\log\frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\,y_k \ne y_i} "
               r"e^{s_{ik}}},\quad s_{ij} = \frac{\cos(x_i, x_j)}{\tau},\ P = \{(i, j): i \ne j,\ y_i = y_j\}")
    params = (Param("temperature", FLOAT, 0.07, "the temperature τ dividing the cosine similarities", POSITIVE),)
    y_true_doc = "integer labels, shape (B,): embeddings with the same label are positive pairs"
    y_pred_doc = "embeddings, shape (B, D) (not necessarily normalised: the loss uses their cosine similarity)"
    per_sample_doc = "a scalar: the mean over every ordered positive pair (Optax returns one number)"
    hessian = True
    align_ranks = False
    sample_shape = (6, 3)
    test_shapes = ((6, 3), (5, 4))
    work_doc = "B x B: the similarity of every pair of embeddings"
    notes = ("Optax's ntxent exactly: cosine similarity with each squared norm floored at the dtype's machine epsilon "
             "(finfo.eps), the other positives of the anchor are not in the denominator (only the pair itself and "
             "the anchor's negatives), the mean is over ordered pairs (i, j) and (j, i) both. A batch with no "
             "positive pair (no label twice) is a 422: Optax divides 0 by 0 and answers NaN. Labels need not be "
             "0-based; non-integral labels are a 422. A scalar loss: sample_weight scales it, and the Keras "
             "reductions of one value all give that value. The Hessian is the diagonal of the second derivative "
             "with respect to the embeddings as sent, through the normalisation.")
    references = {"optax": "optax.losses.ntxent",
                  "optax_docs": "https://optax.readthedocs.io/en/latest/api/losses.html#optax.losses.ntxent",
                  "paper": "Chen, Kornblith, Norouzi & Hinton 2020, SimCLR (arXiv:2002.05709)",
                  "pytorch_metric_learning": "pytorch_metric_learning.losses.NTXentLoss"}
    examples = ({"y_true": [0, 0, 1, 1], "y_pred": [[0.1, 0.9], [0.3, 0.8], [0.9, -0.2], [0.7, 0.1]],
                 "params": {"temperature": 0.5}},)

    def work(self, y_true, y_pred, p):
        return max(y_pred.shape[0] ** 2, y_pred.size)

    def prepare(self, y_true, y_pred, p):
        labels = checks.labelled_embeddings(y_true, y_pred)
        if len(np.unique(labels)) == len(labels):
            raise DomainError("y_true has no two equal labels, so there is no positive pair: Optax's ntxent divides "
                              "0 by 0 and answers NaN; give at least two embeddings the same label.", ("y_true",))
        return labels, y_pred

    def sample(self, rng, shape, p, decimals=None):
        """Labels ``permutation(arange(B) // 2)`` (every class twice, one singleton if B is odd: positive
        pairs for B >= 2, negatives for B >= 3), then embeddings ``normal(0, 1, (B, D))``."""
        if len(shape) != 2 or shape[0] < 2 or shape[1] < 1:
            raise ShapeError(f"shape must be (batch, dim) with batch >= 2 for ntxent; got {list(shape)}.", ("shape",))
        labels = rng.permutation(np.arange(shape[0]) // 2).astype(np.float64)
        return {"y_true": labels, "y_pred": sampling.draw("real", rng, shape, decimals)}

    def evaluate(self, labels, x, p) -> Evaluation:
        dt = x.dtype.type
        tau = dt(p["temperature"])
        zero = dt(0)
        same = labels[:, None] == labels[None, :]
        negatives = ~same
        positives = same
        np.fill_diagonal(positives, False)
        count = dt(positives.sum())
        u, norm, free = _unit_rows(x)
        s = u @ u.T
        s /= tau
        # every row's exponentials shifted by its largest similarity to a pair or a negative (Optax's shift)
        shift = np.where(positives | negatives, s, dt(-np.inf)).max(axis=1, keepdims=True)
        shift[~np.isfinite(shift)] = zero  # a row with no other embedding (B = 1 is refused before)
        e = vm.exp(s - shift)
        neg_sum = np.where(negatives, e, zero).sum(axis=1, keepdims=True)  # N_i (shifted)
        z = e + neg_sum  # Z_ij = e^{s_ij} + N_i, used on the positive pairs only
        pair_terms = np.where(positives, vm.log(z) - (s - shift), zero)
        loss = np.asarray(pair_terms.sum() / count, dtype=x.dtype)
        del pair_terms
        inv_z = np.where(positives, 1 / z, zero)  # 1 / Z_ij on the positive pairs
        q = e * inv_z  # the pair's own softmax weight q_ij
        # d loss / d s: (q_ij - 1) on the pairs, e^{s_ik} sum_j 1/Z_ij on the negatives k of row i
        inv_z_rows = inv_z.sum(axis=1, keepdims=True)
        g_s = np.where(positives, q - 1, zero) + np.where(negatives, e * inv_z_rows, zero)
        g_s /= count

        def grad_unit(scale):
            g_c = g_s * (scale / tau)  # d loss / d (u u^T), s = u u^T / tau
            return (g_c + g_c.T) @ u

        def to_x(g_u):
            # through u = x / max(|x|, sqrt(eps)): the projection off u where the floor is inactive
            return (g_u - free * (g_u * u).sum(axis=1, keepdims=True) * u) / norm

        def vjp(up):
            return to_x(grad_unit(up))

        def hess(up):
            return up * self._hessian(u, norm, free, s, e, inv_z, q, inv_z_rows, positives, negatives, g_s,
                                      tau, count)

        return Evaluation(loss, vjp, hess)

    @staticmethod
    def _hessian(u, norm, free, s, e, inv_z, q, inv_z_rows, positives, negatives, g_s, tau, count):
        """The diagonal of the Hessian with respect to x (derivation: the loss is (1/|P|) sum over pairs of
        logsumexp over {j} u N_i minus s_ij, so along a direction its second derivative is the variance of
        ds under each pair's softmax plus the gradient times the normalisation's curvature).

        Moving x_ad moves u_a by w = (e_d - f u_ad u_a) / n_a (f = 1 where the norm floor is inactive), so
        ds_ak = ds_ka = w.u_k / tau = (u_kd - f u_ad c_ak) / (n_a tau) for every k != a. Row a's pairs see all
        of them; another row i sees only its entry a."""
        zero = u.dtype.type(0)
        c = s * tau  # cosine similarities
        # row a's own pairs (a, j): sum_j [E_pi(ds^2) - E_pi(ds)^2], pi the softmax over {j} u N_a
        own = np.where(positives, q, zero) + np.where(negatives, e * inv_z_rows, zero)  # R_ak = sum_j pi_k
        u2 = u * u
        rc = own * c
        first = own @ u2 - 2 * u * (rc @ u) * free + u2 * (rc * c).sum(axis=1, keepdims=True) * free
        # E_pi(ds)_(a,j),d = [A_ad / Z_aj + q_aj (u_jd - f u_ad c_aj)] / (n_a tau), with the negatives' part
        # A_ad = sum_{k in N_a} e_ak (u_kd - f u_ad c_ak)
        en = np.where(negatives, e, zero)
        big_a = en @ u - free * u * (en * c).sum(axis=1, keepdims=True)
        inv_z2 = (inv_z * inv_z).sum(axis=1, keepdims=True)
        qz = q * inv_z
        cross = qz @ u - free * u * (qz * c).sum(axis=1, keepdims=True)
        q2 = q * q
        pair = q2 @ u2 - 2 * free * u * ((q2 * c) @ u) + free * u2 * (q2 * c * c).sum(axis=1, keepdims=True)
        second = big_a * big_a * inv_z2 + 2 * big_a * cross + pair
        # the other rows i: entry a only, variance pi_a (1 - pi_a) summed over row i's pairs
        # (K_ia = q_ia (1 - q_ia) where a is i's positive, e_ia sum_j (1/Z_ij - e_ia / Z_ij^2) where a is a negative)
        k = np.where(positives, q - q2, zero) + np.where(negatives, e * inv_z_rows - e * e * inv_z2, zero)
        kc = k * c
        others = k.T @ u2 - 2 * free * u * (kc.T @ u) + free * u2 * (kc * c).sum(axis=0)[:, None]
        variance = (first - second + others) / (count * (norm * tau) ** 2)
        # the gradient through the normalisation's second derivative: d2u/dx_d2 . g with g = dloss/du_a
        g_c = g_s / tau
        g_u = (g_c + g_c.T) @ u
        gu = (g_u * u).sum(axis=1, keepdims=True)
        curvature = free * (-2 * g_u * u + 3 * gu * u2 - gu) / (norm * norm)
        return variance + curvature
