"""The example graders (examples/graders) end to end against a real uvicorn on loopback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest

from service.engine import all_losses

from .conftest import REPO, free_port, live_server

GRADERS = REPO / "examples" / "graders"
BASH = shutil.which("bash")
CURL = shutil.which("curl")
JQ = shutil.which("jq")
needs_shell = pytest.mark.skipif(not (BASH and CURL), reason="grade.sh needs bash and curl")


@pytest.fixture(scope="module")
def base_url():
    with live_server() as live:
        yield live.url


def answers(url: str, loss: str, seed: int, shape: list[int] | None = None, params: dict | None = None) -> dict:
    """What a correct student computes on the exercise: loss, per_sample, gradient."""
    ex = httpx.post(f"{url}/v1/exercises", json={"loss": loss, "seed": seed, "shape": shape,
                                                 "params": params or {}}).json()
    # the exercise's params: the ones sent, their defaults, and any drawn with the data (CTC's lengths)
    r = httpx.post(f"{url}/v1/losses/{loss}", json={"y_true": ex["y_true"], "y_pred": ex["y_pred"],
                                                    "params": ex["params"]})
    assert r.status_code == 200, r.text
    out = r.json()
    return {"shape": ex["shape"], **{k: out[k] for k in ("loss", "per_sample", "gradient")}}


def run_grader(kind: str, url: str, loss: str, seed: int, shape: list[int], student, tmp_path,
               env: dict | None = None, extra: list[str] | None = None) -> tuple[int, dict, str]:
    path = tmp_path / f"student-{kind}.json"
    if isinstance(student, (bytes, str)):
        path.write_bytes(student.encode() if isinstance(student, str) else student)
    else:
        path.write_text(json.dumps(student))
    results = tmp_path / f"results-{kind}.json"
    if results.exists():
        results.unlink()
    shape_arg = ",".join(map(str, shape))
    if kind == "py":
        cmd = [sys.executable, str(GRADERS / "grade.py"), url, loss, str(seed), shape_arg, str(path), str(results),
               *(extra or [])]
    else:
        cmd = [BASH, str(GRADERS / "grade.sh"), url, loss, str(seed), shape_arg, str(path), str(results)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, **(env or {})})
    assert results.exists(), proc.stderr
    return proc.returncode, json.loads(results.read_text()), proc.stderr


def assert_gradescope_shape(results: dict) -> None:
    assert isinstance(results["score"], (int, float)) and isinstance(results["output"], str)
    assert results.get("visibility", "visible") in ("visible", "hidden", "after_due_date", "after_published")
    for test in results["tests"]:
        assert {"name", "score", "max_score", "status", "output"} <= set(test)
        assert test["status"] in ("passed", "failed")


GRADER_KINDS = ["py", pytest.param("sh-jq", marks=[needs_shell, pytest.mark.skipif(not JQ, reason="no jq")]),
                pytest.param("sh-plain", marks=needs_shell)]


def _env(kind: str) -> dict:
    return {"JQ": ""} if kind == "sh-plain" else {}


@pytest.mark.parametrize("kind", GRADER_KINDS)
def test_correct_and_wrong_submissions(base_url, tmp_path, kind):
    a = answers(base_url, "categorical_crossentropy", 42, [4, 3])
    student = {k: a[k] for k in ("loss", "per_sample", "gradient")}
    code, results, err = run_grader(kind, base_url, "categorical_crossentropy", 42, [4, 3], student, tmp_path,
                                    env=_env(kind))
    assert code == 0, err
    assert_gradescope_shape(results)
    assert results["score"] == 3.0 and [t["status"] for t in results["tests"]] == ["passed"] * 3
    assert [t["name"] for t in results["tests"]] == [f"categorical_crossentropy: {o}"
                                                     for o in ("loss", "per_sample", "gradient")]

    wrong = {"loss": a["loss"] * 4, "gradient": (-np.asarray(a["gradient"])).tolist()}  # per_sample missing
    code, results, err = run_grader(kind, base_url, "categorical_crossentropy", 42, [4, 3], wrong, tmp_path,
                                    env=_env(kind))
    assert code == 0, err
    assert results["score"] == 0.0 and len(results["tests"]) == 3
    outputs = {t["name"].split(": ")[1]: t["output"] for t in results["tests"]}
    assert outputs["loss"].startswith("The loss is 4 times too large")
    assert "missing" in outputs["per_sample"]
    assert "wrong sign in 12 of 12 entries" in outputs["gradient"]
    text = json.dumps(results)
    assert repr(a["loss"]) not in text and "expected\"" not in text


@pytest.mark.parametrize("kind", GRADER_KINDS)
def test_nan_and_extra_fields(base_url, tmp_path, kind):
    a = answers(base_url, "huber", 3, [2, 3])
    student = ('{"loss": NaN, "per_sample": ' + json.dumps(a["per_sample"]) + ', "gradient": '
               + json.dumps(a["gradient"]) + ', "notes": "my answer"}')
    code, results, err = run_grader(kind, base_url, "huber", 3, [2, 3], student, tmp_path, env=_env(kind))
    if kind == "sh-plain":  # the file goes through as it is: the unknown field is the service's 422
        assert code == 1 and results["score"] == 0 and results["tests"] == []
        assert "HTTP 422" in results["output"] and "notes" in results["output"]
        return
    assert code == 0, err
    statuses = {t["name"]: t["status"] for t in results["tests"]}
    assert statuses == {"huber: loss": "failed", "huber: per_sample": "passed", "huber: gradient": "passed"}
    loss_output = results["tests"][0]["output"]
    if kind == "py":
        assert "NaN, null or Infinity" in loss_output
    else:  # jq reads NaN as null
        assert "NaN, null or Infinity" in loss_output or "absent or null" in loss_output


@pytest.mark.parametrize("kind", GRADER_KINDS)
def test_unreadable_student_file_and_unreachable_service(base_url, tmp_path, kind):
    code, results, _ = run_grader(kind, base_url, "mse", 1, [4, 3], "{not json", tmp_path, env=_env(kind))
    assert results["score"] == 0 and results["tests"] == []
    assert "JSON" in results["output"]
    dead = f"http://127.0.0.1:{free_port()}"
    code, results, _ = run_grader(kind, dead, "mse", 1, [4, 3], {"loss": 1.0}, tmp_path, env=_env(kind))
    assert code == 1 and results["score"] == 0 and "could not be reached" in results["output"]


@pytest.mark.parametrize("kind", GRADER_KINDS)
def test_options_visibility_and_outputs(base_url, tmp_path, kind):
    a = answers(base_url, "huber", 5, [3, 2], params={"delta": 0.5})
    student = {"loss": a["loss"], "gradient": a["gradient"]}
    if kind == "py":
        extra = ["--params", '{"delta": 0.5}', "--outputs", "loss,gradient", "--visibility", "after_published",
                 "--rtol", "1e-6"]
        env = {}
    else:
        extra = None
        env = {**_env(kind), "PARAMS": '{"delta": 0.5}', "OUTPUTS": "loss,gradient",
               "VISIBILITY": "after_published", "RTOL": "1e-6"}
    code, results, err = run_grader(kind, base_url, "huber", 5, [3, 2], student, tmp_path, env=env, extra=extra)
    assert code == 0, err
    assert results["score"] == 2.0 and len(results["tests"]) == 2
    assert results["visibility"] == "after_published"
    assert all(t["visibility"] == "after_published" for t in results["tests"])
    assert "rtol=1e-06" in results["output"]


@pytest.mark.parametrize("name", [loss.name for loss in all_losses()])
def test_python_grader_grades_every_loss(base_url, tmp_path, name):
    """One call grades any loss of the registry (later ones included) from a student's file."""
    loss = next(l for l in all_losses() if l.name == name)
    a = answers(base_url, name, 11, list(loss.sample_shape))
    graded = ("loss", "per_sample", "gradient") if loss.differentiable else ("loss", "per_sample")
    extra = None if loss.differentiable else ["--outputs", ",".join(graded)]
    code, results, err = run_grader("py", base_url, name, 11, a["shape"], {k: a[k] for k in graded}, tmp_path,
                                    extra=extra)
    assert code == 0, err
    assert results["score"] == len(graded), results
    if not loss.differentiable:  # the default outputs ask for a gradient: refused, and the grader says why
        code, results, _ = run_grader("py", base_url, name, 11, a["shape"], {k: a[k] for k in graded}, tmp_path)
        assert code == 1 and results["score"] == 0 and "not differentiable" in results["output"], results


@needs_shell
def test_shell_grader_usage_errors(tmp_path):
    proc = subprocess.run([BASH, str(GRADERS / "grade.sh"), "http://x"], check=False, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2 and "Usage" in proc.stderr
    proc = subprocess.run([BASH, str(GRADERS / "grade.sh"), "http://x", "mse", "1", "4;3", "a.json", "r.json"],
                          check=False, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert proc.returncode == 2 and "SHAPE" in proc.stderr and not (tmp_path / "r.json").exists()
