"""The torch.* losses against PyTorch 2.13's own answers (tests/data/pytorch_reference.json).

Every case of the reference file whose loss is registered is posted to the in-process app and
must come back as PyTorch computed it (loss, per_sample, autograd's gradient, both dtypes); where
PyTorch answers NaN or infinity the service answers a 422. A loss of the file that is registered
but has no case checked here fails ``test_every_registered_reference_loss_is_checked``, so nothing
is skipped silently as the family grows.
"""

from __future__ import annotations

import pytest

from service.engine import all_losses

from .pytorch_reference import cases, check, check_refused, nonfinite_cases, path

pytestmark = pytest.mark.anyio

REGISTERED = {loss.name for loss in all_losses()}
CHECKED = [case for case in cases() if case["loss"] in REGISTERED]
NONFINITE = nonfinite_cases()


@pytest.mark.parametrize("case", CHECKED, ids=[case["id"] for case in CHECKED])
async def test_pytorch_reference_case(client, case):
    check(case, await client.post(path(case), json=case["request"]))


@pytest.mark.parametrize("case", NONFINITE, ids=[case["id"] for case in NONFINITE])
async def test_where_pytorch_answers_nan_or_inf_the_service_refuses(client, case):
    response = await client.post(path(case), json=case["request"])
    if case["loss"] in REGISTERED:
        check_refused(case, response)
    else:  # not served yet (a later increment): the name is unknown, never a number
        assert response.status_code == 404, response.text


def test_every_registered_reference_loss_is_checked():
    in_file = {case["loss"] for case in cases()} | {case["loss"] for case in nonfinite_cases()}
    registered = in_file & REGISTERED
    for name in registered:
        checked = [case for case in CHECKED if case["loss"] == name]
        assert {case["request"]["dtype"] for case in checked} == {"float64", "float32"}, name
        accepted = set(next(loss for loss in all_losses() if loss.name == name).reductions)
        assert {case["request"]["reduction"] for case in checked} == accepted, name
    # this increment's eleven elementwise losses at least
    assert len(registered) >= 11, sorted(registered)
    assert len(CHECKED) >= 200
