"""Shared fixtures: the conformance files beside the repository and an in-process client."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LOSS_SERVICE_SHARED_DIR", REPO.parent / "shared"))
CONFORMANCE = SHARED / "conformance"


def load_conformance(name: str) -> list[dict]:
    path = CONFORMANCE / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the tests read the shared conformance cases from ../shared beside the "
            f"repository (or LOSS_SERVICE_SHARED_DIR).")
    return json.loads(path.read_text())["cases"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
