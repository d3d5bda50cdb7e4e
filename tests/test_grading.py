"""POST /v1/grade: numpy.isclose checks, diagnostics, feedback text, the no-leak rule, Gradescope."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from .conftest import assert_problem, make_client

pytestmark = pytest.mark.anyio

# (loss, params, exercise, reduction): several families, shapes and reductions
CASES = [
    ("mean_squared_error", {}, {"seed": 1, "shape": [4, 3]}, "sum_over_batch_size"),
    ("categorical_crossentropy", {}, {"seed": 2, "shape": [5, 4]}, "sum_over_batch_size"),
    ("huber", {"delta": 0.5}, {"seed": 3, "shape": [3, 2], "sample_weight": True}, "sum_over_batch_size"),
    ("sparse_categorical_crossentropy", {"from_logits": True}, {"seed": 4, "shape": [6, 3]}, "sum_over_batch_size"),
    ("binary_crossentropy", {}, {"seed": 5, "shape": [4, 5]}, "sum"),
    ("ctc", {}, {"seed": 6, "shape": [2, 6, 4]}, "mean_with_sample_weight"),
    ("torch.cross_entropy", {"label_smoothing": 0.1}, {"seed": 7, "shape": [5, 4]}, "mean"),
    # the exercise draws the lengths too; the grade request sends none
    ("torch.ctc_loss", {"blank": 2}, {"seed": 8, "shape": [8, 3, 5]}, "mean"),
]
IDS = [c[0] for c in CASES]
OUTS = ["loss", "per_sample", "gradient"]


async def reference(client, loss, params, exercise, reduction, outputs=OUTS):
    """The exercise's inputs and the reference values from the loss endpoint."""
    ex = (await client.post("/v1/exercises", json={"loss": loss, "params": params, **exercise})).json()
    body = {"y_true": ex["y_true"], "y_pred": ex["y_pred"], "params": ex["params"], "reduction": reduction,
            "outputs": outputs}
    if "sample_weight" in ex:
        body["sample_weight"] = ex["sample_weight"]
    response = await client.post(f"/v1/losses/{loss}", json=body)
    assert response.status_code == 200, response.text
    return ex, response.json()


