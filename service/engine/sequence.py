"""Sequence losses: CTC with Keras's semantics (``ctc``) and with PyTorch's (``torch.ctc_loss``), on one
exact forward-backward.

``ctc_forward_backward`` is the shared core: it takes per-frame log-probabilities and integer
label sequences and returns ``-log p(label | input)`` per sequence together with the normalised
state-occupation probabilities summed per class (``gamma``), from which the gradient with respect
to the logits is ``softmax(logits) - gamma``. Both losses use it: Keras's on logits ``(B, T, C)``
with every frame used, PyTorch's on log-probabilities ``(T, N, C)`` with its own blank index and
per-sequence input and target lengths.

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
label needs a blank in between). ``-inf`` stands for probability 0, so no ``log_epsilon`` floor
is involved. The batch is vectorised (padded to the longest label); only the time axis is a Python
loop. Cost ``O(B * T * (2 L_max + 1))`` time and memory, plus ``O(B * T * C)`` for the softmax and
gradient.

Two evaluations of this recursion. ``_ctc_scaled`` runs it in probability space, rescaling every
frame (additions and multiplications only, in float64) and checks per sequence that nothing it
kept came near underflow; ``_ctc_log_space`` runs it literally as above, in the request dtype, four
transcendentals per state and frame. Every sequence takes the first; the ones it cannot vouch for
(extreme logits, very long inputs) are redone with the second, so the result is the log-space
result to rounding in every case, at about a quarter of its cost in the common one.
"""

from __future__ import annotations

import numpy as np

from . import checks
from . import vecmath as vm
from ._math import axis_sum, log_softmax
from .errors import DomainError, NonFiniteResult, ParameterError, ShapeError
from .params import BOOL, INT, INT_ARRAY, NON_NEGATIVE, Param, ShapeRule, check_arrays
from .registry import Evaluation, Loss, register
from .torch_losses import _TorchLoss, torch_names


def _lae3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """logsumexp of three arrays, elementwise; all ``-inf`` gives ``-inf`` (no NaN).

    Shifted by the elementwise max: three exp and one log, about half the cost of two
    ``np.logaddexp`` calls."""
    m = np.maximum(np.maximum(a, b), c)
    m = np.where(np.isfinite(m), m, m.dtype.type(0))
    with np.errstate(divide="ignore"):
        return vm.log(vm.exp(a - m) + vm.exp(b - m) + vm.exp(c - m)) + m


