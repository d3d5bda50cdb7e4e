"""Regenerate service/data/examples.json: every loss's example requests with their responses.

Run after adding or changing a loss or its examples:  python scripts/generate_examples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.catalogue import EXAMPLES_PATH
from service.engine import all_losses
from service.transport.call import Limits
from service.transport.json import loss_response

LIMITS = Limits(max_elements=10_000_000, max_rank=8, max_batch_items=64, max_work=100_000_000)


def build() -> dict[str, list[dict]]:
    """Every registered loss's example requests with the responses the service gives them now."""
    out = {}
    for loss in all_losses():
        examples = []
        for request in loss.examples:
            body = json.dumps(request).encode()
            answer = loss_response(loss.name, body, LIMITS).run()
            examples.append({"request": request, "response": json.loads(answer.body)})
        out[loss.name] = examples
    return out


def main() -> None:
    out = build()
    EXAMPLES_PATH.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {sum(len(v) for v in out.values())} examples of {len(out)} losses to {EXAMPLES_PATH.name}")


if __name__ == "__main__":
    main()
