"""Sequence losses: CTC (Keras semantics), on an exact log-space forward-backward.

``ctc_forward_backward`` is the shared core: it takes per-frame log-probabilities and integer
label sequences and returns ``-log p(label | input)`` per sequence together with the normalised
state-occupation probabilities summed per class (``gamma``), from which the gradient with respect
to the logits is ``softmax(logits) - gamma``. It is written once so that a PyTorch-flavoured CTC
(``torch.nn.CTCLoss``: own blank index, per-sequence input lengths) can reuse it.

Algorithm (Graves et al. 2006). The label ``l`` of length ``L`` is extended with blanks to
``l' = (blank, l_1, blank, ..., l_L, blank)`` of length ``S = 2L + 1``. With ``e[t, s]`` the
log-probability of the class of state ``s`` at frame ``t``::

    alpha[0, s] = e[0, s]                             s in {0, 1}
    alpha[t, s] = logsumexp(alpha[t-1, s], alpha[t-1, s-1], alpha[t-1, s-2] if skip[s]) + e[t, s]
    beta[T-1, s] = 0                                  s in {S-1, S-2}
    beta[t, s]  = logsumexp(over s' in {s, s+1, s+2 if skip[s+2]} of beta[t+1, s'] + e[t+1, s'])
    log p       = logsumexp(alpha[T-1, S-1], alpha[T-1, S-2])
    occ[t, s]   = exp(alpha[t, s] + beta[t, s] - log p)

where ``skip[s]`` holds for label states whose label differs from the previous label (a repeated
label needs a blank in between). Every step is a logsumexp in the array's dtype (float32 stays
float32); ``-inf`` stands for probability 0, so no ``log_epsilon`` floor is involved. The batch is
vectorised (padded to the longest label); only the time axis is a Python loop. Cost
``O(B * T * (2 L_max + 1))`` time and memory, plus ``O(B * T * C)`` for the softmax and gradient.
"""

from __future__ import annotations

import numpy as np

from . import checks
from ._math import log_softmax
from .errors import DomainError, ShapeError
from .registry import Evaluation, Loss, register


def _lae3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """logsumexp of three arrays, elementwise; all ``-inf`` gives ``-inf`` (no NaN).

    Shifted by the elementwise max: three exp and one log, about half the cost of two
    ``np.logaddexp`` calls."""
    m = np.maximum(np.maximum(a, b), c)
    m = np.where(np.isfinite(m), m, m.dtype.type(0))
    with np.errstate(divide="ignore"):
        return np.log(np.exp(a - m) + np.exp(b - m) + np.exp(c - m)) + m