def ctc_repeats(labels: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per sequence, how many consecutive pairs inside the label are equal (each needs a blank)."""
    if labels.shape[1] < 2:
        return np.zeros(labels.shape[0], dtype=np.int64)
    same = labels[:, 1:] == labels[:, :-1]
    inside = np.arange(1, labels.shape[1])[None, :] < lengths[:, None]
    return (same & inside).sum(axis=1)


def ctc_state_count(lengths: np.ndarray) -> int:
    """``S = 2 L_max + 1``: states of the blank-extended labels, padded to the longest."""
    return 2 * int(np.max(lengths, initial=0)) + 1


def _extended_labels(labels: np.ndarray, lengths: np.ndarray, blank: int) -> tuple[np.ndarray, np.ndarray]:
    """``ext`` (B, S), the class of each state, and ``skip`` (B, S), whether state ``s`` may be
    entered from ``s - 2`` (a label state whose label differs from the previous label)."""
    B = labels.shape[0]
    S = ctc_state_count(lengths)
    l_max = S // 2
    # blank on even states, the label on odd ones (padding states beyond 2L use the blank and are
    # unreachable from the final states, so they never matter)
    ext = np.full((B, S), blank, dtype=np.int64)
    if l_max:
        ext[:, 1::2] = labels[:, :l_max]
    skip = np.zeros((B, S), dtype=bool)
    if l_max > 1:
        skip[:, 3::2] = labels[:, 1:l_max] != labels[:, :l_max - 1]
    return ext, skip


def _end_states(lengths: np.ndarray, S: int) -> np.ndarray:
    """(B, S): the final blank state ``2L`` and, when ``L >= 1``, the final label state ``2L - 1``."""
    last = 2 * lengths[:, None]
    state = np.arange(S)[None, :]
    return (state == last) | ((state == last - 1) & (lengths[:, None] > 0))


def _ctc_log_space(logp: np.ndarray, ext: np.ndarray, skip: np.ndarray, lengths: np.ndarray,
                   t_len: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-space recursion of the module docstring: ``log p`` (B,) and the state occupations
    (B, T, S). Exact down to the smallest probabilities; costs four transcendentals per state and step."""
    dt = logp.dtype
    B, T, _ = logp.shape
    S = ext.shape[1]
    neg_inf = dt.type(-np.inf)
    rows = np.arange(B)
    emit = np.take_along_axis(logp, np.broadcast_to(ext[:, None, :], (B, T, S)), axis=2)  # (B, T, S)
    last = 2 * lengths  # final blank state; last - 1 is the final label state (if L >= 1)
    pad1 = np.full((B, 1), neg_inf, dtype=dt)
    pad2 = np.full((B, 2), neg_inf, dtype=dt)

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
    if S > 1:
        log_p = np.where(lengths > 0, np.logaddexp(log_p, final[rows, np.maximum(last - 1, 0)]), log_p)

    # backward, excluding the emission at t: beta[t, s] = log p(frames t+1.. | state s at t)
    beta = np.full((B, T, S), neg_inf, dtype=dt)
    end_init = np.where(_end_states(lengths, S), dt.type(0), neg_inf)
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
    occ = np.where(finite[:, None, None], vm.exp(alpha + beta - safe_log_p[:, None, None]), dt.type(0))
    return log_p, occ


def _ctc_scaled(probs: np.ndarray, ext: np.ndarray, skip: np.ndarray, lengths: np.ndarray,
                t_len: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same recursion in probability space with per-frame rescaling (Rabiner's scaling, as in
    Graves 2012, sec. 7.3.1): additions and multiplications only, no transcendental per state.

    Each frame's alpha (and beta) row is divided by its sum ``c_t`` (``d_t``), so ``log p`` is
    ``sum_t log c_t`` plus the log of the final states' scaled mass, and the occupation of frame
    ``t`` is ``alpha_t beta_t`` renormalised to sum 1. Underflow is the only way this can differ
    from the log-space result: a value below the dtype's smallest normal number loses precision.
    A value lost at frame ``t`` changes ``p`` by at most ``tiny / (c_t n_t)`` relative, with
    ``n_t = sum_s alpha_t beta_t`` of the scaled rows, so a row is accepted (``ok``) only while
    ``c_t n_t``, ``d_t n_t`` and ``n_t`` stay above ``S tiny / eps^2`` on every frame; the caller
    redoes the other rows in log space.

    ``n_t`` is where the range runs out: alpha weighs the states the frames so far favour and beta
    those the frames to come favour, and on a long input with a short label the two peak at
    opposite ends of the label, so ``n_t`` of random logits falls below float32's 1e-38 within a
    few hundred frames. The recursion therefore runs in float64 for either request dtype (the
    results are rounded to the request dtype), where it holds for inputs of thousands of frames.

    Returns ``log p`` (B,), the occupations as a (B, T, S) view of a time-major array, and ``ok`` (B,).
    """
    dt = np.dtype(np.float64)  # float32's exponent range is too narrow for the scaled values (see above)
    B, T, C = probs.shape
    S = ext.shape[1]
    # emission probabilities emit[t, b, s] = probs[b, t, ext[b, s]], time-major: each step is contiguous
    flat_states = (np.arange(B)[:, None] * C + ext).ravel()
    emit = np.take(probs.transpose(1, 0, 2).reshape(T, B * C), flat_states, axis=1).astype(dt, copy=False)
    emit = emit.reshape(T, B, S)
    # skip2[:, j]: state j + 2 may be entered from state j (forward: into s from s - 2; backward: from s to s + 2)
    skip2 = skip[:, 2:].astype(dt)
    end_states = _end_states(lengths, S)
    ends = end_states / np.count_nonzero(end_states, axis=1, keepdims=True).astype(dt)  # beta at the last frame, scaled
    ragged = bool(np.any(t_len < T))
    first_short = int(t_len.min()) if B else T
    tmp = np.empty((B, S), dtype=dt)

    alpha = np.zeros((T, B, S), dtype=dt)
    scale = np.ones((T, B), dtype=dt)  # c_t
    beta = np.zeros((T, B, S), dtype=dt)
    back = np.ones((T, B), dtype=dt)  # d_t
    with np.errstate(all="ignore"):  # a row that underflows to 0 turns NaN and fails the check below
        alpha[0, :, 0] = emit[0, :, 0]
        if S > 1:
            alpha[0, :, 1] = emit[0, :, 1] * (lengths > 0)
        scale[0] = axis_sum(alpha[0], 1)
        alpha[0] *= np.reciprocal(scale[0])[:, None]
        for t in range(1, T):
            prev, cur = alpha[t - 1], alpha[t]
            cur[:, 0] = prev[:, 0]
            np.add(prev[:, 1:], prev[:, :-1], out=cur[:, 1:])
            np.multiply(prev[:, :-2], skip2, out=tmp[:, 2:])
            np.add(cur[:, 2:], tmp[:, 2:], out=cur[:, 2:])
            np.multiply(cur, emit[t], out=cur)
            c = axis_sum(cur, 1)
            if ragged and t >= first_short:
                done = t >= t_len  # frames past a row's input length leave it as it was
                cur[done] = prev[done]
                c[done] = 1
            np.multiply(cur, np.reciprocal(c)[:, None], out=cur)
            scale[t] = c

        beta[T - 1] = ends * (t_len == T)[:, None]
        for t in range(T - 2, -1, -1):
            nxt = np.multiply(beta[t + 1], emit[t + 1], out=tmp)
            cur = beta[t]
            cur[:, -1] = nxt[:, -1]
            np.add(nxt[:, :-1], nxt[:, 1:], out=cur[:, :-1])
            if S > 2:
                cur[:, :-2] += nxt[:, 2:] * skip2
            d = axis_sum(cur, 1)
            np.multiply(cur, np.reciprocal(d)[:, None], out=cur)
            if ragged and t >= first_short - 1:
                start, after = t == t_len - 1, t > t_len - 1
                cur[start] = ends[start]
                cur[after] = 0
                d[start | after] = 1
            back[t] = d

        final_mass = axis_sum(alpha[T - 1] * end_states, 1)  # scaled alpha of the last used frame
        occ = np.multiply(alpha, beta, out=alpha)
        norm = axis_sum(occ, 2)  # (T, B): n_t
        used = np.arange(T)[:, None] < t_len[None, :]
        norm[~used] = 1
        occ *= np.reciprocal(norm)[:, :, None]

        log_p = vm.log(scale).sum(axis=0) + vm.log(final_mass)
        info = np.finfo(dt)
        floor = S * float(info.tiny) / float(info.eps) ** 2
        ok = np.all((norm * scale >= floor) & (norm * back >= floor) & (norm >= floor), axis=0) & np.isfinite(log_p)
    return log_p, occ.transpose(1, 0, 2), ok


def ctc_forward_backward(logp: np.ndarray, labels: np.ndarray, lengths: np.ndarray,
                         input_lengths: np.ndarray | None = None,
                         blank: int = 0, probs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``-log p(label)`` per sequence and the per-class occupation probabilities.

    ``logp``: ``(B, T, C)`` log-probabilities (rows of ``exp(logp)`` sum to 1); ``probs``: their
    exponentials if the caller has them. ``labels``: ``(B, L)`` integer classes, of which the
    first ``lengths[b]`` are the label (any class, the blank included, is taken literally).
    ``input_lengths``: frames used per sequence (default ``T``); later frames get zero occupation.
    The caller must have checked ``lengths + repeats <= input_lengths``; then every ``log p`` is
    finite unless the arithmetic underflows.

    Every row goes through the scaled probability-space recursion first; rows whose scaled values
    came too close to underflow are redone exactly in log space (see ``_ctc_scaled``).

    Returns ``nll`` of shape ``(B,)`` and ``occ`` of shape ``(B, T, C)``:
    ``occ[b, t, k]`` = posterior probability that frame ``t`` emits class ``k`` (rows sum to 1
    on used frames), so that ``d nll / d logp = -occ``.
    """
    dt = logp.dtype
    B, T, C = logp.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    t_len = np.full(B, T, dtype=np.int64) if input_lengths is None else np.asarray(input_lengths, dtype=np.int64)
    ext, skip = _extended_labels(labels, lengths, blank)
    if probs is None:
        probs = vm.exp(logp)
    log_p, occ_states, ok = _ctc_scaled(probs, ext, skip, lengths, t_len)
    if not np.all(ok):
        redo = np.flatnonzero(~ok)
        log_p[redo], occ_states[redo] = _ctc_log_space(logp[redo], ext[redo], skip[redo], lengths[redo], t_len[redo])
    # sum the state occupations per class: a batched product with each row's one-hot state classes
    one_hot = (ext[:, :, None] == np.arange(C)).astype(dt)
    return (-log_p).astype(dt, copy=False), np.matmul(occ_states.astype(dt, copy=False), one_hot)


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
        "Computed by an exact forward-backward: a rescaled probability-space recursion in float64, and, for "
        "a sequence where that comes near underflow, the log-space recursion in the request dtype (Keras/Optax "
        "floor log-probabilities at -1e5 instead of -inf; identical unless a loss exceeds ~1e4). The gradient is "
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
    without_hessian = ("the diagonal through the log_softmax needs the covariance of each frame's class "
                       "occupations under the alignment posterior, a second forward-backward pass per class "
                       "that is not implemented")
    align_ranks = False
    y_true_kind, y_pred_kind = "labels", "logits"
    sample_shape = (2, 6, 4)
    test_shapes = ((2, 6, 4), (3, 5, 3))
    work_doc = ("B x T x (2 L_max + 1): the alignment lattice of every sequence, L_max the longest label; "
                "at least T x 1000, as each frame is a step of a Python loop")
    FRAME_WORK = 1000  # a frame's fixed cost (~30 us of loop steps), in values of elementwise work

    def work(self, y_true, y_pred, p):
        _, lengths = y_true
        B, T, C = y_pred.shape
        return max(B * T * max(ctc_state_count(lengths), C), T * self.FRAME_WORK)

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
        soft = vm.exp(logp)
        nll, occ = ctc_forward_backward(logp, labels, lengths, probs=soft)
        if not np.all(np.isfinite(nll)):
            b = int(np.flatnonzero(~np.isfinite(nll))[0])
            raise DomainError(
                f"y_pred[{b}] gives the label y_true[{b}] a probability that is 0 in {y_pred.dtype.name} "
                f"(the logits are too extreme); scale the logits down or use float64.", ("y_pred", b))

        def vjp(up):
            # d(-log p)/d logits = softmax * sum_k occ - occ (sum_k occ = 1 on every frame)
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


ONE_PER_SEQUENCE = ShapeRule("hold one integer per sequence, shape [N] with N = y_pred.shape[1], for y_pred (T, N, C) "
                             "of shape", lambda shape, target: len(target) == 3 and shape == (target[1],))


def _index(field: str, *idx: int) -> str:
    return field + "".join(f"[{i}]" for i in idx)


@register
class TorchCTC(_TorchLoss):
    """``torch.nn.CTCLoss`` / ``F.ctc_loss``: PyTorch's layout, lengths, blank, reductions and gradient."""

    name, aliases, references = torch_names("ctc_loss", "CTCLoss")
    summary = ("Connectionist Temporal Classification on log-probabilities (T, N, C) with per-sequence input and "
               "target lengths (PyTorch).")
    formula = (r"\ell_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(y_{n, 1..S_n})} \prod_{t=1}^{T_n} "
               r"e^{x_{t, n, \pi_t}},\quad T_n = \text{input\_lengths}_n,\ S_n = \text{target\_lengths}_n;\ "
               r"\text{mean} = \frac{1}{N}\sum_n \frac{\ell_n}{\max(S_n, 1)}")
    params = (Param("input_lengths", INT_ARRAY, None, "required: the frames of each sequence, one integer per "
                    "sequence, each at most T (frames after it are not used)", NON_NEGATIVE,
                    shape_rule=ONE_PER_SEQUENCE),
              Param("target_lengths", INT_ARRAY, None, "required: the length of each target, one integer per "
                    "sequence (the first target_lengths[n] entries of y_true[n] are the target)", NON_NEGATIVE,
                    shape_rule=ONE_PER_SEQUENCE),
              Param("blank", INT, 0, "the class index of the blank, in [0, C)", NON_NEGATIVE),
              Param("zero_infinity", BOOL, False, "give a target that no alignment can produce a loss of 0 and a "
                    "zero gradient instead of infinity"))
    y_true_doc = ("class indices (N, S) padded after each target (the padding is ignored, whatever it holds), or "
                  "the N targets concatenated into one 1-D array of sum(target_lengths) indices")
    y_pred_doc = "log-probabilities (T, N, C), PyTorch's layout (time first; for one sequence send (T, 1, C))"
    per_sample_doc = "(N,): -log p(target | input) of each sequence (reduction='none')"
    work_doc = CTC.work_doc
    hessian = False
    without_hessian = "PyTorch has no second derivative of ctc_loss (its backward is not differentiable)"
    y_true_kind, y_pred_kind = "labels", "log_probabilities"
    sample_shape = (6, 2, 4)
    test_shapes = ((6, 2, 4), (5, 3, 3))
    test_variants = ({"blank": 2}, {"zero_infinity": True})
    notes = (
        "As PyTorch: mean divides each sequence's loss by its target length (at least 1) and averages over the "
        "batch; sum and none as usual. The gradient is autograd's for log_probs, exp(x) - γ on the frames inside "
        "a sequence's input length and 0 after it (γ: the posterior probability of each class at each frame), "
        "which is the gradient with respect to the logits of a log_softmax in front, not the formula's -γ: "
        "PyTorch assumes the log-probabilities come out of a log_softmax. The log-probabilities are used as sent. "
        "A target index equal to the blank is refused: PyTorch's documentation forbids it, and its CPU kernel, which "
        "accepts it, then drops a state from the gradient of the last frame. A target that no alignment can produce (target_lengths[n] plus its repeated "
        "consecutive tokens above input_lengths[n]) has infinite loss in PyTorch: the service answers 422, or "
        "with zero_infinity gives it 0 and a zero gradient. 422s also for what PyTorch refuses: lengths above T or "
        "the padded width S, a blank outside [0, C), target indices outside [0, C). Computed by the exact "
        "forward-backward of the Keras ctc (float64 rescaled recursion, log-space fallback near underflow), so "
        "float32 results can differ from PyTorch's float32 log-space kernel by its rounding on long inputs.")
    examples = (
        {"y_true": [[1, 2, 2], [3, 1, 0]],
         "y_pred": [[[-1.25, -0.89, -1.58, -2.32], [-2.48, -3.13, -1.87, -0.33]],
                    [[-2.06, -2.22, -0.89, -1.05], [-1.43, -2.67, -1.59, -0.72]],
                    [[-1.7, -0.64, -2.37, -1.64], [-3.11, -1.19, -2.42, -0.58]],
                    [[-0.76, -1.17, -3.97, -1.59], [-1.09, -0.9, -2.87, -1.61]],
                    [[-2.71, -2.51, -0.26, -2.5], [-1.69, -0.59, -2.35, -1.79]]],
         "params": {"input_lengths": [5, 4], "target_lengths": [3, 2]}},
    )

    def prepare(self, y_true, y_pred, p):
        if y_pred.ndim != 3:
            raise ShapeError(f"y_pred must be log-probabilities of shape (T, N, C), PyTorch's layout (time first; "
                             f"for one sequence send (T, 1, C)); got shape {list(y_pred.shape)}.", ("y_pred",))
        T, N, C = y_pred.shape
        if p["blank"] >= C:
            raise ParameterError(f"params.blank must be a class index in [0, {C - 1}] (y_pred has {C} classes); got "
                                 f"{p['blank']}.", ("params", "blank"))
        for name in ("input_lengths", "target_lengths"):
            if p[name] is None:
                raise ParameterError(f"params.{name} is required: one integer per sequence, a list of N = {N} "
                                     f"integers for y_pred of shape {list(y_pred.shape)}.", ("params", name))
        check_arrays(self.params, p, y_pred)  # the lengths' shapes before they are used here
        input_lengths, target_lengths = p["input_lengths"], p["target_lengths"]
        if np.any(input_lengths > T):
            n = int(np.flatnonzero(input_lengths > T)[0])
            raise DomainError(f"{_index('params.input_lengths', n)} = {int(input_lengths[n])} is above the {T} "
                              f"frames of y_pred (shape {list(y_pred.shape)}); each input length must be at most T.",
                              ("params", "input_lengths", n))
        labels = self._targets(y_true, target_lengths, N, C)
        inside = np.arange(labels.shape[1])[None, :] < target_lengths[:, None]
        if np.any(inside & (labels == p["blank"])):
            n, s = (int(i) for i in np.argwhere(inside & (labels == p["blank"]))[0])
            at = ("y_true", int(target_lengths[:n].sum()) + s) if y_true.ndim == 1 else ("y_true", n, s)
            raise DomainError(f"{_index(*at)} is the blank ({p['blank']}): a target index cannot be the blank "
                              f"(PyTorch's documentation; its CPU kernel accepts it but its gradient at the last "
                              f"frame then drops a state). Use another class for the blank (params.blank).", at)
        return (labels, target_lengths, input_lengths), y_pred

    @staticmethod
    def _targets(y_true, target_lengths, N, C) -> np.ndarray:
        """The (N, max(target_lengths)) int64 targets, padding set to 0; indices checked where used."""
        if y_true.ndim == 1:  # PyTorch's concatenated form
            total = int(target_lengths.sum())
            if y_true.shape[0] != total:
                raise ShapeError(f"a 1-D y_true holds the targets concatenated, sum(target_lengths) = {total} "
                                 f"indices; got {y_true.shape[0]}. Send that many, or the padded form (N, S).",
                                 ("y_true",))
            flat = checks.as_labels(y_true, "y_true", C)
            width = int(target_lengths.max(initial=0))
            labels = np.zeros((N, width), dtype=np.int64)
            inside = np.arange(width)[None, :] < target_lengths[:, None]
            labels[inside] = flat  # row-major: row n gets the next target_lengths[n] indices
            return labels
        if y_true.ndim != 2 or y_true.shape[0] != N:
            raise ShapeError(f"y_true must be the targets padded to shape (N, S) with N = {N} sequences (y_pred's "
                             f"axis 1), or a 1-D concatenation; got shape {list(y_true.shape)}.", ("y_true",))
        S = y_true.shape[1]
        if np.any(target_lengths > S):
            n = int(np.flatnonzero(target_lengths > S)[0])
            raise DomainError(f"{_index('params.target_lengths', n)} = {int(target_lengths[n])} is above the width "
                              f"S = {S} of the padded targets y_true (shape {list(y_true.shape)}).",
                              ("params", "target_lengths", n))
        inside = np.arange(S)[None, :] < target_lengths[:, None]
        return checks.as_labels(np.where(inside, y_true, 0), "y_true", C)

    def work(self, y_true, y_pred, p):
        _, target_lengths, _ = y_true
        T, N, C = y_pred.shape
        return max(N * T * max(ctc_state_count(target_lengths), C), T * CTC.FRAME_WORK)

    def evaluate(self, y_true, x, p):
        labels, target_lengths, input_lengths = y_true
        dt = x.dtype
        T, N, C = x.shape
        logp = x.transpose(1, 0, 2)  # (N, T, C): the forward-backward's layout
        need = target_lengths + ctc_repeats(labels, target_lengths)
        nll = np.full(N, np.inf, dtype=dt)
        occ = np.zeros((N, T, C), dtype=dt)
        nll[(need <= input_lengths) & (input_lengths == 0)] = 0  # no frames, empty target: probability 1
        rows = np.flatnonzero((need <= input_lengths) & (input_lengths > 0))
        if rows.size:
            nll[rows], occ[rows] = ctc_forward_backward(np.ascontiguousarray(logp[rows]), labels[rows],
                                                        target_lengths[rows], input_lengths[rows], blank=p["blank"])
        infinite = ~np.isfinite(nll)
        if infinite.any():
            n = int(np.flatnonzero(infinite)[0])
            if not p["zero_infinity"]:
                why = (f"its target of {int(target_lengths[n])} indices with {int(need[n] - target_lengths[n])} "
                       f"repeated consecutive ones needs at least {int(need[n])} frames and params.input_lengths[{n}] = "
                       f"{int(input_lengths[n])}" if need[n] > input_lengths[n]
                       else f"the target's probability is 0 in {dt.name} (the log-probabilities are too extreme)")
                raise NonFiniteResult(f"PyTorch returns inf for sequence {n}: {why}. Set params.zero_infinity to "
                                      f"true to get 0 and a zero gradient for such sequences, or send a longer input "
                                      f"or a shorter target.", ("params", "input_lengths", n))
            nll[infinite] = 0
        used = (np.arange(T)[None, :] < input_lengths[:, None]) & ~infinite[:, None]  # (N, T)

        def vjp(up):
            # autograd's rule (it assumes a log_softmax before): exp(x) - γ on used frames, 0 elsewhere
            g = np.where(used[:, :, None], vm.exp(logp) - occ, dt.type(0))
            return (up.astype(dt, copy=False)[:, None, None] * g).transpose(1, 0, 2)

        return Evaluation(nll, vjp, normaliser=np.maximum(target_lengths, 1).astype(dt))

    def sample(self, rng, shape, p, decimals=None):
        """Lengths that fit, targets, then log-probabilities. Draw order (after the PCG64 seed): input
        lengths ``integers(max(1, T // 2), T + 1, N)``; target lengths ``integers(0, input // 2 + 1)``
        per sequence (at most ``input // 2`` indices have at most ``input // 2 - 1`` repeats, so every
        target fits); indices ``integers(0, C - 1, (N, S))`` with ``S = max(1, T // 2)``, those at or
        above the blank moved up by one (no blank in a target), padding set to 0; logits
        ``normal(0, 2, (T, N, C))`` through a log_softmax over C, rounded to ``decimals``."""
        if len(shape) != 3 or shape[0] < 1 or shape[2] < 2:
            raise ShapeError(f"shape must be (time, batch, classes) with time >= 1 and classes >= 2 for "
                             f"{self.name}; got {list(shape)}.", ("shape",))
        T, N, C = shape
        blank = int(p.get("blank", 0))
        if blank >= C:
            raise ShapeError(f"shape has {C} classes, which do not include the blank {blank}.", ("shape",))
        input_lengths = rng.integers(max(1, T // 2), T + 1, N)
        target_lengths = rng.integers(0, input_lengths // 2 + 1)
        S = max(1, T // 2)
        tokens = rng.integers(0, C - 1, (N, S))
        tokens = tokens + (tokens >= blank)
        tokens[np.arange(S)[None, :] >= target_lengths[:, None]] = 0
        logp = log_softmax(rng.normal(0.0, 2.0, shape), axis=2)
        if decimals is not None:
            logp = np.round(logp, decimals)
        return {"y_true": tokens.astype(np.float64), "y_pred": logp,
                "params": {"input_lengths": input_lengths, "target_lengths": target_lengths}}
