"""The README's curve pictures (docs/curves/*.svg) are what GET /v1/losses/{name}/curve?format=svg answers now.

They are written by scripts/render_readme_curves.py. The comparison is token by token: the text between
numbers must be equal and every number within 0.011 of the committed one, because the pictures are
compared across machines (the coordinates are pixels printed with two decimals, and a last-bit
difference in a float can move one across a rounding boundary: never bit for bit)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scripts.render_readme_curves import OUT, PICTURES, render

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
PIXEL_TOLERANCE = 0.011


def tokens(text: str) -> tuple[list[str], list[float]]:
    return NUMBER.split(text), [float(n) for n in NUMBER.findall(text)]


def differences(committed: str, now: str) -> list[str]:
    (words_a, nums_a), (words_b, nums_b) = tokens(committed), tokens(now)
    if words_a != words_b or len(nums_a) != len(nums_b):
        changed = next((i for i, (a, b) in enumerate(zip(words_a, words_b)) if a != b), min(len(words_a), len(words_b)))
        return [f"text differs near {''.join(words_a[max(0, changed - 2):changed + 2])[:200]!r}"]
    return [f"number {i}: {a} committed, {b} now" for i, (a, b) in enumerate(zip(nums_a, nums_b))
            if abs(a - b) > PIXEL_TOLERANCE]


@pytest.mark.parametrize("file", sorted(PICTURES))
def test_committed_picture_is_what_the_route_draws(file):
    loss, items, overlays = PICTURES[file]
    committed = (OUT / file).read_text()
    ET.fromstring(committed)  # well-formed XML
    found = differences(committed.rstrip("\n"), render(loss, items, overlays).decode())
    assert not found, (f"docs/curves/{file} is out of date ({found[:3]}): run python scripts/render_readme_curves.py")


@pytest.mark.parametrize("file", sorted(PICTURES))
def test_readme_shows_the_picture(file):
    assert f"(docs/curves/{file})" in (ROOT / "README.md").read_text()


def test_the_comparison_catches_a_moved_point():
    loss, items, overlays = PICTURES["regression.svg"]
    now = render(loss, items, overlays).decode()
    # one polyline vertex moved by 0.05 px is a difference; reprinting the same picture is not
    moved = re.sub(r'points="(\d+\.\d+)', lambda m: f'points="{float(m.group(1)) + 0.05:.2f}', now, count=1)
    assert differences(now, now) == []
    assert differences(now, moved)
