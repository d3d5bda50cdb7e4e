"""POST /v1/exercises: seeded inputs in every registered loss's domain, pinned to exact numbers.

The generator is part of the API (the same request gives the same numbers in every release), so
these tests pin exact values for several (loss, seed) pairs and re-derive some from the documented
algorithm with NumPy alone: changing the algorithm must fail here.
"""

from __future__ import annotations

import numpy as np
import pytest

from service.engine import all_losses

from .conftest import assert_problem, make_client
from .helpers import post

pytestmark = pytest.mark.anyio

LOSSES = [loss.name for loss in all_losses()]


def _shapes(loss) -> list[tuple[int, ...]]:
    return list(getattr(loss, "test_shapes", (loss.sample_shape,)))


# (request, the exact y_true, y_pred and sample_weight it must give)
PINNED = [
    ({"loss": "categorical_crossentropy", "shape": [4, 3], "seed": 42},
     {"y_true": [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0]],
      "y_pred": [[0.4393, 0.5312, 0.0295], [0.1272, 0.5318, 0.341], [0.2575, 0.1116, 0.6309],
                 [0.3438, 0.1687, 0.4875]]}),
    ({"loss": "huber", "params": {"delta": 0.5}, "shape": [2, 3], "seed": 7, "sample_weight": True},
     {"y_true": [[0.0012, 0.2987, -0.2741], [-0.8906, -0.4547, -0.9916]],
      "y_pred": [[0.0601, 1.3402, -0.4922], [-0.6205, 0.4898, 0.3569]], "sample_weight": [0.8823, 1.1676]}),
    ({"loss": "ctc", "shape": [2, 6, 3], "seed": 1, "decimals": 3},
     {"y_true": [[2, 2, 0], [1, 2, 0]],
      "y_pred": [[[1.811, 0.893, -1.074], [1.162, 0.729, 0.588], [0.057, 1.093, -1.473], [-0.326, -0.964, 1.198],
                  [0.079, -0.585, -1.564], [-0.514, 0.016, -0.551]],
                 [[2.588, 2.013, -5.422], [-3.778, -0.35, -0.844], [0.427, 0.435, 4.236], [-2.224, -0.755, 4.086],
                  [1.293, 1.326, -1.028], [-3.296, 0.335, 0.218]]]}),
    ({"loss": "circle", "shape": [4, 2], "seed": 3},
     {"y_true": [1, 1, 0, 0], "y_pred": [[0.593, -0.8052], [-0.9028, -0.43], [-0.9935, -0.1141], [-0.252, 0.9677]]}),
    ({"loss": "sparse_categorical_crossentropy", "params": {"from_logits": True}, "shape": [3, 4], "seed": 0,
      "decimals": 2},
     {"y_true": [3, 2, 2],
      "y_pred": [[1.28, 0.21, -1.07, 0.72], [2.61, 1.89, -1.41, -2.53], [-1.25, 0.08, -4.65, -0.44]]}),
    ({"loss": "poisson", "shape": [2, 2], "seed": 123, "decimals": None},
     {"y_true": [[1, 1], [2, 3]],
      "y_pred": [[0.8103973430995097, 2.4903006286824927], [0.7199125937877768, 2.250254451480658]]}),
    ({"loss": "sparse_categorical_crossentropy", "params": {"axis": 0}, "shape": [3, 2], "seed": 5},
     {"y_true": [2, 2], "y_pred": [[0.1035, 0.6481], [0.3037, 0.2322], [0.5928, 0.1197]]}),
    ({"loss": "kl_divergence", "shape": [2, 3], "seed": 2024, "decimals": 3},
     {"y_true": [[0.252, 0.465, 0.283], [0.223, 0.146, 0.631]],
      "y_pred": [[0.233, 0.164, 0.603], [0.471, 0.422, 0.107]]}),
]


@pytest.mark.parametrize(("request_body", "pinned"), PINNED, ids=[f"{r['loss']}-{r['seed']}" for r, _ in PINNED])
async def test_pinned_numbers(client, request_body, pinned):
    response = await client.post("/v1/exercises", json=request_body)
    assert response.status_code == 200, response.text
    body = response.json()
    for field, value in pinned.items():
        assert body[field] == value, field  # exact: no tolerance
    assert ("sample_weight" in body) == ("sample_weight" in pinned)
    assert body["seed"] == request_body["seed"] and body["shape"] == request_body["shape"]
    assert body["decimals"] == request_body.get("decimals", 4)


