"""The disagreements schemathesis found between /openapi.json and the server, one test each, and the
schema of every loss's parameters held to ``Param.validate`` (registry-driven)."""

from __future__ import annotations

import math
import re

import jsonschema_rs
import pytest

from service.api.openapi import params_component
from service.app import create_app
from service.config import Settings
from service.engine import all_losses, get_loss
from service.engine.errors import LossServiceError, UnknownLoss
from service.engine.params import bind

from .conftest import assert_problem

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings(executor="thread")).openapi()


def validator(spec: dict, component: str):
    """A JSON Schema validator of one component, its references resolved inside the document."""
    return jsonschema_rs.Draft202012Validator({"$ref": f"#/components/schemas/{component}",
                                               "components": spec["components"]})


# --- 405 ------------------------------------------------------------------------------------------

async def test_405_allow_lists_every_method_of_the_path(client):
    # GET and POST on /v1/losses/{name} are two routes; Starlette named only the first one's
    response = await client.put("/v1/losses/mse", json={})
    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    response = await client.delete("/v1/batch")
    assert response.headers["allow"] == "POST"


async def test_405_allow_matches_the_documented_methods(client, spec):
    for path, operations in spec["paths"].items():
        concrete = path.replace("{name}", "huber")
        response = await client.request("PATCH", concrete)
        assert response.status_code == 405, path
        documented = {m.upper() for m in operations}
        assert documented <= set(response.headers["allow"].split(", ")) <= documented | {"HEAD"}, path


# --- batch items ----------------------------------------------------------------------------------

async def test_a_non_object_batch_item_is_documented_and_answered_in_its_place(client, spec):
    # api.md: one bad item does not fail the others, so the schema accepts any item and says so
    body = {"requests": [[None, None], {"loss": "mse", "y_true": [[0.0]], "y_pred": [[1.0]]}, 7]}
    assert validator(spec, "BatchRequest").is_valid(body)
    response = await client.post("/v1/batch", json=body)
    assert response.status_code == 200
    first, second, third = response.json()["results"]
    assert first["error"]["status"] == 422 and first["error"]["errors"][0]["loc"] == ["requests", 0]
    assert second["loss"] == 1.0
    assert third["error"]["errors"][0]["loc"] == ["requests", 2]


async def test_batch_size_limit_is_in_the_schema(client, spec):
    limit = Settings().max_batch_items
    item = {"loss": "mse", "y_true": [0.0], "y_pred": [0.0]}
    assert validator(spec, "BatchRequest").is_valid({"requests": [item] * limit})
    assert not validator(spec, "BatchRequest").is_valid({"requests": [item] * (limit + 1)})
    assert_problem(await client.post("/v1/batch", json={"requests": [item] * (limit + 1)}), 413, "requests")


# --- loss parameters ------------------------------------------------------------------------------

def _candidates(param) -> list:
    """Values around each declared parameter's type and interval, valid and not."""
    values = [param.default, None, True, False, "0.5", [], {}, 0, 1, -1, 0.5, -0.5, 2.5, 1e308, 1e309 // 1,
              2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**400, [0], [1, 1], [0, 1.0], [0.5, 2.0], [1, "a"], [[0]]]
    if param.interval is not None:
        for bound in (param.interval.low, param.interval.high):
            if math.isfinite(bound):
                values += [bound, bound - 1e-9, bound + 1e-9, [bound], [bound + 1e-9, bound - 1e-9]]
    return values


def _bind_accepts(loss, params: dict) -> bool:
    try:
        bind(loss.params, params)
    except LossServiceError:
        return False
    return True


@pytest.mark.parametrize("loss", all_losses(), ids=lambda loss: loss.name)
def test_each_loss_params_schema_is_exactly_what_the_service_accepts(spec, loss):
    model = spec["components"]["schemas"][params_component(loss)]
    assert set(model["properties"]) == {p.name for p in loss.params}
    assert model["additionalProperties"] is False
    check = validator(spec, params_component(loss))
    for param in loss.params:
        assert model["properties"][param.name]["default"] == param.default
        for value in _candidates(param):
            params = {param.name: value}
            assert check.is_valid(params) == _bind_accepts(loss, params), (param.name, value)
    assert check.is_valid({}) and _bind_accepts(loss, {})
    assert not check.is_valid({"no_such_parameter": 1}) and not _bind_accepts(loss, {"no_such_parameter": 1})
    for example in loss.examples:
        assert check.is_valid(example.get("params", {})), example


async def test_exercise_params_are_paired_with_the_named_loss(client, spec):
    # the schema used to allow any params for any loss; the server refuses another loss's
    body = {"loss": "ctc", "params": {"delta": 0.5}, "seed": 1}
    assert not validator(spec, "ExerciseRequest").is_valid(body)
    assert_problem(await client.post("/v1/exercises", json=body), 422, "params")
    body = {"loss": "Huber_Loss", "params": {"delta": 0.5}, "seed": 1}
    assert validator(spec, "ExerciseRequest").is_valid(body)
    assert (await client.post("/v1/exercises", json=body)).status_code == 200


def test_loss_name_patterns_take_what_the_registry_takes(spec):
    by_loss = {v["title"]: re.compile(v["properties"]["loss"]["pattern"])
               for v in spec["components"]["schemas"]["LossAndItsParams"]["oneOf"]}
    names = [n for loss in all_losses() for n in (loss.name, *loss.aliases)]
    tries = [*names, *(n.upper() for n in names), *(f" {n.replace('_', '-')}_" for n in names),
             *(n[:-1] for n in names), *(n + "s" for n in names), "", "-", "mse2", "m s e", "ms_e", "crossentropy"]
    for name in tries:
        try:
            named = [get_loss(name).name]
        except UnknownLoss:
            named = []
        assert [title for title, variant in by_loss.items() if variant.fullmatch(name)] == named, name