async def grade(client, loss, params, exercise, reduction, submission, **extra):
    body = {"loss": loss, "params": params, "exercise": exercise, "reduction": reduction,
            "submission": submission, **extra}
    response = await client.post("/v1/grade", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def by_output(result) -> dict:
    return {c["output"]: c for c in result["checks"]}


def scale(value, factor):
    return (np.asarray(value, dtype=float) * factor).tolist()


def assert_no_expected_values(result, ref, outputs=OUTS):
    """The no-leak rule: no reference value appears anywhere in the response (the student's own
    values, echoed in worst.submitted, aside)."""
    assert "expected" not in result
    for check in result["checks"]:
        assert "expected" not in (check.get("worst") or {})
    text = json.dumps({**result, "checks": [{k: v for k, v in c.items() if k != "worst"} for c in result["checks"]]})
    for name in outputs:
        for v in np.ravel(ref[name]):
            r = repr(float(v))
            if len(r) > 6:  # skip values such as 0.0, 0.25 that appear for other reasons
                assert r not in text, (name, r)


@pytest.mark.parametrize(("loss", "params", "exercise", "reduction"), CASES, ids=IDS)
async def test_correct_submission_passes(client, loss, params, exercise, reduction):
    _, ref = await reference(client, loss, params, exercise, reduction)
    result = await grade(client, loss, params, exercise, reduction, {k: ref[k] for k in OUTS})
    assert result["passed"] is True and result["score"] == result["max_score"] == 3
    for check in result["checks"]:
        assert check["passed"] and check["score"] == 1 and check["mismatches"] == 0 and check["non_finite"] == 0
        assert check["max_abs_error"] == 0.0 and "worst" not in check
        assert check["shape"] == check["expected_shape"] == list(np.shape(ref[check["output"]]))
        assert "match" in check["message"]
    assert [c["output"] for c in result["checks"]] == OUTS
    assert result["meta"]["loss"] == loss and result["meta"]["exercise"]["seed"] == exercise["seed"]
    assert_no_expected_values(result, ref)


@pytest.mark.parametrize(("loss", "params", "exercise", "reduction"), CASES, ids=IDS)
async def test_wrong_sign_gradient(client, loss, params, exercise, reduction):
    _, ref = await reference(client, loss, params, exercise, reduction)
    result = await grade(client, loss, params, exercise, reduction,
                         {"loss": ref["loss"], "gradient": scale(ref["gradient"], -1)})
    assert result["passed"] is False and result["score"] == 1 and result["max_score"] == 2
    check = by_output(result)["gradient"]
    size = int(np.size(ref["gradient"]))
    nonzero = int(np.count_nonzero(np.abs(ref["gradient"]) > 1e-8))
    assert check["mismatches"] == nonzero and check["size"] == size
    assert f"the right shape but the wrong sign in {nonzero} of {size} entries" in check["message"]
    assert check["worst"]["index"] and len(check["worst"]["index"]) == np.ndim(ref["gradient"])
    assert check["max_rel_error"] == pytest.approx(2.0)
    assert_no_expected_values(result, ref, ["gradient"])


@pytest.mark.parametrize(("loss", "params", "exercise", "reduction"), CASES, ids=IDS)
async def test_slightly_off_inside_and_outside_tolerance(client, loss, params, exercise, reduction):
    _, ref = await reference(client, loss, params, exercise, reduction)
    inside = {k: scale(ref[k], 1 + 1e-7) for k in OUTS}
    assert (await grade(client, loss, params, exercise, reduction, inside))["passed"] is True
    outside = {k: scale(ref[k], 1 + 1e-4) for k in OUTS}
    result = await grade(client, loss, params, exercise, reduction, outside)
    assert result["score"] == 0
    for check in result["checks"]:
        assert "just outside the tolerance" in check["message"], check["message"]
        assert check["max_rel_error"] == pytest.approx(1e-4, rel=1e-3)
    loose = await grade(client, loss, params, exercise, reduction, outside, tolerance={"rtol": 1e-3, "atol": 0})
    assert loose["passed"] is True
    assert_no_expected_values(result, ref)


@pytest.mark.parametrize(("loss", "params", "exercise", "reduction"), CASES, ids=IDS)
async def test_wrong_shapes_name_both_shapes(client, loss, params, exercise, reduction):
    _, ref = await reference(client, loss, params, exercise, reduction)
    grad = np.asarray(ref["gradient"])
    result = await grade(client, loss, params, exercise, reduction, {
        "loss": ref["per_sample"], "per_sample": ref["loss"], "gradient": grad.T.tolist()})
    checks = by_output(result)
    assert result["score"] == 0
    loss_msg = checks["loss"]["message"]
    assert f"shape {list(np.shape(ref['per_sample']))}" in loss_msg and "shape []" in loss_msg
    assert "per-sample shape" in loss_msg
    assert "a single number" in checks["per_sample"]["message"]
    grad_msg = checks["gradient"]["message"]
    assert str(list(grad.T.shape)) in grad_msg and str(list(grad.shape)) in grad_msg
    assert "transposed" in grad_msg
    for check in result["checks"]:
        assert check["mismatches"] == check["size"] and check["max_abs_error"] is None
    assert_no_expected_values(result, ref)


@pytest.mark.parametrize(("loss", "params", "exercise", "reduction"), CASES, ids=IDS)
async def test_null_nan_and_missing_fail_their_check(client, loss, params, exercise, reduction):
    _, ref = await reference(client, loss, params, exercise, reduction)
    grad = np.asarray(ref["gradient"], dtype=object)
    index = tuple(s - 1 for s in grad.shape)
    grad[index] = None
    result = await grade(client, loss, params, exercise, reduction,
                         {"loss": ref["loss"], "gradient": grad.tolist()}, outputs=OUTS)
    checks = by_output(result)
    assert checks["loss"]["passed"]
    g = checks["gradient"]
    assert not g["passed"] and g["non_finite"] == 1 and g["mismatches"] == 1
    assert g["worst"] == {"index": list(index), "submitted": None}
    assert "NaN, null or Infinity" in g["message"] and str(list(index)) in g["message"]
    assert "the other values match" in g["message"]
    missing = checks["per_sample"]  # listed in outputs, absent from the submission
    assert not missing["passed"] and "missing" in missing["message"] and missing["shape"] is None
    assert result["max_score"] == 3 and result["score"] == 1

    # NaN and Infinity tokens are the student's answer: graded, not a 422
    body = json.dumps({"loss": loss, "params": params, "exercise": exercise, "reduction": reduction,
                       "submission": {"loss": float("nan"), "per_sample": None,
                                      "gradient": np.full(np.shape(ref["gradient"]), np.inf).tolist()}})
    assert "NaN" in body and "Infinity" in body
    response = await client.post("/v1/grade", content=body.encode(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    checks = by_output(response.json())
    assert not any(c["passed"] for c in checks.values())
    assert "NaN, null or Infinity" in checks["loss"]["message"]
    assert "missing" in checks["per_sample"]["message"]
    assert checks["gradient"]["non_finite"] == checks["gradient"]["size"]


async def test_forgot_to_average_and_factor_feedback(client):
    loss, params, exercise, reduction = CASES[0]  # mse on [4, 3]: per_sample has 4 values
    _, ref = await reference(client, loss, params, exercise, reduction)
    summed = float(np.sum(ref["per_sample"]))
    result = await grade(client, loss, params, exercise, reduction,
                         {"loss": summed, "gradient": scale(ref["gradient"], 4)})
    checks = by_output(result)
    assert checks["loss"]["message"].startswith("The loss is 4 times too large")
    assert "did you sum them instead of averaging?" in checks["loss"]["message"]
    assert checks["gradient"]["message"].startswith("The gradient is 4 times too large in every entry")
    assert "forget to divide by the batch size" in checks["gradient"]["message"]
    result = await grade(client, loss, params, exercise, reduction, {"gradient": scale(ref["gradient"], 12)})
    assert "mean over all 12 entries" in result["checks"][0]["message"]
    result = await grade(client, loss, params, exercise, reduction, {"gradient": scale(ref["gradient"], 0.5)})
    assert "factors of 2" in result["checks"][0]["message"]
    result = await grade(client, loss, params, exercise, reduction, {"gradient": scale(ref["gradient"], -4)})
    assert result["checks"][0]["message"].startswith("The gradient has the wrong sign and is 4 times too large")
    result = await grade(client, loss, params, exercise, reduction, {"gradient": scale(ref["gradient"], 1.37)})
    message = result["checks"][0]["message"]
    assert "same constant factor" in message and "1.37" not in message  # an odd factor is not spelled out
    assert_no_expected_values(result, ref, ["gradient"])


async def test_zeros_offset_transpose_and_generic_feedback(client):
    loss, params, exercise, reduction = CASES[0]
    _, ref = await reference(client, loss, params, exercise, reduction)
    grad = np.asarray(ref["gradient"])
    zeros = await grade(client, loss, params, exercise, reduction, {"gradient": np.zeros_like(grad).tolist()})
    assert "All values of the gradient are 0" in zeros["checks"][0]["message"]
    shifted = await grade(client, loss, params, exercise, reduction, {"gradient": (grad + 0.3).tolist()})
    assert "off by the same constant:" in shifted["checks"][0]["message"]
    noisy = grad.copy()
    noisy[1, 2] += 0.5
    noisy[3, 0] -= 0.2
    generic = await grade(client, loss, params, exercise, reduction, {"gradient": noisy.tolist()})
    check = generic["checks"][0]
    assert check["message"] == ("2 of 12 values of the gradient differ from the reference; the largest difference "
                                "is at [1, 2].")
    assert check["worst"] == {"index": [1, 2], "submitted": float(noisy[1, 2])}
    assert check["max_abs_error"] == pytest.approx(0.5)
    square = await grade(client, "mse", {}, {"seed": 8, "shape": [3, 3]}, reduction, {"gradient": [[0.0] * 3] * 3},
                         reveal_expected=True)
    g = np.asarray(square["expected"]["gradient"])
    transposed = await grade(client, "mse", {}, {"seed": 8, "shape": [3, 3]}, reduction, {"gradient": g.T.tolist()})
    assert "transposed" in transposed["checks"][0]["message"]


async def test_isclose_is_asymmetric_and_atol_governs_zeros(client):
    # mae of y_true 0, y_pred 1 is exactly 1.0; 0.9 is within rtol 0.1 of it
    base = {"loss": "mae", "y_true": [0.0], "y_pred": [1.0], "tolerance": {"rtol": 0.1, "atol": 0}}
    assert (await client.post("/v1/grade", json={**base, "submission": {"loss": 0.9}})).json()["passed"]
    # the same pair the other way round: expected 0.9, submitted 1.0 fails (|diff| > 0.1 * 0.9)
    other = {**base, "y_pred": [0.9], "submission": {"loss": 1.0}}
    assert not (await client.post("/v1/grade", json=other)).json()["passed"]
    # expected gradient 0 everywhere: only atol applies, and there is no relative error
    zero = {"loss": "mse", "y_true": [[1.0, 2.0]], "y_pred": [[1.0, 2.0]], "submission": {"gradient": [[1e-9, 0.0]]}}
    result = (await client.post("/v1/grade", json=zero)).json()
    assert result["passed"] and result["checks"][0]["max_rel_error"] is None
    result = (await client.post("/v1/grade", json={**zero, "tolerance": {"atol": 0}})).json()
    assert not result["passed"] and result["checks"][0]["max_abs_error"] == 1e-9


async def test_reveal_expected(client):
    loss, params, exercise, reduction = CASES[1]
    _, ref = await reference(client, loss, params, exercise, reduction)
    result = await grade(client, loss, params, exercise, reduction,
                         {"loss": 0.0, "gradient": scale(ref["gradient"], -1)}, reveal_expected=True)
    assert result["expected"] == {"loss": ref["loss"], "gradient": ref["gradient"]}
    worst = by_output(result)["gradient"]["worst"]
    assert worst["expected"] == ref["gradient"][worst["index"][0]][worst["index"][1]]
    assert by_output(result)["loss"]["worst"]["expected"] == ref["loss"]


async def test_unreadable_submissions_are_graded_not_rejected(client):
    base = {"loss": "mse", "y_true": [[0.0, 1.0], [1.0, 0.0]], "y_pred": [[0.5, 0.5], [0.5, 0.5]], "reveal_expected": False}
    result = (await client.post("/v1/grade", json={**base, "submission": {
        "loss": "0.25", "per_sample": [0.25, True], "gradient": [[0.25, -0.25], [0.25]]}})).json()
    checks = by_output(result)
    assert "loss could not be read: it is a string" in checks["loss"]["message"].lower()
    assert "per_sample[1] is true" in checks["per_sample"]["message"]
    assert "gradient[1] has 1 value where the first row at that depth has 2" in checks["gradient"]["message"]
    assert result["score"] == 0 and all(c["shape"] is None for c in result["checks"])
    result = (await client.post("/v1/grade", json={**base, "submission": {"gradient": {"a": 1}}})).json()
    assert "an object" in result["checks"][0]["message"]
    result = (await client.post("/v1/grade", json={**base, "submission": {"loss": [0.25]}})).json()
    assert "has shape [1] but a single number (shape []) is expected" in result["checks"][0]["message"]


async def test_hessian_and_reduction_none_and_float32(client):
    body = {"y_true": [[0.0, 1.0, 2.0]], "y_pred": [[0.5, 0.5, 1.0]], "reduction": "none", "dtype": "float32"}
    ref = (await client.post("/v1/losses/mse", json={**body, "outputs": ["loss", "per_sample", "gradient", "hessian"]})
           ).json()
    body["loss"] = "mse"
    result = (await client.post("/v1/grade", json={**body, "submission": {
        k: ref[k] for k in ("loss", "per_sample", "gradient", "hessian")}})).json()
    assert result["passed"] and result["max_score"] == 4 and result["meta"]["dtype"] == "float32"
    assert [c["output"] for c in result["checks"]] == ["loss", "per_sample", "gradient", "hessian"]
    assert by_output(result)["loss"]["expected_shape"] == [1]
    wrong = (await client.post("/v1/grade", json={**body, "submission": {"hessian": scale(ref["hessian"], 2)}})).json()
    assert "Hessian diagonal is twice too large" in wrong["checks"][0]["message"]


async def test_explicit_inputs_grade_like_the_exercise(client):
    loss, params, exercise, reduction = CASES[2]
    ex, ref = await reference(client, loss, params, exercise, reduction)
    submission = {"loss": ref["loss"], "gradient": scale(ref["gradient"], 2)}
    by_exercise = await grade(client, loss, params, exercise, reduction, submission)
    explicit = (await client.post("/v1/grade", json={
        "loss": loss, "params": params, "reduction": reduction, "y_true": ex["y_true"], "y_pred": ex["y_pred"],
        "sample_weight": ex["sample_weight"], "submission": submission})).json()
    assert by_exercise.pop("meta").pop("exercise") == {**exercise, "decimals": 4}
    explicit.pop("meta")
    assert by_exercise == explicit


async def test_gradescope_results(client):
    loss, params, exercise, reduction = CASES[1]
    _, ref = await reference(client, loss, params, exercise, reduction)
    body = {"loss": loss, "params": params, "exercise": exercise, "reduction": reduction,
            "submission": {"loss": ref["loss"], "gradient": scale(ref["gradient"], -1)}, "outputs": OUTS}
    response = await client.post("/v1/grade?format=gradescope", json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    results = response.json()
    assert set(results) == {"score", "output", "visibility", "tests"}
    assert results["score"] == 1.0 and results["visibility"] == "visible"
    assert "1 of 3 checks passed" in results["output"]
    assert [t["name"] for t in results["tests"]] == [f"{loss}: {o}" for o in OUTS]
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed") and test["max_score"] == 1.0
        assert test["score"] == (1.0 if test["status"] == "passed" else 0.0)
    assert [t["status"] for t in results["tests"]] == ["passed", "failed", "failed"]
    assert "wrong sign" in results["tests"][2]["output"]
    assert "missing" in results["tests"][1]["output"]
    text = json.dumps(results)
    for v in np.ravel(ref["gradient"]):
        assert repr(float(v)) not in text or len(repr(float(v))) <= 6

    options = {"visibility": "after_published", "name_prefix": "Q1 ", "max_score": {"loss": 2, "gradient": 3}}
    results = (await client.post("/v1/grade?format=gradescope", json={**body, "gradescope": options})).json()
    assert results["visibility"] == "after_published"
    assert all(t["visibility"] == "after_published" for t in results["tests"])
    assert [t["name"] for t in results["tests"]] == ["Q1 loss", "Q1 per_sample", "Q1 gradient"]
    assert [t["max_score"] for t in results["tests"]] == [2.0, 1.0, 3.0] and results["score"] == 2.0
    revealed = (await client.post("/v1/grade?format=gradescope", json={**body, "reveal_expected": True})).json()
    assert "expected" in revealed["tests"][2]["output"].lower()
    plain = (await client.post("/v1/grade?format=json", json=body)).json()
    assert plain["score"] == 1 and "tests" not in plain


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"submission": {}}, 422, "submission"),
    ({"submission": {"grad": [[1.0]]}}, 422, "submission.grad"),
    ({"submission": [1.0]}, 422, "submission"),
    ({}, 422, "submission"),
    ({"submission": {"loss": 1}, "tolerance": {"rtol": -1}}, 422, "tolerance.rtol"),
    ({"submission": {"loss": 1}, "tolerance": {"atol": "0.1"}}, 422, "tolerance.atol"),
    ({"submission": {"loss": 1}, "tolerance": {"rtol": 1e-3, "eps": 1}}, 422, "tolerance.eps"),
    ({"submission": {"loss": 1}, "outputs": []}, 422, "outputs"),
    ({"submission": {"loss": 1}, "outputs": ["jacobian"]}, 422, "outputs"),
    ({"submission": {"loss": 1}, "reveal_expected": "yes"}, 422, "reveal_expected"),
    ({"submission": {"loss": 1}, "gradescope": {"visibility": "public"}}, 422, "gradescope.visibility"),
    ({"submission": {"loss": 1}, "exercise": {"seed": 1, "shape": [2, 2]}}, 422, "y_true"),
    ({"submission": {"loss": 1}, "y_pred": None, "y_true": None}, 422, "y_pred"),
    ({"submission": {"loss": 1}, "y_pred": [[0.5, 1.5]]}, 422, "y_pred[0][1]"),
    ({"submission": {"loss": 1}, "y_pred": [[0.5, float("nan")]]}, 422, "y_pred[0][1]"),
    ({"submission": {"loss": 1}, "reduction": "auto"}, 422, "reduction"),
    ({"submission": {"loss": 1}, "params": {"delta": 1}}, 422, "delta"),
    ({"submission": {"hessian": [[1.0, 1.0]]}, "loss": "circle"}, 422, "submission.hessian"),
    ({"submission": {"loss": 1.0}, "loss": "circle", "outputs": ["loss", "hessian"]}, 422, "outputs"),
    ({"submission": {"loss": 1}, "loss": "bce_typo"}, 404, None),
])
async def test_bad_grade_requests(client, body, status, field):
    base = {"loss": "binary_crossentropy", "y_true": [[0.0, 1.0]], "y_pred": [[0.2, 0.8]]}
    request = {**base, **body}
    for k in [k for k, v in body.items() if v is None]:
        request.pop(k)
    response = await client.post("/v1/grade", content=json.dumps(request).encode(),
                                 headers={"content-type": "application/json"})
    problem = assert_problem(response, status, field)
    if status == 404:
        assert problem["errors"][0]["loc"] == ["loss"] and problem["suggestions"]


