"""CTC against brute-force enumeration of alignments, Circle's masks and edge rows, and the domain
errors of both (the conformance and finite-difference tests cover the Keras values and gradients)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from service.engine import REDUCTIONS, compute, get_loss
from service.engine.sampling import rng_for
from service.engine.sequence import _ctc_log_space, _ctc_scaled, _extended_labels, ctc_forward_backward, ctc_repeats

from .helpers import assert_rejected

# --- brute force, independent of the forward-backward ---------------------------------------

def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _collapse(path):
    """CTC's many-to-one map: merge repeats, then drop blanks (class 0)."""
    merged = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
    return tuple(k for k in merged if k != 0)


def brute_force_ctc(logits, label):
    """-log p(label) and its gradient w.r.t. the logits, by summing over all C**T class paths."""
    T, C = logits.shape
    probs = _softmax(logits)
    total = 0.0
    occupancy = np.zeros((T, C))
    for path in itertools.product(range(C), repeat=T):
        if _collapse(path) != tuple(label):
            continue
        p = float(np.prod(probs[np.arange(T), path]))
        total += p
        occupancy[np.arange(T), path] += p
    return -np.log(total), probs - occupancy / total


def brute_force_state_paths(logits, label):
    """-log p(label) summing over state paths of the blank-extended label, which is what Keras
    (Optax's recursion) sums when the label itself contains class 0 (e.g. [1, 2, 0])."""
    T, _ = logits.shape
    probs = _softmax(logits)
    # positions: ("b", n) = blank after n tokens, ("l", n) = token n
    states = [("b", 0)]
    for n in range(len(label)):
        states += [("l", n), ("b", n + 1)]
    cls = [0 if kind == "b" else label[n] for kind, n in states]

    def allowed(i, j):
        if j in (i, i + 1):
            return True
        if j == i + 2 and states[j][0] == "l":
            n = states[j][1]
            return label[n] != label[n - 1]
        return False

    starts = {0, 1} if label else {0}
    ends = {len(states) - 1, len(states) - 2} if label else {0}
    total = 0.0
    for seq in itertools.product(range(len(states)), repeat=T):
        if seq[0] not in starts or seq[-1] not in ends:
            continue
        if all(allowed(a, b) for a, b in zip(seq, seq[1:])):
            total += float(np.prod([probs[t, cls[s]] for t, s in enumerate(seq)]))
    return -np.log(total)


CTC_CASES = [
    # (T, C, label rows padded with trailing zeros)
    (4, 3, [[1, 2, 0], [2, 2, 0], [1, 0, 0]]),
    (5, 3, [[1, 2, 1], [2, 2, 0], [0, 0, 0]]),
    (3, 4, [[3, 1, 0], [1, 1, 0], [2, 0, 0]]),
    (6, 2, [[1, 1, 1], [1, 0, 0], [1, 1, 0]]),
]