# --- grading and exercise bodies ------------------------------------------------------------------

GRADE_BODIES = {
    "inputs": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {"loss": 1.0}}, True),
    "exercise": ({"loss": "mse", "exercise": {"seed": 1, "shape": [2, 2]}, "submission": {"loss": 1.0}}, True),
    "neither": ({"loss": "mse", "submission": {"loss": 1.0}}, False),
    "both": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "exercise": {"seed": 1},
              "submission": {"loss": 1.0}}, False),
    "two sample weights": ({"loss": "mse", "exercise": {"seed": 1, "sample_weight": True}, "sample_weight": 1.0,
                            "submission": {"loss": 1.0}}, False),
    "nothing to grade": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {}}, False),
    "outputs listed": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {}, "outputs": ["loss"]},
                       True),
    "another loss's params": ({"loss": "mse", "params": {"delta": 1.0}, "y_true": [0.0], "y_pred": [1.0],
                               "submission": {"loss": 1.0}}, False),
    "a tolerance beyond float64": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {"loss": 1.0},
                                    "tolerance": {"rtol": 10**309}}, False),
    "a string submitted": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {"loss": "one"}}, True),
    "a hessian of mse": ({"loss": "mse", "y_true": [0.0], "y_pred": [1.0], "submission": {"hessian": [2.0]}}, True),
    "a hessian of circle": ({"loss": "Circle", "y_true": [0, 0], "y_pred": [[1.0, 0.0], [0.0, 1.0]],
                             "submission": {"hessian": [[0.0, 0.0], [0.0, 0.0]]}}, False),
    "a hessian of ctc listed": ({"loss": "ctc", "exercise": {"seed": 1, "shape": [2, 6, 4]}, "submission": {},
                                 "outputs": ["loss", "hessian"]}, False),
    "ctc's loss listed": ({"loss": "ctc", "exercise": {"seed": 1, "shape": [2, 6, 4]}, "submission": {"hessian": 1},
                           "outputs": ["loss"]}, True),
}


@pytest.mark.parametrize("case", GRADE_BODIES, ids=str)
async def test_grade_body_schema_agrees_with_the_server(client, spec, case):
    body, valid = GRADE_BODIES[case]
    assert validator(spec, "GradeRequest").is_valid(body) == valid
    response = await client.post("/v1/grade", json=body)
    assert (response.status_code == 200) == valid, response.text


async def test_integral_floats_are_integers_as_json_schema_says(client, spec):
    body = {"loss": "mse", "seed": 7.0, "shape": [2.0, 3], "decimals": 2.0}
    assert validator(spec, "ExerciseRequest").is_valid(body)
    response = await client.post("/v1/exercises", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["shape"] == [2, 3] and response.json()["seed"] == 7
    for not_an_integer in ({"seed": 7.5}, {"seed": "7"}, {"shape": [2, True]}):
        bad = {**body, **not_an_integer}
        assert not validator(spec, "ExerciseRequest").is_valid(bad)
        assert_problem(await client.post("/v1/exercises", json=bad), 422)


async def test_exercise_shape_rank_limit_is_in_the_schema(client, spec):
    rank = Settings().max_rank
    body = {"loss": "mse", "seed": 1, "shape": [1] * (rank + 1)}
    assert not validator(spec, "ExerciseRequest").is_valid(body)
    assert_problem(await client.post("/v1/exercises", json=body), 422, "shape")


# --- arrays ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("y_pred, valid", [
    ([[0.5, 0.5]], True), (0.5, True), ([], False), ([[]], False), (["0.5"], False), ([True], False),
    ([[[[[[[[[0.5]]]]]]]]], False), ([[[[[[[[0.5]]]]]]]], True), (None, False)], ids=str)
async def test_array_schema_agrees_with_the_server(client, spec, y_pred, valid):
    body = {"y_true": y_pred if valid else [[0.5, 0.5]], "y_pred": y_pred}
    assert validator(spec, "LossRequest").is_valid(body) == valid
    response = await client.post("/v1/losses/mse", json=body)
    assert (response.status_code == 200) == valid, response.text


async def test_what_json_schema_cannot_say_has_its_own_problem_type(client, spec):
    # rows of different lengths and an axis y_pred does not have are shape problems, not field problems
    ragged = {"y_true": [[1.0, 2.0], [3.0]], "y_pred": [[1.0, 2.0], [3.0, 4.0]]}
    assert validator(spec, "LossRequest").is_valid(ragged)
    assert assert_problem(await client.post("/v1/losses/mse", json=ragged), 422, "y_true")["type"] == \
        "/problems/shape-mismatch"
    axis = {"y_true": [[0, 1]], "y_pred": [[0.5, 0.5]], "params": {"axis": 5}}
    assert validator(spec, "LossRequest").is_valid(axis)
    assert assert_problem(await client.post("/v1/losses/categorical_crossentropy", json=axis), 422,
                          "params.axis")["type"] == "/problems/shape-mismatch"
    alpha = {"y_true": [[0, 1]], "y_pred": [[0.5, 0.5]], "params": {"alpha": [0.2, 0.3, 0.5]}}
    assert assert_problem(await client.post("/v1/losses/categorical_focal_crossentropy", json=alpha), 422,
                          "params.alpha")["type"] == "/problems/shape-mismatch"