async def test_invalid_loss_request_is_the_same_problem_as_the_loss_route(client):
    inputs = {"y_true": [[0.0, 1.0]], "y_pred": [[0.2, 1.5]], "params": {"label_smoothing": 0.1}}
    direct = (await client.post("/v1/losses/binary_crossentropy", json=inputs)).json()
    graded = (await client.post("/v1/grade", json={"loss": "binary_crossentropy", **inputs,
                                                   "submission": {"loss": 1.0}})).json()
    assert {k: v for k, v in direct.items() if k != "instance"} == {k: v for k, v in graded.items() if k != "instance"}


async def test_format_query_and_exercise_conflicts(client):
    body = {"loss": "mse", "y_true": [1.0], "y_pred": [2.0], "submission": {"loss": 1.0}}
    assert_problem(await client.post("/v1/grade?format=xml", json=body), 422, "format")
    conflict = {"loss": "mse", "exercise": {"seed": 1, "sample_weight": True}, "sample_weight": 2.0,
                "submission": {"loss": 1.0}}
    assert_problem(await client.post("/v1/grade", json=conflict), 422, "sample_weight")
    assert_problem(await client.post("/v1/grade", json={"loss": "ctc", "exercise": {"seed": 1, "shape": [4, 3]},
                                                        "submission": {"loss": 1.0}}), 422, "exercise.shape")
    assert_problem(await client.post("/v1/grade", json={"loss": "mse", "exercise": {"seed": 1, "shape": [4, 3],
                                                                                    "decimals": -1},
                                                        "submission": {"loss": 1.0}}), 422, "exercise.decimals")


