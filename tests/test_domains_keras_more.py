"""Domain, shape and parameter errors of the Keras losses added in issue 3 (part 1).

Each case is a request the engine must refuse with a 422 that names the offending field; where
Keras would silently return NaN, a huge number or a wrongly broadcast result, the service refuses.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import LossServiceError, compute
from service.engine.checks import check_interval
from service.engine.errors import DomainError
from service.engine.params import NON_NEGATIVE, UNIT, Interval

from .helpers import assert_rejected

P2 = [[0.6, 0.4], [0.3, 0.7]]
ONE_HOT = [[1, 0, 0], [0, 1, 0]]
PROBS3 = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]

CASES = [
    # mean_absolute_percentage_error
    ("mape", {"y_true": [[1.0, 2.0, 3.0]], "y_pred": [[1.0, 2.0]]}, "y_true"),
    ("MeanAbsolutePercentageError", {"y_true": [[1.0, 2.0], [3.0, 4.0]], "y_pred": [[1.0, 2.0], [3.0, 4.0]],
                                     "sample_weight": [1.0, 2.0, 3.0]}, "sample_weight"),
    ("mape", {"y_true": [[1.0, 2.0]], "y_pred": [[1.0, 2.0]], "reduction": "auto"}, "reduction"),
    # mean_squared_logarithmic_error
    ("msle", {"y_true": [[1.0, 2.0], [3.0, 4.0]], "y_pred": [[1.0, 2.0, 3.0, 4.0]]}, "y_true"),
    ("MSLE", {"y_true": [[1.0, 2.0], [3.0, 4.0]], "y_pred": [[1.0, 2.0], [3.0, 4.0]],
              "sample_weight": [[1.0, 2.0, 3.0]]}, "sample_weight"),
    # squared_hinge
    ("squared_hinge", {"y_true": [[0.5, 1.0], [0.0, 1.0]], "y_pred": P2}, "y_true"),
    ("SquaredHinge", {"y_true": [[2.0, -1.0], [1.0, 1.0]], "y_pred": P2}, "y_true"),
    ("squared_hinge", {"y_true": [[1.0, -1.0, 1.0]], "y_pred": P2}, "y_true"),
    # categorical_hinge
    ("categorical_hinge", {"y_true": [[-1, 1, -1], [1, -1, -1]], "y_pred": PROBS3}, "y_true"),
    ("CategoricalHinge", {"y_true": [[0, 1], [1, 0]], "y_pred": PROBS3}, "y_true"),
    ("categorical_hinge", {"y_true": [[0, 1.5, 0], [1, 0, 0]], "y_pred": PROBS3}, "y_true"),
    # binary_focal_crossentropy
    ("binary_focal_crossentropy", {"y_true": [[2.0, 0.0], [1.0, 0.0]], "y_pred": P2}, "y_true"),
    ("binary_focal_crossentropy", {"y_true": [[1.0, 0.0], [1.0, 0.0]], "y_pred": [[1.5, 0.4], [0.3, 0.7]]}, "y_pred"),
    ("BinaryFocalCrossentropy", {"y_true": [[1.0, 0.0], [1.0, 0.0]], "y_pred": [[0.6, -0.1], [0.3, 0.7]]}, "y_pred"),
    ("binary_focal_crossentropy", {"y_true": [[1, 0], [1, 0]], "y_pred": P2, "params": {"gamma": -1.0}}, "params"),
    ("binary_focal_crossentropy", {"y_true": [[1, 0], [1, 0]], "y_pred": P2, "params": {"alpha": 1.5}}, "params"),
    ("binary_focal_crossentropy", {"y_true": [[1, 0], [1, 0]], "y_pred": P2,
                                   "params": {"label_smoothing": 2.0}}, "params"),
    ("binary_focal_crossentropy", {"y_true": [[1, 0, 1]], "y_pred": P2}, "y_true"),
    # categorical_focal_crossentropy
    ("categorical_focal_crossentropy", {"y_true": [[1, 0, 0], [0, 2, 0]], "y_pred": PROBS3}, "y_true"),
    ("categorical_focal_crossentropy", {"y_true": ONE_HOT, "y_pred": [[0.7, -0.2, 0.5], [0.1, 0.8, 0.1]]}, "y_pred"),
    ("CategoricalFocalCrossentropy", {"y_true": ONE_HOT, "y_pred": [[0.7, 0.2, 0.1], [0.0, 0.0, 0.0]]}, "y_pred"),
    ("categorical_focal_crossentropy", {"y_true": ONE_HOT, "y_pred": PROBS3,
                                        "params": {"alpha": [0.25, 0.75]}}, "params"),
    ("categorical_focal_crossentropy", {"y_true": ONE_HOT, "y_pred": PROBS3,
                                        "params": {"alpha": [0.25, -0.5, 0.25]}}, "params"),
    ("categorical_focal_crossentropy", {"y_true": ONE_HOT, "y_pred": PROBS3, "params": {"gamma": -0.5}}, "params"),
    ("categorical_focal_crossentropy", {"y_true": ONE_HOT, "y_pred": PROBS3, "params": {"axis": 2}}, "params"),
    ("categorical_focal_crossentropy", {"y_true": [[1, 0], [0, 1]], "y_pred": PROBS3}, "y_true"),
    # categorical_generalized_cross_entropy
    ("categorical_generalized_cross_entropy", {"y_true": [0, 2], "y_pred": P2}, "y_true"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, -1], "y_pred": P2}, "y_true"),
    ("CategoricalGeneralizedCrossEntropy", {"y_true": [0, 0.5], "y_pred": P2}, "y_true"),
    # Keras silently broadcasts (B, 1) labels against (B, C) into a (B, B) loss: here a shape error
    ("categorical_generalized_cross_entropy", {"y_true": [[0], [1]], "y_pred": P2}, "y_true"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, 1, 1], "y_pred": P2}, "y_true"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, 1], "y_pred": [[1.2, -0.2], [0.3, 0.7]]}, "y_pred"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, 1], "y_pred": P2, "params": {"q": 1.0}}, "params"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, 1], "y_pred": P2, "params": {"q": 0.0}}, "params"),
    ("categorical_generalized_cross_entropy", {"y_true": [0, 1], "y_pred": P2, "params": {"q": 1.5}}, "params"),
    # dice
    ("dice", {"y_true": [[1, 0, 1]], "y_pred": P2}, "y_true"),
    ("dice", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"axis": 2}}, "params"),
    ("Dice", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"axis": [1, 1]}}, "params"),
    ("dice", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"axis": []}}, "params"),
    ("dice", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"axis": -1},
              "sample_weight": [1.0, 2.0, 3.0]}, "sample_weight"),
    # tversky
    ("tversky", {"y_true": [[1, 0], [0, 1], [1, 1]], "y_pred": P2}, "y_true"),
    ("tversky", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"alpha": -0.5}}, "params"),
    ("Tversky", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"beta": "0.5"}}, "params"),
    ("tversky", {"y_true": [[1, 0], [0, 1]], "y_pred": P2, "params": {"axis": [0, 3]}}, "params"),
]


@pytest.mark.parametrize("loss,body,field", CASES, ids=[f"{i}-{c[0]}-{c[2]}" for i, c in enumerate(CASES)])
def test_rejected(loss, body, field):
    assert_rejected(loss, body, field)


@pytest.mark.parametrize("loss,body", [
    ("mape", {"y_true": [[1.0]], "y_pred": [[1.0]], "params": {"delta": 1.0}}),
    ("squared_hinge", {"y_true": [[1.0]], "y_pred": [[1.0]], "params": {"from_logits": True}}),
    ("categorical_generalized_cross_entropy", {"y_true": [0], "y_pred": [[0.5, 0.5]],
                                               "params": {"from_logits": True}}),
    ("dice", {"y_true": [[1.0]], "y_pred": [[1.0]], "params": {"smooth": 1.0}}),
])
def test_unknown_parameter(loss, body):
    kwargs = {k: v for k, v in body.items() if k not in ("y_true", "y_pred")}
    with pytest.raises(LossServiceError) as info:
        compute(loss, body["y_true"], body["y_pred"], **kwargs)
    assert info.value.status == 422
    (name,) = body["params"]
    assert [e.loc for e in info.value.errors] == [("params", name)]
    assert name in info.value.detail


def test_generalized_ce_infinite_slope_is_a_422_only_for_the_gradient():
    """p_y = 0 gives a finite value 1/q but an infinite derivative; a zero weight on that row masks it."""
    body = {"y_true": [1, 0], "y_pred": [[0.2, 0.8], [0.0, 1.0]]}
    err = assert_rejected("categorical_generalized_cross_entropy", body, "result")
    assert err.slug == "non-finite-result"
    value = compute("categorical_generalized_cross_entropy", body["y_true"], body["y_pred"], outputs=("loss",))
    assert float(value.loss) == pytest.approx((1 - 0.8 ** 0.5) / 0.5 / 2 + 1 / 0.5 / 2)
    weighted = compute("categorical_generalized_cross_entropy", body["y_true"], body["y_pred"],
                       sample_weight=[1.0, 0.0])
    assert weighted.gradient[1].tolist() == [0.0, 0.0]


def test_keras_behaviours_kept():
    # MAPE floors |y_true| at eps instead of refusing a zero target
    r = compute("mape", [[0.0, -2.0]], [[1.0, 1.0]], dtype="float32")
    assert float(r.loss) == pytest.approx(5.000001e8, rel=1e-6)
    # MSLE floors negatives at eps; the floor has derivative 0
    r = compute("msle", [[-1.0, 0.5]], [[-3.0, 0.5]], outputs=("loss", "gradient"))
    assert float(r.loss) == 0.0 and r.gradient.tolist() == [[0.0, 0.0]]
    # squared hinge converts {0, 1} labels only when the whole y_true is in {0, 1}
    mixed = compute("squared_hinge", [[0.0, 1.0], [-1.0, 1.0]], [[0.3, 0.3], [0.3, 0.3]], reduction="none")
    assert mixed.per_sample.tolist()[0] == pytest.approx(0.5 * (1.0 + 0.7 ** 2))
    # Dice with axis=None gives one value for the whole batch
    r = compute("dice", [[1, 2], [1, 2]], [[4, 1], [6, 1]], reduction="none")
    assert r.per_sample.shape == ()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interval", [UNIT, NON_NEGATIVE, Interval(0.0, 1.0, True, False)], ids=str)
def test_one_pass_domain_check_agrees_with_the_elementwise_rule(dtype, interval):
    """check_interval's fast paths (bit patterns, min/max) accept exactly what contains() accepts."""
    edges = [0.0, -0.0, 1.0, np.nextafter(dtype(1), dtype(2)), np.nextafter(dtype(1), dtype(0)), -1e-30, 1e30, 0.5]
    rng = np.random.default_rng(7)
    for trial in range(200):
        x = rng.choice(np.array(edges, dtype=dtype), size=rng.integers(1, 5))
        expected = bool(np.all(interval.contains(x)))
        try:
            check_interval(x, interval, "y_pred")
            accepted = True
        except DomainError:
            accepted = False
        assert accepted == expected, (trial, x.tolist())