async def test_documented_algorithm_rederived_with_numpy(client):
    """The module docstring's recipe, written out with NumPy only, gives the same numbers."""
    rng = np.random.Generator(np.random.PCG64(7))
    y_true = np.round(rng.normal(0.0, 1.0, (2, 3)), 4)  # kind real
    y_pred = np.round(rng.normal(0.0, 1.0, (2, 3)), 4)
    weights = np.round(rng.uniform(0.5, 2.0, (2,)), 4)  # per-sample shape of huber on (2, 3)
    body = (await client.post("/v1/exercises", json={"loss": "huber", "shape": [2, 3], "seed": 7,
                                                     "sample_weight": True})).json()
    assert body["y_true"] == y_true.tolist() and body["y_pred"] == y_pred.tolist()
    assert body["sample_weight"] == weights.tolist()

    rng = np.random.Generator(np.random.PCG64(11))
    labels = rng.integers(0, 5, (3,))  # categorical_hinge: kind one_hot over 5 classes, then real
    y_pred = np.round(rng.normal(0.0, 1.0, (3, 5)), 2)
    body = (await client.post("/v1/exercises", json={"loss": "categorical_hinge", "shape": [3, 5], "seed": 11,
                                                     "decimals": 2})).json()
    assert body["y_true"] == np.eye(5)[labels].astype(int).tolist() and body["y_pred"] == y_pred.tolist()
    rng = np.random.Generator(np.random.PCG64(11))
    y_true = rng.integers(0, 2, (3, 5))  # binary_crossentropy: kinds binary, then probability
    y_pred = np.round(rng.uniform(0.05, 0.95, (3, 5)), 2)
    body = (await client.post("/v1/exercises", json={"loss": "binary_crossentropy", "shape": [3, 5], "seed": 11,
                                                     "decimals": 2})).json()
    assert body["y_true"] == y_true.tolist() and body["y_pred"] == y_pred.tolist()


@pytest.mark.parametrize("name", LOSSES)
async def test_every_loss_is_deterministic_and_in_its_domain(client, name):
    """For every registered loss (later ones included): same request, same bytes; a different seed,
    different numbers; and the inputs pass the loss's own checks at several shapes and roundings."""
    loss = next(l for l in all_losses() if l.name == name)
    weighted = loss.reducer.sample_weight  # torch.* losses take no sample_weight: a 422 (below)
    if not weighted:
        refused = await client.post("/v1/exercises", json={"loss": name, "seed": 0, "sample_weight": True})
        assert refused.status_code == 422 and "sample_weight" in refused.text, refused.text
    for shape in _shapes(loss):
        for decimals in (4, 2, None):
            for seed in (0, 1, 2**63 + 5):
                req = {"loss": name, "shape": list(shape), "seed": seed, "decimals": decimals, "sample_weight": weighted}
                first = await client.post("/v1/exercises", json=req)
                assert first.status_code == 200, first.text
                again = await client.post("/v1/exercises", json=req)
                assert again.content == first.content
                ex = first.json()
                assert np.asarray(ex["y_pred"]).shape == tuple(shape)
                if decimals is not None:
                    for field in ("y_true", "y_pred", "sample_weight")[:3 if weighted else 2]:
                        arr = np.asarray(ex[field], dtype=float)
                        assert np.array_equal(arr, np.round(arr, decimals)), (field, decimals)
                computed = await client.post(f"/v1/losses/{name}", json={
                    "y_true": ex["y_true"], "y_pred": ex["y_pred"], "sample_weight": ex.get("sample_weight"),
                    "params": ex["params"], "outputs": ["loss", "per_sample", "gradient"]})
                assert computed.status_code == 200, (req, computed.text)
                if weighted:
                    assert np.asarray(ex["sample_weight"]).shape == np.asarray(computed.json()["per_sample"]).shape
        other = await client.post("/v1/exercises", json={"loss": name, "seed": 1})
        base = await client.post("/v1/exercises", json={"loss": name, "seed": 0})
        assert other.json()["y_pred"] != base.json()["y_pred"]
        assert base.json()["shape"] == list(loss.sample_shape)


@pytest.mark.parametrize("name", [l.name for l in all_losses() if any(p.name == "from_logits" for p in l.params)])
async def test_from_logits_draws_logits(client, name):
    ex = (await client.post("/v1/exercises", json={"loss": name, "params": {"from_logits": True}, "seed": 3,
                                                   "shape": [50, 4]})).json()
    y_pred = np.asarray(ex["y_pred"])
    assert y_pred.min() < 0 and y_pred.max() > 1  # logits, not probabilities
    assert (await client.post(f"/v1/losses/{name}", json={
        "y_true": ex["y_true"], "y_pred": ex["y_pred"], "params": ex["params"]})).status_code == 200