async def test_submission_counts_against_the_element_limit():
    async with make_client(max_elements=50) as c:
        body = {"loss": "mse", "y_true": [[0.0] * 4] * 4, "y_pred": [[1.0] * 4] * 4,
                "submission": {"gradient": [[0.0] * 4] * 4, "per_sample": [0.0] * 40}}
        assert (await c.post("/v1/grade", json={**body, "submission": {"gradient": [[0.0] * 4] * 4}})).status_code == 200
        assert_problem(await c.post("/v1/grade", json=body), 413, "submission")


async def test_large_gradient_is_graded_quickly(client):
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.normal(size=(400, 500)), rng.normal(size=(400, 500))
    grad = 2 * (y_pred - y_true) / y_true.size
    body = json.dumps({"loss": "mse", "y_true": y_true.tolist(), "y_pred": y_pred.tolist(),
                       "submission": {"gradient": (-grad).tolist()}, "tolerance": {"atol": 0}})
    start = time.perf_counter()
    response = await client.post("/v1/grade", content=body, headers={"content-type": "application/json"})
    elapsed = time.perf_counter() - start
    assert response.status_code == 200
    check = response.json()["checks"][0]
    assert re.search(r"wrong sign in 200000 of 200000 entries", check["message"])
    assert elapsed < 10, elapsed