def ctc_repeats(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per sequence, how many consecutive pairs inside the label are equal (each needs a blank)."""
    if labels.shape[1] < 2:
        return np.zeros(labels.shape[0], dtype=np.int64)
    same = labels[:, 1:] == labels[:, :-1]
    inside = np.arange(1, labels.shape[1])[None, :] < lengths[:, None]
    return (same & inside).sum(axis=1)


def ctc_forward_backward(logp: np.ndarray, labels: np.ndarray, lengths: np.ndarray,
                         input_lengths: np.ndarray | None = None,
                         blank: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``-log p(label)`` per sequence and the per-class occupation probabilities.

    ``logp``: ``(B, T, C)`` log-probabilities (rows of ``exp(logp)`` sum to 1). ``labels``:
    ``(B, L)`` integer classes, of which the first ``lengths[b]`` are the label (any class,
    the blank included, is taken literally). ``input_lengths``: frames used per sequence
    (default ``T``); later frames get zero occupation. The caller must have checked
    ``lengths + repeats <= input_lengths``; then every ``log p`` is finite unless the
    arithmetic underflows.

    Returns ``nll`` of shape ``(B,)`` and ``occ`` of shape ``(B, T, C)``:
    ``occ[b, t, k]`` = posterior probability that frame ``t`` emits class ``k`` (rows sum to 1
    on used frames), so that ``d nll / d logp = -occ``.
    """
    dt = logp.dtype
    B, T, C = logp.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    t_len = np.full(B, T, dtype=np.int64) if input_lengths is None else np.asarray(input_lengths, dtype=np.int64)
    l_max = int(lengths.max(initial=0))
    S = 2 * l_max + 1
    neg_inf = dt.type(-np.inf)
    rows = np.arange(B)

    # extended labels: blank on even states, the label on odd ones (padding states beyond 2L
    # use the blank and are unreachable from the final states, so they never matter)
    ext = np.full((B, S), blank, dtype=np.int64)
    if l_max:
        ext[:, 1::2] = labels[:, :l_max]
    skip = np.zeros((B, S), dtype=bool)
    if l_max > 1:
        skip[:, 3::2] = labels[:, 1:l_max] != labels[:, :l_max - 1]
    emit = np.take_along_axis(logp, np.broadcast_to(ext[:, None, :], (B, T, S)), axis=2)  # (B, T, S)
    last = 2 * lengths  # final blank state; last - 1 is the final label state (if L >= 1)

    pad1 = np.full((B, 1), neg_inf, dtype=dt)
    pad2 = np.full((B, 2), neg_inf, dtype=dt)

    # forward
    alpha = np.full((B, T, S), neg_inf, dtype=dt)
    alpha[:, 0, 0] = emit[:, 0, 0]
    if S > 1:
        alpha[:, 0, 1] = np.where(lengths > 0, emit[:, 0, 1], neg_inf)
    for t in range(1, T):
        prev = alpha[:, t - 1]
        one = np.concatenate([pad1, prev[:, :-1]], axis=1)
        two = np.where(skip, np.concatenate([pad2, prev[:, :-2]], axis=1)[:, :S], neg_inf)
        step = _lae3(prev, one, two) + emit[:, t]
        alpha[:, t] = np.where((t < t_len)[:, None], step, prev)

    final = alpha[rows, t_len - 1]  # (B, S)
    log_p = final[rows, last]
    if l_max:
        log_p = np.where(lengths > 0, np.logaddexp(log_p, final[rows, np.maximum(last - 1, 0)]), log_p)

    # backward, excluding the emission at t: beta[t, s] = log p(frames t+1.. | state s at t)
    beta = np.full((B, T, S), neg_inf, dtype=dt)
    state = np.arange(S)[None, :]
    ends = (state == last[:, None]) | ((state == last[:, None] - 1) & (lengths[:, None] > 0))
    end_init = np.where(ends, dt.type(0), neg_inf)
    skip_next = np.concatenate([skip[:, 2:], np.zeros((B, 2), dtype=bool)], axis=1)[:, :S]  # skip[s + 2]
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            nxt = beta[:, t + 1] + emit[:, t + 1]
            one = np.concatenate([nxt[:, 1:], pad1], axis=1)
            two = np.where(skip_next, np.concatenate([nxt[:, 2:], pad2], axis=1)[:, :S], neg_inf)
            step = _lae3(nxt, one, two)
        else:
            step = np.full((B, S), neg_inf, dtype=dt)
        beta[:, t] = np.where((t == t_len - 1)[:, None], end_init,
                              np.where((t < t_len - 1)[:, None], step, neg_inf))

    finite = np.isfinite(log_p)
    safe_log_p = np.where(finite, log_p, dt.type(0))
    occ_states = np.where(finite[:, None, None], np.exp(alpha + beta - safe_log_p[:, None, None]), dt.type(0))
    # sum the state occupations per class: one bincount over flat (b, t, class) indices
    flat = (rows[:, None, None] * T + np.arange(T)[None, :, None]) * C + ext[:, None, :]
    occ = np.bincount(flat.ravel(), weights=occ_states.ravel(), minlength=B * T * C)
    return -log_p, occ.reshape(B, T, C).astype(dt, copy=False)


@register
class CTC(Loss):
    """Connectionist Temporal Classification, Keras semantics (``keras.losses.CTC``)."""

    name = "ctc"
    aliases = ("CTC",)
    summary = ("Connectionist Temporal Classification: negative log-probability of a label sequence, "
               "summed over every alignment of it to the input frames.")
    formula = (r"\ell = -\log \sum_{\pi \in \mathcal{B}^{-1}(l)} \prod_{t=1}^{T} "
               r"\operatorname{softmax}(\hat y_t)_{\pi_t},\quad l = (y_1, \dots, y_L),\ "
               r"L = \#\{j : y_j \neq 0\}")
    y_true_doc = ("integer labels (B, L_max) in [0, C): the label of row b is its first L_b entries, "
                  "L_b = number of nonzero entries; pad with trailing 0s (class 0 is the blank)")
    y_pred_doc = "logits (B, T, C) (log_softmax is applied inside); class 0 is the blank; C >= 2"
    per_sample_doc = "one value per sequence: shape (B,)"
    notes = (
        "As in Keras, the label length is count_nonzero(y_true[b]) and the label is the *first* that many "
        "entries, so a 0 in the middle is taken literally as a label token for class 0: [1, 2, 0, 2] is the "
        "3-token label [1, 2, 0] and [0, 0, 3] is the 1-token label [0]. Put the padding 0s at the end. "
        "Every sequence uses all T frames (input_length = T). "
        "Computed by an exact forward-backward in log space in the request dtype (Keras/Optax floor "
        "log-probabilities at -1e5 instead of -inf; identical unless a loss exceeds ~1e4). The gradient is "
        "softmax(y_pred) minus the posterior class-occupation probabilities. "
        "422s: ranks other than (B, L) and (B, T, C), different batch sizes, C < 2, non-integral labels or "
        "labels outside [0, C), and a label that cannot fit: row b needs T >= L_b + R_b frames, R_b being "
        "the number of equal consecutive tokens in its label (each needs a blank between). When it fits, "
        "some alignment exists and every alignment has positive probability, so the loss is finite; "
        "Keras would instead return about 1e5 for an impossible label.")
    references = {"keras": "keras.losses.CTC", "pytorch": "torch.nn.CTCLoss (blank=0, reduction='none')",
                  "optax": "optax.losses.ctc_loss",
                  "paper": "Graves et al. 2006, Connectionist Temporal Classification"}
    examples = (
        {"y_true": [[1, 2, 1, 0], [1, 2, 2, 0]],
         "y_pred": [[[0.5, 1.0, 0.1], [0.2, 0.3, 1.5], [1.0, 0.1, 0.2], [0.3, 1.2, 0.4], [0.9, 0.2, 0.1]],
                    [[0.1, 1.4, 0.3], [0.4, 0.2, 1.1], [1.3, 0.2, 0.2], [0.1, 0.3, 1.6], [0.7, 0.1, 0.2]]],
         "reduction": "none"},
    )
    hessian = False
    align_ranks = False
    y_true_kind, y_pred_kind = "labels", "logits"
    sample_shape = (2, 6, 4)
    test_shapes = ((2, 6, 4), (3, 5, 3))

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 3:
            raise ShapeError(f"y_pred must be logits of shape (batch, time, classes); got shape {list(y_pred.shape)}.",
                             ("y_pred",))
        if y_true.ndim != 2:
            raise ShapeError(f"y_true must be integer labels of shape (batch, max_label_length); got shape "
                             f"{list(y_true.shape)}.", ("y_true",))
        B, T, C = y_pred.shape
        if y_true.shape[0] != B:
            raise ShapeError(f"y_true has {y_true.shape[0]} label rows but y_pred has a batch of {B}; "
                             f"send one label row per sequence.", ("y_true",))
        if C < 2:
            raise ShapeError(f"y_pred needs at least 2 classes along its last axis (class 0 is the blank); "
                             f"got shape {list(y_pred.shape)}.", ("y_pred",))
        labels = checks.as_labels(y_true, "y_true", C)
        lengths = np.count_nonzero(labels, axis=1)
        need = lengths + ctc_repeats(labels, lengths)
        bad = need > T
        if np.any(bad):
            b = int(np.flatnonzero(bad)[0])
            raise DomainError(
                f"y_true[{b}] cannot be aligned to {T} frames: its label has {int(lengths[b])} tokens and "
                f"{int(need[b] - lengths[b])} repeated consecutive tokens (each needs a blank between), so it "
                f"needs at least {int(need[b])} time steps; send a longer y_pred or a shorter label.",
                ("y_true", b))
        return (labels, lengths), y_pred

    def evaluate(self, y_true, y_pred, p):
        labels, lengths = y_true
        logp = log_softmax(y_pred, axis=-1)
        nll, occ = ctc_forward_backward(logp, labels, lengths)
        if not np.all(np.isfinite(nll)):
            b = int(np.flatnonzero(~np.isfinite(nll))[0])
            raise DomainError(
                f"y_pred[{b}] gives the label y_true[{b}] a probability that is 0 in {y_pred.dtype.name} "
                f"(the logits are too extreme); scale the logits down or use float64.", ("y_pred", b))

        def vjp(up):
            # d(-log p)/d logits = softmax * sum_k occ - occ (sum_k occ = 1 on every frame)
            soft = np.exp(logp)
            return up[:, None, None] * (soft * occ.sum(axis=-1, keepdims=True) - occ)

        return Evaluation(nll, vjp)

    def sample(self, rng, shape, p, decimals=None):
        """Labels that fit, then logits. Draw order (after the PCG64 seed): label lengths
        ``integers(1, L + 1, B)`` with ``L = max(1, T // 2)`` columns; tokens ``integers(1, C, (B, L))``
        (entries past each length are set to 0, the trailing padding); logits ``normal(0, 2, (B, T, C))``
        rounded to ``decimals``. A label of at most ``T // 2`` tokens has at most ``T // 2 - 1``
        repeats, so it always fits ``T`` frames."""
        if len(shape) != 3 or shape[2] < 2 or shape[1] < 1:
            raise ShapeError(f"shape must be (batch, time, classes) with time >= 1 and classes >= 2 for ctc; "
                             f"got {list(shape)}.", ("shape",))
        B, T, C = shape
        L = max(1, T // 2)
        lengths = rng.integers(1, L + 1, B)
        tokens = rng.integers(1, C, (B, L))
        tokens[np.arange(L)[None, :] >= lengths[:, None]] = 0
        logits = rng.normal(0.0, 2.0, shape)
        if decimals is not None:
            logits = np.round(logits, decimals)
        return {"y_true": tokens.astype(np.float64), "y_pred": logits}
