"""The sklearn.* objectives against scikit-learn's own answers (tests/data/sklearn_reference.json).

scripts/sklearn_reference.py ran scikit-learn's ``sklearn._loss`` classes (``loss``,
``gradient_hessian``, ``__call__`` with sample_weight, n_threads=1) on seeded inputs; each case is
posted to the in-process app and must come back as scikit-learn computed it: loss, per_sample,
gradient and Hessian, in both dtypes, under every Keras reduction, with and without weights. Where
scikit-learn overflows to infinity the service answers a 422. The file is read without
scikit-learn installed.

Tolerances, per number: |actual - expected| <= atol + rtol * |expected|, with
    float64: rtol 1e-12, atol 1e-13   (last-bit differences of exp/log between NumPy and libm, and of
                                       the order of a sum)
    float32: rtol 2e-6,  atol 1e-6    (scikit-learn rounds loss x weight once, from double; the service
                                       rounds the loss, then multiplies by the float32 weight; its
                                       multinomial works partly in float32)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from service.engine import all_losses, get_loss

from . import reference_files

pytestmark = pytest.mark.anyio

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "sklearn_reference.py"
TOLERANCES = {"float64": (1e-12, 1e-13), "float32": (2e-6, 1e-6)}
OUTPUTS = ("loss", "per_sample", "gradient", "hessian")


def reference() -> dict:
    return reference_files.load("sklearn_reference.json")


CASES = reference()["cases"]
NONFINITE = reference()["nonfinite"]
FAMILY = sorted(loss.name for loss in all_losses() if loss.family == "gradient-boosting")


def assert_close(actual, expected, dtype: str, where: str) -> None:
    rtol, atol = TOLERANCES[dtype]
    reference_files.assert_close(actual, expected, where, rtol=rtol, atol=atol, peer="scikit-learn")


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
async def test_sklearn_reference_case(client, case):
    response = await client.post(f"/v1/losses/{case['loss']}", json=case["request"])
    assert response.status_code == 200, response.text
    body = response.json()
    for key in OUTPUTS:
        assert_close(body.get(key), case["expected"][key], case["request"]["dtype"], f"{case['id']}: {key}")


@pytest.mark.parametrize("case", NONFINITE, ids=[case["id"] for case in NONFINITE])
async def test_where_sklearn_overflows_the_service_refuses(client, case):
    response = await client.post(f"/v1/losses/{case['loss']}", json=case["request"])
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"][0] == "result", response.text


def test_the_file_covers_every_objective_in_both_dtypes_and_every_reduction():
    assert reference()["losses"] == FAMILY
    assert len(FAMILY) == 11
    for name in FAMILY:
        mine = [case for case in CASES if case["loss"] == name]
        assert {case["request"]["dtype"] for case in mine} == {"float64", "float32"}, name
        assert {case["request"]["reduction"] for case in mine} == set(get_loss(name).reductions), name
        assert any("sample_weight" in case["request"] for case in mine), name
        assert any(case["request"]["params"].get("hessian") == "exact" for case in CASES if case["loss"] == name) \
            or name in {"sklearn.half_squared_error", "sklearn.huber_loss", "sklearn.half_poisson",
                        "sklearn.half_gamma", "sklearn.half_tweedie_identity", "sklearn.half_binomial",
                        "sklearn.exponential"}, name
    assert len(CASES) >= 400


def test_the_file_is_the_scripts_output():
    text = SCRIPT.read_text()
    assert reference()["seed"] == int(re.search(r"^SEED = (\d+)$", text, re.M).group(1))
    assert re.fullmatch(r"1\.\d+(\.\d+)?", reference()["sklearn_version"]), reference()["sklearn_version"]


def test_weighted_sum_cases_are_the_unweighted_ones_times_the_weight():
    """The file's own consistency: scikit-learn multiplies loss, gradient and Hessian by the weight."""
    by_id = {case["id"]: case for case in CASES}
    checked = 0
    for case in CASES:
        if not case["id"].endswith("-sum-weighted") or case["request"]["dtype"] != "float64":
            continue
        plain = by_id[case["id"].removesuffix("-weighted")]
        w = np.asarray(case["request"]["sample_weight"])
        if case["loss"] == "sklearn.half_multinomial":
            w = w[:, None]
        for key in ("gradient", "hessian"):
            np.testing.assert_allclose(case["expected"][key], np.asarray(plain["expected"][key]) * w, rtol=1e-14,
                                       atol=0, err_msg=case["id"])
        checked += 1
    assert checked >= 20


def test_sklearns_approximate_hessians_are_in_the_file():
    """Hessian 1 (not 0) for the absolute error and the pinball loss by default, 0 with hessian exact."""
    for name in ("sklearn.absolute_error", "sklearn.pinball_loss"):
        mine = [case for case in CASES if case["loss"] == name and case["request"]["reduction"] == "sum"
                and "sample_weight" not in case["request"]]
        default = [case for case in mine if "hessian" not in case["request"]["params"]]
        exact = [case for case in mine if case["request"]["params"].get("hessian") == "exact"]
        assert default and exact, name
        assert all(np.all(np.asarray(case["expected"]["hessian"]) == 1) for case in default), name
        assert all(np.all(np.asarray(case["expected"]["hessian"]) == 0) for case in exact), name
