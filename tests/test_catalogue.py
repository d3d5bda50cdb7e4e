"""Stored catalogue examples are exactly what the live API answers, for every loss."""

from __future__ import annotations

import pytest

from service.catalogue import stored_examples
from service.engine import all_losses

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
    assert response.json() == example["response"]


async def test_detail_serves_the_stored_examples(client):
    for loss in all_losses():
        data = (await client.get(f"/v1/losses/{loss.name}")).json()
        assert data["examples"] == STORED[loss.name]


def test_the_generation_script_reproduces_the_stored_examples():
    """scripts/generate_examples.py (run after changing a loss) still runs and writes what is stored."""
    import runpy

    from .conftest import REPO

    script = runpy.run_path(str(REPO / "scripts" / "generate_examples.py"), run_name="generate_examples")
    assert script["build"]() == stored_examples()
