"""The work bound: every loss says how many values its largest array holds (``Loss.work``), compute
refuses inputs over ``max_work`` before computing anything, its memory stays within
``BYTES_PER_WORK[dtype]`` per unit of work, and the service answers 413 for requests over
LOSS_SERVICE_MAX_REQUEST_WORK, so that no request can exhaust the memory of the process that serves
the others (the shared budget is tested in test_admission.py and test_hostile.py). Registry-driven:
a loss added later is checked the same way."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from service.engine import BYTES_PER_WORK, all_losses, compute, get_loss
from service.engine.errors import LimitExceeded
from service.engine.params import bind
from service.engine.sampling import rng_for

from .conftest import assert_problem, make_client

pytestmark = pytest.mark.anyio

LOSSES = all_losses()
SLACK_BYTES = 256 * 1024  # interpreter and small-array noise under tracemalloc
PAIRWISE = {"circle", "ntxent"}  # B x B work: a y_pred of 5k values already makes millions of pairs


def _sampled(loss, elements: int):
    """Sampled inputs with the batch axis grown until y_pred holds about ``elements`` values."""
    p = bind(loss.params, {})
    base = loss.sample_shape
    batch = max(base[0], math.ceil(elements / math.prod(base[1:])))
    s = loss.sample(rng_for(3), (batch, *base[1:]), p)
    p = bind(loss.params, {**p, **s.get("params", {})})  # parameters drawn with the data (CTC's lengths)
    y_true, y_pred = np.asarray(s["y_true"], dtype=np.float64), np.asarray(s["y_pred"], dtype=np.float64)
    return y_true, y_pred, loss.work(*loss.prepare(y_true, y_pred, dict(p)), p), p


@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: loss.name)
def test_compute_refuses_inputs_over_max_work_before_computing(loss):
    y_true, y_pred, work, p = _sampled(loss, 60)
    assert work >= y_pred.size
    assert compute(loss, y_true, y_pred, params=p, max_work=work).loss is not None
    with pytest.raises(LimitExceeded) as refused:
        compute(loss, y_true, y_pred, params=p, max_work=work - 1)
    assert refused.value.status == 413 and f"{work:,}" in refused.value.detail
    assert loss.work_doc in refused.value.detail


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES, ids=lambda loss: loss.name)
def test_declared_work_bounds_the_memory_a_computation_takes(loss, dtype):
    """NumPy reports its allocations to tracemalloc: the peak of a value-and-gradient computation
    stays within BYTES_PER_WORK[dtype] per unit of declared work (the figure the work budget's memory
    bound is computed with), so a loss that builds pairs or a lattice without declaring it fails here.
    Measured at 200k units: Circle 123 B (float64) and 63 B (float32), CTC 47 and 42, the rest <= 73 and 37."""
    # y_pred of 50k values keeps the slack small beside the arrays (Circle's 5k already make 2.8M pairs)
    y_true, y_pred, work, p = _sampled(loss, 5000 if loss.name in PAIRWISE else 50_000)
    tracemalloc.start()
    try:
        compute(loss, y_true, y_pred, params=p, outputs=("loss", "per_sample", "gradient"), dtype=dtype)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= BYTES_PER_WORK[dtype] * work + SLACK_BYTES, (peak, work)


def test_superlinear_losses_say_how_their_work_grows():
    assert get_loss("circle").work(np.zeros(50), np.zeros((50, 2)), {}) == 2500
    ctc = get_loss("ctc")
    labels, logits = np.array([[1, 2, 0], [2, 0, 0]]), np.zeros((2, 7, 3))
    prepared = ctc.prepare(labels.astype(float), logits, {})
    assert ctc.work(*prepared, {}) == 7 * ctc.FRAME_WORK  # short inputs: the per-frame loop cost dominates
    labels, logits = np.array([[1, 2, 0]] * 300), np.zeros((300, 7, 3))
    prepared = ctc.prepare(labels.astype(float), logits, {})
    assert ctc.work(*prepared, {}) == 300 * 7 * 5  # B x T x (2 * 2 + 1)


def _circle_body(batch: int) -> dict:
    y = np.random.default_rng(0).normal(size=(batch, 2))
    return {"y_true": (np.arange(batch) // 2).tolist(), "y_pred": (y / np.linalg.norm(y, axis=1, keepdims=True)).tolist()}


async def test_service_answers_413_naming_the_loss_and_the_fix():
    async with make_client(max_request_work=400) as client:
        assert (await client.post("/v1/losses/circle", json=_circle_body(20))).status_code == 200
        problem = assert_problem(await client.post("/v1/losses/circle", json=_circle_body(21)), 413, "y_pred")
        assert "441" in problem["detail"] and "smaller" in problem["detail"]
        ctc = {"y_true": [[1, 2, 1, 2]] * 2, "y_pred": np.zeros((2, 30, 3)).tolist()}  # 2 x 30 x 9 = 540
        assert_problem(await client.post("/v1/losses/ctc", json=ctc), 413, "y_pred")
        batch = await client.post("/v1/batch", json={"requests": [{"loss": "circle", **_circle_body(21)},
                                                                  {"loss": "mse", "y_true": [1], "y_pred": [2]}]})
        items = batch.json()["results"]
        assert items[0]["error"]["status"] == 413 and "error" not in items[1]  # one item's fault only
        assert items[0]["error"]["errors"][0]["loc"] == ["requests", 0, "y_pred"]


async def test_exercises_and_grades_over_the_work_limit_are_413():
    async with make_client(max_request_work=400) as client:
        problem = assert_problem(await client.post("/v1/exercises", json={"loss": "circle", "shape": [30, 2], "seed": 1}),
                                 413, "shape")
        assert "900" in problem["detail"]
        assert (await client.post("/v1/exercises", json={"loss": "circle", "shape": [20, 2], "seed": 1})).status_code == 200
        graded = await client.post("/v1/grade", json={"loss": "circle", **_circle_body(21), "submission": {"loss": 1.0}})
        assert_problem(graded, 413, "y_pred")
