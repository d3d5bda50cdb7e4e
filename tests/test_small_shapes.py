"""Registry-driven: every loss answers small inputs of every rank (a scalar, one value, one row, a
3-D block, mismatched ranks) with a result or a typed error, never an unexpected exception (a 500)."""

from __future__ import annotations

import pytest

from service.engine import LossServiceError, all_losses, compute

SHAPES = [(0.5, 0.5), ([0.5], [0.5]), ([[0.5]], [[0.5]]), (1.0, [[[0.2]]]), ([1, 0], [[0.3, 0.2]]),
          ([[1.0, 0.0]], [0.3, 0.2]), ([0, 1, 1], [[0.3], [0.2], [0.9]])]


@pytest.mark.parametrize("loss", all_losses(), ids=lambda loss: loss.name)
def test_small_inputs_of_any_rank_give_a_result_or_a_typed_error(loss):
    answered = 0
    for y_true, y_pred in SHAPES:
        try:
            compute(loss, y_true, y_pred, outputs=("loss", "per_sample", "gradient"))
            answered += 1
        except LossServiceError as err:
            assert 400 <= err.status < 500, (loss.name, y_true, y_pred, err.detail)
            answered += 1
    assert answered == len(SHAPES)
