"""Catalogue entries and their stored, runnable examples.

Each loss declares example request bodies beside its code (``Loss.examples``); their responses
are generated once by ``scripts/generate_examples.py`` into ``service/data/examples.json`` and
served as stored. ``tests/test_catalogue.py`` replays every stored example against the live API,
so the documentation page can never show a response the service would not give.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .engine import all_losses, get_loss

EXAMPLES_PATH = Path(__file__).parent / "data" / "examples.json"


@lru_cache
def stored_examples() -> dict[str, list[dict[str, Any]]]:
    if not EXAMPLES_PATH.exists():
        return {}
    return json.loads(EXAMPLES_PATH.read_text())


def page_path(name: str) -> str:
    """A loss's catalogue page (service/api/site.py serves it; /docs, /redoc and grader feedback link it)."""
    return f"/catalogue/{quote(name, safe='')}"


@lru_cache
def entries() -> list[dict[str, Any]]:
    return [loss.describe() for loss in all_losses()]


def detail(name: str) -> dict[str, Any]:
    loss = get_loss(name)
    return {**loss.describe(), "examples": stored_examples().get(loss.name, [])}
