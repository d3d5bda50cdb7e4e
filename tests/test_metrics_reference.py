"""The "Other losses" against their peers' own answers (tests/data/metrics_reference.json, written by
scripts/metrics_reference.py with scikit-learn and XGBoost; reading it needs neither).

Each case is posted to the in-process app as recorded (sum_over_batch_size for an unweighted metric,
mean_with_sample_weight for a weighted one) and the service's loss must be the peer's number, within
    float64 inputs: rtol 1e-12, atol 1e-14 (a different summation order),
    float32 inputs: rtol 2e-5,  atol 1e-6,
    XGBoost's float32 metric (``computed_in: float32``): rtol 2e-6, atol 1e-7.
Cases the peer refuses are 422 problem+json naming the recorded field.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses

from . import reference_files
from .conftest import assert_problem, loc_text

pytestmark = pytest.mark.anyio

REFERENCE = reference_files.load("metrics_reference.json")
CASES, REFUSED = REFERENCE["cases"], REFERENCE["refused"]
TOLERANCES = {"float64": (1e-12, 1e-14), "float32": (2e-5, 1e-6), "computed_in_float32": (2e-6, 1e-7)}
# the losses losses.md says a peer computes: each must have cases here
MATCHED = {"quantile", "zero_one", "tweedie_deviance", "poisson_deviance", "gamma_deviance", "brier", "pseudo_huber"}


def _close(actual, expected, tolerance, where):
    rtol, atol = TOLERANCES[tolerance]
    reference_files.assert_close(actual, expected, where, rtol=rtol, atol=atol, peer="the peer")


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
async def test_the_service_gives_the_peers_number(client, case):
    response = await client.post(f"/v1/losses/{case['loss']}", json=case["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    tolerance = "computed_in_float32" if case.get("computed_in") == "float32" else case["request"]["dtype"]
    _close(body["loss"], case["expected"]["loss"], tolerance, case["id"])
    if "sklearn_auto" in case:  # scikit-learn halves two-column input: ours is twice its default
        _close(body["loss"], 2 * case["sklearn_auto"], tolerance, f"{case['id']} (2 x scale_by_half='auto')")


@pytest.mark.parametrize("case", REFUSED, ids=[c["id"] for c in REFUSED])
async def test_what_the_peer_refuses_is_a_422_naming_the_field(client, case):
    response = await client.post(f"/v1/losses/{case['loss']}", json=case["request"])
    body = assert_problem(response, 422, loc_text(case["field"]))
    assert any(e["loc"] == case["field"] for e in body["errors"]), body["errors"]


def test_every_matched_loss_is_checked_unweighted_and_weighted_in_the_file():
    registered = {loss.name: loss for loss in all_losses()}
    assert MATCHED <= set(registered)
    for name in MATCHED:
        reductions = {c["request"]["reduction"] for c in CASES if c["loss"] == name}
        assert reductions == {"sum_over_batch_size", "mean_with_sample_weight"}, name
        assert registered[name].family == "other", name
    assert {c["loss"] for c in CASES} | {c["loss"] for c in REFUSED} <= MATCHED
    assert len(CASES) >= 60 and len(REFUSED) >= 10


async def test_sum_over_batch_size_with_weights_is_not_the_weighted_metric(client):
    """Why the weighted cases use mean_with_sample_weight: sum_over_batch_size divides the weighted
    sum by the number of samples, scikit-learn's np.average by the summed weights."""
    case = next(c for c in CASES if c["loss"] == "quantile" and "sample_weight" in c["request"]
                and c["request"]["dtype"] == "float64")
    weights = np.asarray(case["request"]["sample_weight"])
    other = {**case["request"], "reduction": "sum_over_batch_size"}
    body = (await client.post(f"/v1/losses/{case['loss']}", json=other)).json()
    np.testing.assert_allclose(body["loss"], case["expected"]["loss"] * weights.sum() / weights.size, rtol=1e-12)
