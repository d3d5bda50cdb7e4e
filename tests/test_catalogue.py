"""Stored catalogue examples are what the live API answers, for every loss, to a few ulp
(``helpers.assert_response_close``: the last bit may differ between CPUs and vector-math backends)."""

from __future__ import annotations

import pytest

from service.catalogue import stored_examples
from service.engine import all_losses

from .helpers import assert_response_close

pytestmark = pytest.mark.anyio

STORED = stored_examples()
PAIRS = [(name, i, ex) for name, examples in STORED.items() for i, ex in enumerate(examples)]


def test_every_loss_has_stored_examples_matching_its_declaration():
    for loss in all_losses():
        assert loss.examples, f"{loss.name} declares no example"
        assert [e["request"] for e in STORED.get(loss.name, [])] == list(loss.examples), (
            f"service/data/examples.json is stale for {loss.name}: run python scripts/generate_examples.py")
    assert set(STORED) == {loss.name for loss in all_losses()}


@pytest.mark.parametrize("name,index,example", PAIRS, ids=[f"{n}-{i}" for n, i, _ in PAIRS])
async def test_stored_example_is_what_the_api_returns(client, name, index, example):
    response = await client.post(f"/v1/losses/{name}", json=example["request"])
    assert response.status_code == 200, response.text
    assert_response_close(response.json(), example["response"], where=f"{name}[{index}]")


async def test_detail_serves_the_stored_examples(client):
    for loss in all_losses():
        data = (await client.get(f"/v1/losses/{loss.name}")).json()
        assert data["examples"] == STORED[loss.name]


def test_the_generation_script_reproduces_the_stored_examples():
    """scripts/generate_examples.py (run after changing a loss) still runs and writes what is stored."""
    import runpy

    from .conftest import REPO

    script = runpy.run_path(str(REPO / "scripts" / "generate_examples.py"), run_name="generate_examples")
    built, stored = script["build"](), stored_examples()
    assert list(built) == list(stored)
    for name, examples in built.items():
        assert [e["request"] for e in examples] == [e["request"] for e in stored[name]], name
        for i, (made, kept) in enumerate(zip(examples, stored[name], strict=True)):
            assert_response_close(made["response"], kept["response"], where=f"{name}[{i}]")


def test_the_comparison_allows_a_few_ulp_and_nothing_more():
    import numpy as np

    stored = STORED["mean_squared_error"][0]["response"]
    nudged = {**stored, "loss": float(np.nextafter(stored["loss"], np.inf))}  # 1 ulp: another CPU's rounding
    assert_response_close(nudged, stored)
    far = {**stored, "loss": stored["loss"] * (1 + 1e-13)}  # hundreds of ulp: a real change
    with pytest.raises(AssertionError, match="ulp"):
        assert_response_close(far, stored)
    with pytest.raises(AssertionError, match="meta"):
        assert_response_close({**stored, "meta": {**stored["meta"], "reduction": "sum"}}, stored)
    with pytest.raises(AssertionError, match="keys"):
        assert_response_close({k: v for k, v in stored.items() if k != "gradient"}, stored)