async def test_domains_by_kind(client):
    async def ex(loss, shape, seed=9, **extra):
        return (await client.post("/v1/exercises", json={"loss": loss, "shape": shape, "seed": seed, **extra})).json()

    cce = await ex("categorical_crossentropy", [20, 5])
    y_true, y_pred = np.asarray(cce["y_true"]), np.asarray(cce["y_pred"])
    assert set(np.unique(y_true)) <= {0, 1} and np.all(y_true.sum(-1) == 1)  # one-hot rows
    assert np.all(y_pred >= 0) and np.allclose(y_pred.sum(-1), 1.0, atol=1e-12)  # probability rows
    scce = await ex("sparse_categorical_crossentropy", [20, 5])
    labels = np.asarray(scce["y_true"])
    assert labels.shape == (20,) and labels.dtype.kind == "i" and labels.min() >= 0 and labels.max() < 5
    pois = await ex("poisson", [10, 3])
    assert np.all(np.asarray(pois["y_pred"]) > 0) and np.asarray(pois["y_true"]).dtype.kind == "i"
    hinge = await ex("hinge", [10, 3])
    assert set(np.unique(hinge["y_true"])) == {-1, 1}
    circle = await ex("circle", [7, 4])
    assert np.allclose(np.linalg.norm(np.asarray(circle["y_pred"]), axis=1), 1.0, atol=1e-3)
    ctc = await ex("ctc", [5, 8, 4])
    tokens = np.asarray(ctc["y_true"])
    assert tokens.shape == (5, 4) and tokens.min() >= 0 and tokens.max() < 4
    for row in tokens:  # labels first, then trailing 0 padding
        n = np.count_nonzero(row)
        assert n >= 1 and np.all(row[:n] > 0) and np.all(row[n:] == 0)


async def test_axis_param_moves_the_class_axis(client):
    ex = (await client.post("/v1/exercises", json={"loss": "categorical_crossentropy", "params": {"axis": 0},
                                                   "shape": [3, 6], "seed": 4})).json()
    assert np.all(np.asarray(ex["y_true"]).sum(axis=0) == 1)  # one-hot along axis 0
    assert np.allclose(np.asarray(ex["y_pred"]).sum(axis=0), 1.0)


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"loss": "ctc", "shape": [4, 3], "seed": 1}, 422, "shape"),
    ({"loss": "circle", "shape": [6], "seed": 1}, 422, "shape"),
    ({"loss": "mse", "shape": [0, 3], "seed": 1}, 422, "shape"),
    ({"loss": "mse", "shape": [], "seed": 1}, 422, "shape"),
    ({"loss": "mse", "shape": [1] * 9, "seed": 1}, 422, "shape"),
    ({"loss": "mse", "shape": [3.5], "seed": 1}, 422, "shape"),
    ({"loss": "mse", "shape": [100000, 100], "seed": 1}, 413, "shape"),
    ({"loss": "mse", "shape": [4, 3], "seed": -1}, 422, "seed"),
    ({"loss": "mse", "shape": [4, 3], "seed": True}, 422, "seed"),
    ({"loss": "mse", "shape": [4, 3], "seed": 2**64}, 422, "seed"),
    ({"loss": "mse", "shape": [4, 3]}, 422, "seed"),
    ({"loss": "mse", "seed": 1, "decimals": 16}, 422, "decimals"),
    ({"loss": "mse", "seed": 1, "sample_weight": "yes"}, 422, "sample_weight"),
    ({"loss": "huber", "seed": 1, "params": {"beta": 1}}, 422, "beta"),
    ({"loss": "sparse_categorical_crossentropy", "seed": 1, "params": {"axis": 5}}, 422, "params.axis"),
    ({"loss": "mse", "seed": 1, "y_pred": [1.0]}, 422, "y_pred"),
    ({"seed": 1}, 422, "loss"),
    ({"loss": "msee", "seed": 1}, 404, None),
])
async def test_bad_exercise_requests(client, body, status, field):
    problem = assert_problem(await client.post("/v1/exercises", json=body), status, field)
    if status == 404:
        assert problem["suggestions"] and problem["errors"][0]["loc"] == ["loss"]


async def test_exercise_limits_follow_settings():
    async with make_client(max_elements=100) as c:
        assert_problem(await c.post("/v1/exercises", json={"loss": "mse", "shape": [10, 6], "seed": 1}), 413, "shape")
        assert (await c.post("/v1/exercises", json={"loss": "mse", "shape": [10, 5], "seed": 1})).status_code == 200


async def test_not_json_and_not_an_object(client):
    assert_problem(await client.post("/v1/exercises", content=b"{", headers={"content-type": "application/json"}),
                   400)
    assert_problem(await client.post("/v1/exercises", json=[1, 2]), 422, "body")


@pytest.mark.parametrize("path, body", [
    ("/v1/exercises", {"loss": "l2_penalty", "params": {"factor": 1e308}, "seed": 1, "shape": [4, 3]}),
    ("/v1/grade", {"loss": "l2_penalty", "params": {"factor": 1e308}, "exercise": {"seed": 1, "shape": [4, 3]},
                   "submission": {"loss": 1.0}}),
])
def test_an_exercise_whose_result_overflows_blames_the_parameters(path, body):
    """A factor that overflows the result is a non-finite-result at params (a type the OpenAPI document lists
    as inexpressible), not an invalid-input about the drawn inputs' decimals."""
    r = post(path, body)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "/problems/non-finite-result" and r.json()["errors"][0]["loc"] == ["params"]
    assert "smaller parameters" in r.json()["detail"]
