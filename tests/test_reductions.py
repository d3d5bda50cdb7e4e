"""Keras 3 reduction and weighting rules, edge cases included (losses.md, "Reductions and weights")."""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import ShapeError, compute
from service.engine.reduction import reduce, squeeze_or_expand_to_same_rank

Y_T = [[1.0, 9.0, 2.0], [-5.0, -2.0, 6.0]]
Y_P = [[4.0, 8.0, 12.0], [8.0, 1.0, 3.0]]
PER_SAMPLE = np.array([110 / 3, 187 / 3])  # MSE rows


def mse(**kw):
    return compute("mse", Y_T, Y_P, **kw)


def test_sum_over_batch_size_divides_by_element_count():
    assert float(mse().loss) == pytest.approx(PER_SAMPLE.mean())
    assert float(mse(reduction="mean").loss) == float(mse().loss)
    assert float(mse(reduction="sum").loss) == pytest.approx(PER_SAMPLE.sum())


def test_b1_weights_make_per_sample_b1():
    r = mse(sample_weight=[[1.2], [3.4]], reduction="none")
    assert r.per_sample.shape == (2, 1)
    np.testing.assert_allclose(r.per_sample[:, 0], PER_SAMPLE * [1.2, 3.4])
    assert float(mse(sample_weight=[[1.2], [3.4]]).loss) == pytest.approx((PER_SAMPLE * [1.2, 3.4]).sum() / 2)


def test_scalar_weight_and_mean_with_sample_weight_of_a_scalar():
    assert float(mse(sample_weight=2.3).loss) == pytest.approx(PER_SAMPLE.mean() * 2.3)
    # Keras divides by the sum of the weights as given: a scalar 2.3 gives the plain sum
    assert float(mse(sample_weight=2.3, reduction="mean_with_sample_weight").loss) == pytest.approx(PER_SAMPLE.sum())


def test_mean_with_sample_weight_and_no_weights_is_mean():
    assert float(mse(reduction="mean_with_sample_weight").loss) == float(mse().loss)


def test_elementwise_weights_broadcast_against_per_sample():
    r = compute("mse", [[[1], [9], [2]], [[-5], [-2], [6]]], [[[4], [8], [12]], [[8], [1], [3]]],
                sample_weight=[[3, 6, 5], [0, 4, 2]])
    assert float(r.loss) == pytest.approx(97.833333333)


def test_one_dimensional_inputs_reduce_to_a_scalar_even_for_sum():
    r = compute("mse", [1, 2, 3], [2, 2, 2], reduction="sum")
    assert r.per_sample.shape == ()
    assert float(r.loss) == pytest.approx(2 / 3)


def test_b_weights_against_bt_losses_are_not_expanded():
    with pytest.raises(ShapeError) as info:
        compute("mse", np.zeros((2, 3, 4)), np.ones((2, 3, 4)), sample_weight=[1.0, 2.0])
    assert "[2]" in info.value.detail and "[2, 3]" in info.value.detail


def test_zero_weights_give_zero_not_nan():
    r = mse(sample_weight=[0.0, 0.0], reduction="mean_with_sample_weight")
    assert float(r.loss) == 0.0
    assert np.all(r.gradient == 0)


def test_all_masked_ignore_class_gives_zero_and_zero_gradient():
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none"):
        r = compute("sparse_categorical_crossentropy", [-1, -1], [[0.2, 0.8], [0.6, 0.4]],
                    params={"ignore_class": -1}, reduction=reduction)
        assert np.all(np.asarray(r.loss) == 0), reduction
        assert np.all(r.gradient == 0) and np.isfinite(r.gradient).all()


def test_ignore_class_averages_over_valid_entries_only():
    y_pred = [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]
    masked = compute("sparse_categorical_crossentropy", [1, -1, 0], y_pred, params={"ignore_class": -1})
    plain = compute("sparse_categorical_crossentropy", [1, 0], [y_pred[0], y_pred[2]])
    assert float(masked.loss) == pytest.approx(float(plain.loss))
    mw = compute("sparse_categorical_crossentropy", [1, -1, 0], y_pred, params={"ignore_class": -1},
                 sample_weight=[2.0, 5.0, 1.0], reduction="mean_with_sample_weight")
    expected = (2 * plain.per_sample[0] + 1 * plain.per_sample[1]) / 3.0
    assert float(mw.loss) == pytest.approx(expected)


@pytest.mark.parametrize("a,b,expected", [
    ((4, 1), (4,), ((4, 1), (4, 1))), ((4,), (4, 1), ((4, 1), (4, 1))), ((2, 3, 1), (2, 3), ((2, 3), (2, 3))),
    ((2, 3), (2, 3, 1), ((2, 3), (2, 3))), ((2, 3), (2,), ((2, 3), (2,))), ((2, 3), (), ((2, 3), ())),
])
def test_squeeze_or_expand_to_same_rank(a, b, expected):
    x, y = squeeze_or_expand_to_same_rank(np.zeros(a), np.zeros(b))
    assert (x.shape, y.shape) == expected


def test_reduce_upstream_is_the_derivative_of_the_loss():
    rng = np.random.default_rng(3)
    values = rng.random((3, 4))
    weights = rng.random((3, 1))
    for reduction in ("sum", "sum_over_batch_size", "mean_with_sample_weight", "none"):
        r = reduce(values, weights, None, reduction)
        for idx in np.ndindex(values.shape):
            bumped = values.copy()
            bumped[idx] += 1e-6
            delta = (np.sum(reduce(bumped, weights, None, reduction).loss) - np.sum(r.loss)) / 1e-6
            assert r.upstream[idx] == pytest.approx(delta, rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "mean", "sum", "mean_with_sample_weight"])
@pytest.mark.parametrize("weights", [None, [2.0, 5.0, 1.0, 0.5]])
def test_masked_per_sample_is_keras_reduction_none_whatever_the_reduction(reduction, weights):
    """Keras returns per-sample values times weights and the 0/1 mask with reduction=None; the
    total/valid rescaling of sum_over_batch_size belongs to the loss and gradient only."""
    y_true, y_pred = [1, -1, 0, -1], [[0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.3, 0.7]]
    kwargs = {"params": {"ignore_class": -1}, "sample_weight": weights}
    asked = compute("sparse_categorical_crossentropy", y_true, y_pred, reduction=reduction, **kwargs)
    none = compute("sparse_categorical_crossentropy", y_true, y_pred, reduction="none", **kwargs)
    np.testing.assert_array_equal(asked.per_sample, none.per_sample)
    assert none.per_sample[1] == 0 and none.per_sample[0] > 0
    if reduction in ("sum_over_batch_size", "mean"):  # the mean runs over the 2 valid entries
        assert float(asked.loss) == pytest.approx(float(np.sum(none.per_sample)) / 2)


def test_circle_per_sample_is_the_same_under_every_reduction():
    rng = np.random.default_rng(5)
    y_pred = rng.normal(size=(6, 4))
    y_pred /= np.linalg.norm(y_pred, axis=1, keepdims=True)
    labels = [0, 0, 1, 1, 2, 3]  # labels 2 and 3 have no positive pair: loss 0, masked out of the mean
    none = compute("circle", labels, y_pred, reduction="none")
    assert (none.per_sample == 0).sum() == 2 and (none.per_sample > 0).sum() == 4
    for reduction in ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight"):
        asked = compute("circle", labels, y_pred, reduction=reduction)
        np.testing.assert_array_equal(asked.per_sample, none.per_sample, err_msg=reduction)
    mean = compute("circle", labels, y_pred)
    assert float(mean.loss) == pytest.approx(float(none.per_sample.sum()) / 4)
