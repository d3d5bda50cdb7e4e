#!/usr/bin/env python3
"""Grade a student's loss outputs with the loss service and write Gradescope's results.json.

Usage: grade.py SERVICE_URL LOSS SEED SHAPE STUDENT_OUTPUT RESULTS_JSON [options]

    python3 grade.py http://127.0.0.1:8000 categorical_crossentropy 42 4,3 output.json results.json

STUDENT_OUTPUT is a JSON file {"loss": ..., "per_sample": [...], "gradient": [[...]]} computed on the
exercise the student was given (POST /v1/exercises with the same loss, params, seed and shape).
Standard library only (Python 3.8+). Exit status: 0 graded; 1 results.json written with a score of
0 and the reason (unreadable file, service error or unreachable); 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request

OUTPUTS = ("loss", "per_sample", "gradient", "hessian")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="the service, e.g. http://127.0.0.1:8000")
    p.add_argument("loss", help="a loss name or alias, e.g. categorical_crossentropy")
    p.add_argument("seed", type=int, help="the exercise's seed")
    p.add_argument("shape", help="the exercise's y_pred shape, e.g. 4,3")
    p.add_argument("student_output", help="the student's JSON file")
    p.add_argument("results", help="where to write results.json")
    p.add_argument("--params", default="{}", help="the loss's params as a JSON object (default {})")
    p.add_argument("--outputs", default="loss,per_sample,gradient", help="outputs to grade (comma-separated)")
    p.add_argument("--rtol", type=float, default=1e-5, help="relative tolerance (default 1e-5)")
    p.add_argument("--atol", type=float, default=1e-8, help="absolute tolerance (default 1e-8)")
    p.add_argument("--visibility", choices=VISIBILITIES, default="visible", help="Gradescope test visibility")
    p.add_argument("--api-key", default=os.environ.get("API_KEY"), help="X-API-Key (default: $API_KEY)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the service")
    args = p.parse_args(argv)
    try:
        args.shape = [int(d) for d in args.shape.strip("[] ").split(",")]
        args.params = json.loads(args.params)
    except ValueError as exc:
        p.error(f"bad SHAPE or --params: {exc}")
    args.outputs = [o.strip() for o in args.outputs.split(",") if o.strip()]
    if not args.outputs or any(o not in OUTPUTS for o in args.outputs):
        p.error(f"--outputs must name some of {', '.join(OUTPUTS)}")
    return args


def write_results(path: str, results: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")


def failed(args: argparse.Namespace, message: str) -> dict:
    return {"score": 0, "output": message, "visibility": args.visibility, "tests": []}


def read_submission(args: argparse.Namespace) -> dict | str:
    """The graded outputs from the student's file, or a message saying why it cannot be read."""
    name = os.path.basename(args.student_output)
    try:
        with open(args.student_output, encoding="utf-8") as f:
            data = json.load(f)  # NaN and Infinity are read too; the service fails those values
    except OSError:
        return f"Your output file {name} was not found or cannot be read."
    except ValueError as exc:
        return f"Your output file {name} is not valid JSON: {exc}."
    if not isinstance(data, dict):
        return (f"Your output file {name} must hold a JSON object such as "
                f'{{"loss": 0.5, "per_sample": [...], "gradient": [[...]]}}.')
    # only the graded outputs; a missing one is sent as absent and fails its check
    return {k: data[k] for k in args.outputs if k in data}


def grade(args: argparse.Namespace, submission: dict) -> tuple[int, dict]:
    body = {"loss": args.loss, "params": args.params, "exercise": {"seed": args.seed, "shape": args.shape},
            "outputs": args.outputs, "tolerance": {"rtol": args.rtol, "atol": args.atol},
            "gradescope": {"visibility": args.visibility}, "submission": submission}
    headers = {"Content-Type": "application/json"}
    if args.api_key:
        headers["X-API-Key"] = args.api_key
    request = urllib.request.Request(f"{args.url.rstrip('/')}/v1/grade?format=gradescope",
                                     data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return 0, json.load(response)
    except urllib.error.HTTPError as exc:  # a problem+json body: its detail says what was wrong
        try:
            detail = json.load(exc).get("detail", "")
        except ValueError:
            detail = ""
        return 1, failed(args, f"Your output could not be graded (HTTP {exc.code}): {detail}".rstrip(": "))
    except (urllib.error.URLError, OSError) as exc:
        return 1, failed(args, f"The grading service at {args.url} could not be reached: {exc}.")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    submission = read_submission(args)
    if isinstance(submission, str):
        write_results(args.results, failed(args, submission))
        return 1
    status, results = grade(args, submission)
    write_results(args.results, results)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