async def test_openapi_documents_grading(client):
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for path, model, examples in (("/v1/grade", "GradeRequest", {"inputs sent", "exercise", "gradescope"}),
                                  ("/v1/exercises", "ExerciseRequest", {"categorical", "weighted", "ctc"})):
        post = spec["paths"][path]["post"]
        media = post["requestBody"]["content"]["application/json"]
        assert media["schema"]["$ref"] == f"#/components/schemas/{model}"
        assert set(media["examples"]) == examples
        assert "grading" in post["tags"]
        for code in ("400", "404", "413", "415", "422"):
            assert code in post["responses"]
        # raw-body routes: the request model is injected into components by service/app.py's openapi()
        assert model in schemas, f"{model} is not in components: add service.api.grading.REQUEST_MODELS to app.py"
    grade = spec["paths"]["/v1/grade"]["post"]
    assert [p["name"] for p in grade["parameters"]] == ["format"]
    response = grade["responses"]["200"]["content"]["application/json"]["schema"]
    assert {r["$ref"].rsplit("/", 1)[1] for r in response["anyOf"]} == {"GradeResponse", "GradescopeResults"}
    assert {"submission", "exercise", "tolerance", "reveal_expected", "outputs", "gradescope"} <= set(
        schemas["GradeRequest"]["properties"])
    assert "PCG64" in spec["paths"]["/v1/exercises"]["post"]["description"]
    refs = set(re.findall(r"#/components/schemas/([A-Za-z0-9_]+)", json.dumps(spec)))
    assert refs <= set(schemas)


async def test_the_graders_readme_shows_what_the_service_answers(client):
    """examples/graders/README.md: the student file of step 2, graded as step 3 says, gives the
    results.json printed there (its elided tests aside)."""
    from .conftest import REPO

    text = (REPO / "examples" / "graders" / "README.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    submission = json.loads(blocks[0])
    shown = json.loads(re.sub(r"^\s*\.\.\.,\s*$", "", blocks[1], flags=re.M))
    command = re.search(r"\./grade\.sh \S+ (\w+) (\d+) ([\d,]+) ", text)
    loss, seed, shape = command.group(1), int(command.group(2)), [int(n) for n in command.group(3).split(",")]
    response = await client.post("/v1/grade?format=gradescope", json={
        "loss": loss, "exercise": {"seed": seed, "shape": shape}, "submission": submission})
    assert response.status_code == 200, response.text
    actual = response.json()
    assert actual["score"] == shown["score"] and actual["output"] == shown["output"]
    by_name = {test["name"]: test for test in actual["tests"]}
    for test in shown["tests"]:
        assert by_name[test["name"]] == test
