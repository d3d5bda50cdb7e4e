"""Regenerate the curve pictures the README shows (docs/curves/*.svg), with the service's own code.

They are the static SVG of ``GET /v1/losses/{name}/curve?format=svg`` (service.transport.curves), so
the README shows exactly what the route answers; ``tests/test_readme_curves.py`` fails when a committed
picture no longer matches the route. Run after changing a loss, a curve design or the SVG renderer:

    python scripts/render_readme_curves.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.transport.curves import curve_plan

OUT = Path(__file__).resolve().parents[1] / "docs" / "curves"

# file name -> (loss, query items, overlays): the articles' comparisons
PICTURES: dict[str, tuple[str, list[tuple[str, str]], str | None]] = {
    "regression.svg": ("mean_squared_error", [], "mean_absolute_error,huber,log_cosh"),
    "binary_crossentropy.svg": ("binary_crossentropy", [], "binary_focal_crossentropy"),
    "hinge.svg": ("hinge", [], "squared_hinge,torch.soft_margin_loss"),
}


def render(loss: str, items: list[tuple[str, str]], overlays: str | None) -> bytes:
    return curve_plan(loss, items, "svg", 201, overlays, None, None).run().body


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for file, (loss, items, overlays) in PICTURES.items():
        (OUT / file).write_bytes(render(loss, items, overlays) + b"\n")
        print(f"wrote {OUT / file}")


if __name__ == "__main__":
    main()