@pytest.mark.parametrize("T,C,labels", CTC_CASES)
def test_ctc_matches_brute_force(T, C, labels):
    rng = np.random.default_rng(T * 10 + C)
    logits = rng.normal(0.0, 1.5, (len(labels), T, C))
    r = compute("ctc", labels, logits, reduction="none", outputs=("per_sample", "gradient"))
    for b, row in enumerate(labels):
        label = [k for k in row if k != 0]
        value, grad = brute_force_ctc(logits[b], label)
        np.testing.assert_allclose(r.per_sample[b], value, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r.gradient[b], grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_gradient_under_reductions_and_weights(reduction):
    T, C, labels = CTC_CASES[1]
    rng = np.random.default_rng(7)
    logits = rng.normal(0.0, 1.0, (3, T, C))
    weights = np.array([0.5, 2.0, 1.5])
    r = compute("ctc", labels, logits, sample_weight=weights, reduction=reduction)
    grads = np.stack([brute_force_ctc(logits[b], [k for k in labels[b] if k]) [1] for b in range(3)])
    scale = {"sum": 1.0, "none": 1.0, "sum_over_batch_size": 1 / 3, "mean": 1 / 3,
             "mean_with_sample_weight": 1 / weights.sum()}[reduction]
    np.testing.assert_allclose(r.gradient, scale * weights[:, None, None] * grads, rtol=1e-10, atol=1e-12)


def test_ctc_literal_zero_inside_the_label_follows_keras():
    """count_nonzero gives the length and the label is the first that many entries, 0 included."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0.0, 1.0, (3, 5, 3))
    labels = [[1, 2, 0, 2], [0, 0, 1, 0], [1, 0, 0, 1]]  # labels [1, 2, 0], [0], [1, 0]
    r = compute("ctc", labels, logits, reduction="none", outputs=("per_sample",))
    expected = [brute_force_state_paths(logits[0], [1, 2, 0]), brute_force_state_paths(logits[1], [0]),
                brute_force_state_paths(logits[2], [1, 0])]
    np.testing.assert_allclose(r.per_sample, expected, rtol=1e-12)
    # the state-path sum agrees with the collapse definition when the label has no 0
    np.testing.assert_allclose(brute_force_state_paths(logits[0], [1, 2]), brute_force_ctc(logits[0], [1, 2])[0],
                               rtol=1e-12)


def test_ctc_float32_stays_float32_and_agrees():
    T, C, labels = CTC_CASES[0]
    logits = np.random.default_rng(11).normal(0.0, 2.0, (3, T, C))
    r64 = compute("ctc", labels, logits, reduction="none")
    r32 = compute("ctc", labels, logits, reduction="none", dtype="float32")
    assert r32.per_sample.dtype == np.float32 and r32.gradient.dtype == np.float32
    np.testing.assert_allclose(r32.per_sample, r64.per_sample, rtol=1e-5)
    np.testing.assert_allclose(r32.gradient, r64.gradient, atol=1e-5)


def test_ctc_core_input_lengths_use_only_the_first_frames():
    """The shared core (reused by a torch-style CTC) ignores frames past input_lengths."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 1.0, (2, 6, 3))
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    labels = np.array([[1, 2], [2, 0]])
    nll, occ = ctc_forward_backward(logp, labels, np.array([2, 1]), input_lengths=np.array([4, 6]))
    np.testing.assert_allclose(nll[0], brute_force_ctc(logits[0, :4], [1, 2])[0], rtol=1e-12)
    np.testing.assert_allclose(nll[1], brute_force_ctc(logits[1], [2])[0], rtol=1e-12)
    assert np.all(occ[0, 4:] == 0)
    np.testing.assert_allclose(occ.sum(-1)[0, :4], 1.0)


def test_ctc_label_that_exactly_fits_is_finite():
    # [1, 1, 1] needs 5 frames (two blanks between the repeats); T = 5 has exactly one alignment
    logits = np.zeros((1, 5, 2))
    r = compute("ctc", [[1, 1, 1]], logits, reduction="none")
    np.testing.assert_allclose(r.per_sample, [5 * np.log(2)])
    assert np.all(np.isfinite(r.gradient))


def _random_ctc_batch(rng, B, T, C, spread):
    """Labels that fit their (ragged) input lengths, and logits of the given spread."""
    t_len = rng.integers(1, T + 1, B)
    labels = rng.integers(1, C, (B, max(1, T // 2)))
    lengths = rng.integers(0, labels.shape[1] + 1, B)
    lengths = np.where(lengths + ctc_repeats(labels, lengths) <= t_len, lengths, 0)
    logits = rng.normal(0.0, spread, (B, T, C))
    return labels, lengths, t_len, logits - np.log(np.exp(logits).sum(-1, keepdims=True))


@pytest.mark.parametrize("seed", range(12))
def test_ctc_scaled_recursion_agrees_with_log_space(seed):
    """The rescaled probability-space recursion gives the log-space recursion's numbers, ragged
    input lengths, repeats and empty labels included, whenever it vouches for a row."""
    rng = np.random.default_rng(seed)
    labels, lengths, t_len, logp = _random_ctc_batch(rng, 5, int(rng.integers(1, 14)), int(rng.integers(2, 6)), 2.0)
    ext, skip = _extended_labels(labels, lengths, 0)
    log_p, occ, ok = _ctc_scaled(np.exp(logp), ext, skip, lengths, t_len)
    log_p_ref, occ_ref = _ctc_log_space(logp, ext, skip, lengths, t_len)
    assert np.all(ok)
    np.testing.assert_allclose(log_p, log_p_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(occ, occ_ref, rtol=1e-9, atol=1e-12)


def test_ctc_underflowing_rows_are_redone_in_log_space():
    """Logits so extreme that probabilities underflow even in float64: the scaled recursion
    rejects those rows, the log-space one gives them, and the other rows of the batch are untouched."""
    rng = np.random.default_rng(4)
    labels, lengths, t_len, logp = _random_ctc_batch(rng, 4, 30, 5, 1.0)
    lengths[:] = [6, 3, 0, 5]
    t_len[:] = 30
    extreme = rng.normal(0.0, 800.0, (30, 5))
    shifted = extreme - extreme.max(-1, keepdims=True)
    logp[1] = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    ext, skip = _extended_labels(labels, lengths, 0)
    ok = _ctc_scaled(np.exp(logp), ext, skip, lengths, t_len)[2]
    assert ok.tolist() == [True, False, True, True]
    nll, occ = ctc_forward_backward(logp, labels, lengths)
    assert np.all(np.isfinite(nll)) and np.all(np.isfinite(occ)) and nll[1] > 1e3
    log_p_ref, occ_ref = _ctc_log_space(logp, ext, skip, lengths, t_len)
    np.testing.assert_allclose(-nll, log_p_ref, rtol=1e-12)
    one_hot = ext[:, :, None] == np.arange(5)
    np.testing.assert_allclose(occ, np.matmul(occ_ref, one_hot), rtol=1e-9, atol=1e-12)
    for b in range(4):  # each row as if it came alone
        alone_nll, alone_occ = ctc_forward_backward(logp[b:b + 1], labels[b:b + 1], lengths[b:b + 1])
        np.testing.assert_allclose(nll[b], alone_nll[0], rtol=1e-12)
        np.testing.assert_allclose(occ[b], alone_occ[0], rtol=1e-9, atol=1e-12)


def test_ctc_long_float32_input_keeps_full_range():
    """A long input with short labels drives alpha and beta apart far below float32's range; the
    result is still the float64 one rounded, not a fallback's float32 log-space sum."""
    rng = np.random.default_rng(9)
    labels, lengths, _, _ = _random_ctc_batch(rng, 4, 400, 20, 2.0)
    lengths[:] = [1, 5, 9, 60]
    logits = rng.normal(0.0, 2.0, (4, 400, 20))
    r64 = compute("ctc", labels * (np.arange(labels.shape[1]) < lengths[:, None]), logits, reduction="none")
    r32 = compute("ctc", labels * (np.arange(labels.shape[1]) < lengths[:, None]), logits, reduction="none",
                  dtype="float32")
    ext, skip = _extended_labels(labels, lengths, 0)
    logp32 = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
    assert np.all(_ctc_scaled(np.exp(logp32), ext, skip, lengths, np.full(4, 400))[2])
    np.testing.assert_allclose(r32.per_sample, r64.per_sample, rtol=2e-6)
    np.testing.assert_allclose(r32.gradient, r64.gradient, atol=2e-6)


@pytest.mark.parametrize("body,field", [
    ({"y_true": [[1, 1, 1]], "y_pred": np.zeros((1, 4, 2)).tolist()}, "y_true"),  # needs 5 frames
    ({"y_true": [[1, 2, 1, 2]], "y_pred": np.zeros((1, 3, 3)).tolist()}, "y_true"),  # 4 tokens, 3 frames
    ({"y_true": [[1, 3]], "y_pred": np.zeros((1, 4, 3)).tolist()}, "y_true"),  # class 3 of 3
    ({"y_true": [[1, -1]], "y_pred": np.zeros((1, 4, 3)).tolist()}, "y_true"),
    ({"y_true": [[1, 1.5]], "y_pred": np.zeros((1, 4, 3)).tolist()}, "y_true"),
    ({"y_true": [1, 2], "y_pred": np.zeros((2, 4, 3)).tolist()}, "y_true"),  # rank 1 labels
    ({"y_true": [[[1], [2]]], "y_pred": np.zeros((1, 4, 3)).tolist()}, "y_true"),  # rank 3 labels
    ({"y_true": [[1, 2]], "y_pred": np.zeros((4, 3)).tolist()}, "y_pred"),  # rank 2 logits
    ({"y_true": [[1, 2], [1, 0]], "y_pred": np.zeros((1, 4, 3)).tolist()}, "y_true"),  # batch mismatch
    ({"y_true": [[0, 0]], "y_pred": np.zeros((1, 4, 1)).tolist()}, "y_pred"),  # only the blank class
])
def test_ctc_domain_errors(body, field):
    assert_rejected("ctc", body, field)


def test_ctc_too_long_label_names_the_row():
    err = assert_rejected("CTC", {"y_true": [[1, 2], [1, 1, ]], "y_pred": np.zeros((2, 2, 3)).tolist()}, "y_true")
    assert err.errors[0].loc == ("y_true", 1)
    assert "3" in err.detail


def seeded_sample(name: str, seed: int, shape, decimals) -> dict:
    """One draw of the loss's sampler, after checking that the same seed draws it again."""
    loss = get_loss(name)
    a = loss.sample(rng_for(seed), shape, {}, decimals)
    b = loss.sample(rng_for(seed), shape, {}, decimals)
    np.testing.assert_array_equal(a["y_true"], b["y_true"])
    np.testing.assert_array_equal(a["y_pred"], b["y_pred"])
    return a


@pytest.mark.parametrize("shape", [(1, 1, 2), (2, 6, 4), (3, 5, 3), (4, 9, 7)])
@pytest.mark.parametrize("decimals", [None, 2])
def test_ctc_samples_are_valid_and_seeded(shape, decimals):
    a = seeded_sample("ctc", 42, shape, decimals)
    assert a["y_pred"].shape == shape and a["y_true"].shape[0] == shape[0]
    labels = a["y_true"]
    for row in labels:  # nonzero tokens, then trailing zero padding only
        n = np.count_nonzero(row)
        assert n >= 1 and np.all(row[:n] > 0) and np.all(row[n:] == 0)
    r = compute("ctc", labels, a["y_pred"])
    assert np.isfinite(r.loss)


# --- Circle --------------------------------------------------------------------------------

def _unit(rows):
    rows = np.asarray(rows, dtype=float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("labels,params", [
    ([1, 2, 3, 4], {}),  # no positives anywhere
    ([5, 5, 5], {}),  # no negatives anywhere
    ([5, 5, 5], {"remove_diagonal": False}),
    ([7], {}),
    ([7], {"remove_diagonal": False}),
])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_circle_all_masked_rows_give_zero_finite_gradient(labels, params, reduction):
    x = _unit(np.random.default_rng(1).normal(size=(len(labels), 3)))
    r = compute("circle", labels, x, params=params, reduction=reduction, sample_weight=np.full(len(labels), 2.0))
    np.testing.assert_array_equal(np.asarray(r.loss), 0.0)
    assert np.all(np.isfinite(r.gradient))
    np.testing.assert_array_equal(r.gradient, 0.0)


def test_circle_row_without_positives_is_masked_and_gradient_is_finite():
    labels = [1, 1, 2, 2, 3]
    x = _unit(np.random.default_rng(2).normal(size=(5, 4)))
    none = compute("circle", labels, x, reduction="none")
    assert none.per_sample[4] == 0 and np.all(none.per_sample[:4] > 0)
    sobs = compute("circle", labels, x)
    np.testing.assert_allclose(sobs.loss, none.per_sample[:4].mean(), rtol=1e-12)  # mean over the valid rows
    assert np.all(np.isfinite(sobs.gradient))
    # row 4 still matters as a negative of the other rows
    assert np.any(sobs.gradient[4] != 0)


def test_circle_gradient_matches_central_differences_with_all_params():
    labels = [0, 1, 0, 1, 2, 2, 3]
    x = _unit(np.random.default_rng(4).normal(size=(7, 5)))
    for params in ({}, {"gamma": 16.0, "margin": 0.1, "remove_diagonal": False}, {"margin": -0.2}):
        r = compute("circle", labels, x, params=params, reduction="sum")
        num = np.zeros_like(x)
        h = 1e-6
        for idx in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[idx] += h
            down[idx] -= h
            num[idx] = (float(compute("circle", labels, up, params=params, reduction="sum").loss)
                        - float(compute("circle", labels, down, params=params, reduction="sum").loss)) / (2 * h)
        np.testing.assert_allclose(r.gradient, num, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(num).max()))


def test_circle_float32_stays_float32():
    labels = [1, 1, 2, 2, 3]
    x = _unit(np.random.default_rng(6).normal(size=(5, 4)))
    r32 = compute("circle", labels, x, dtype="float32", reduction="none")
    r64 = compute("circle", labels, x, reduction="none")
    assert r32.per_sample.dtype == np.float32 and r32.gradient.dtype == np.float32
    np.testing.assert_allclose(r32.per_sample, r64.per_sample, rtol=1e-4)


@pytest.mark.parametrize("body,field", [
    ({"y_true": [1, 2], "y_pred": [1.0, 0.0]}, "y_pred"),  # rank 1 embeddings
    ({"y_true": [1, 2], "y_pred": [[[1.0, 0.0]], [[0.0, 1.0]]]}, "y_pred"),  # rank 3
    ({"y_true": [[1], [2]], "y_pred": [[1.0, 0.0], [0.0, 1.0]]}, "y_true"),  # labels (B, 1)
    ({"y_true": [1, 2, 3], "y_pred": [[1.0, 0.0], [0.0, 1.0]]}, "y_true"),  # wrong count
    ({"y_true": [1, 1.5], "y_pred": [[1.0, 0.0], [0.0, 1.0]]}, "y_true"),  # non-integral labels
    ({"y_true": [1, 2], "y_pred": [[3.0, 4.0], [0.0, 1.0]]}, "y_pred"),  # not unit norm
    ({"y_true": [1, 2], "y_pred": [[0.0, 0.0], [0.0, 1.0]]}, "y_pred"),  # zero row
    ({"y_true": [1, 2], "y_pred": [[1.0, 0.0], [0.0, 1.0]], "params": {"gamma": 0}}, "params"),
])
def test_circle_domain_errors(body, field):
    assert_rejected("circle", body, field)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (6, 3), (5, 4), (9, 16)])
@pytest.mark.parametrize("decimals", [None, 0, 1, 2, 4])
def test_circle_samples_are_valid_and_seeded(shape, decimals):
    a = seeded_sample("circle", 9, shape, decimals)
    labels = a["y_true"]
    if shape[0] >= 2:  # every class except possibly one singleton appears twice
        assert len(set(labels.tolist())) == (shape[0] + 1) // 2
    r = compute("circle", labels, a["y_pred"])
    assert np.isfinite(r.loss) and np.all(np.isfinite(r.gradient))
