"""poly1_cross_entropy, ntxent, triplet, quadruplet and contrastive against their peers' own answers
(tests/data/optax_reference.json, written by scripts/optax_reference.py with JAX and Optax): every case is
posted to the in-process app and must come back as the peer computed it (loss, per_sample, gradient and
Hessian diagonal, both dtypes, every Keras reduction, with and without sample_weight); where the peer
answers NaN the service answers a 422. The file itself is checked for completeness and for the peer
behaviours it must hold (the seed's tf.split layout, tf.maximum's gradient at the kink)."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import get_loss

from .conftest import assert_problem
from .optax_reference import assert_close, cases, check, nonfinite_cases, path, reference

pytestmark = pytest.mark.anyio

LOSSES = ("poly1_cross_entropy", "ntxent", "triplet", "quadruplet", "contrastive")
CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
async def test_reference_case(client, case):
    check(case, await client.post(path(case), json=case["request"]))


@pytest.mark.parametrize("case", nonfinite_cases(), ids=[case["id"] for case in nonfinite_cases()])
async def test_where_the_peer_answers_nan_the_service_refuses(client, case):
    assert case["expected"]["loss"] == "nan"
    body = assert_problem(await client.post(path(case), json=case["request"]), 422, "y_true")
    assert "NaN" in body["detail"]


def test_the_file_covers_every_loss_reduction_dtype_and_weighting():
    assert reference()["optax_version"] and reference()["jax_version"]
    for name in LOSSES:
        mine = [case for case in CASES if case["loss"] == name]
        assert {c["request"]["dtype"] for c in mine} == {"float64", "float32"}, name
        assert {c["request"]["reduction"] for c in mine} == set(get_loss(name).reductions), name
        assert {"sample_weight" in c["request"] for c in mine} == {True, False}, name
    assert {case["loss"] for case in nonfinite_cases()} == {"ntxent"}


def _case(case_id: str) -> dict:
    return next(case for case in CASES if case["id"] == case_id)


@pytest.mark.parametrize("loss,k", [("triplet", 3), ("quadruplet", 4)])
def test_the_concatenated_layout_is_the_stacked_one_split_as_tf_split_splits_it(loss, k):
    """The same embeddings sent (B, k, D) and (B, k·D): the peer (jnp.split, tf.split's semantics) gives the
    same per-sample values, and its gradient is the stacked one with the blocks side by side."""
    for dtype in ("float64", "float32"):
        stacked = _case(f"{loss}/stacked/none/{dtype}")
        concatenated = _case(f"{loss}/concatenated/none/{dtype}")
        x = np.asarray(stacked["request"]["y_pred"])
        assert np.array_equal(x.reshape(x.shape[0], -1), np.asarray(concatenated["request"]["y_pred"]))
        assert x.shape[1] == k
        assert_close(concatenated["expected"]["per_sample"], stacked["expected"]["per_sample"], dtype, loss)
        assert_close(concatenated["expected"]["gradient"],
                     np.asarray(stacked["expected"]["gradient"]).reshape(x.shape[0], -1), dtype, loss)


def test_the_triplet_kink_passes_the_full_gradient_as_tf_maximum_does():
    """At |a-p|^2 - |a-n|^2 + alpha = 0 exactly, tf.maximum's gradient goes to its first argument: the
    reference holds the full gradient 2(n - p), 2(p - a), 2(a - n) there (jnp.maximum would halve it)."""
    case = _case("triplet/kink/alpha=0.25/sum/float64")
    x = np.asarray(case["request"]["y_pred"])
    a, p, n = x[0]
    assert np.sum((a - p) ** 2) - np.sum((a - n) ** 2) + 0.25 == 0
    assert case["expected"]["per_sample"][0] == 0
    np.testing.assert_array_equal(case["expected"]["gradient"][0], [2 * (n - p), 2 * (p - a), 2 * (a - n)])
    assert np.abs(case["expected"]["gradient"][0]).sum() > 0


def test_ntxent_leaves_the_other_positives_out_of_the_denominator():
    """Recomputed with NumPy from the recorded inputs, Optax's answer is the one whose denominator holds
    the pair and the anchor's negatives only (not SimCLR's sum over every k != i), which differs here."""
    case = _case("ntxent/groups/temperature=0.5/sum/float64")
    labels, x = np.asarray(case["request"]["y_true"]), np.asarray(case["request"]["y_pred"])
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = u @ u.T / case["request"]["params"]["temperature"]
    same, eye = labels[:, None] == labels[None, :], np.eye(len(labels), dtype=bool)
    pairs = [(i, j) for i in range(len(labels)) for j in range(len(labels)) if same[i, j] and i != j]
    optax_way = np.mean([np.log(np.exp(s[i, j]) + np.exp(s[i][~same[i]]).sum()) - s[i, j] for i, j in pairs])
    simclr_way = np.mean([np.log(np.exp(s[i][~eye[i]]).sum()) - s[i, j] for i, j in pairs])
    assert case["expected"]["loss"] == pytest.approx(optax_way, rel=1e-12)
    assert abs(optax_way - simclr_way) > 1e-3
