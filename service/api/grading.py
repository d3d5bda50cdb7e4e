"""Grading routes for auto-graders: /v1/grade and /v1/exercises."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from schemas import PROBLEM_RESPONSES
from schemas.grading import ExerciseRequest, ExerciseResponse, GradeRequest, GradeResponse, GradescopeResults

from .. import exercises, grading
from .answer import respond
from .body import read_json_body
from .routes import request_body_openapi

router = APIRouter(prefix="/v1")

REQUEST_MODELS = (GradeRequest, ExerciseRequest)
"""Request bodies documented in OpenAPI components (the routes read raw bytes)."""

_GRADE_EXAMPLES = {
    "inputs sent": {"summary": "y_true and y_pred sent; a wrong-sign gradient", "value": {
        "loss": "mean_squared_error", "y_true": [[0.0, 1.0], [1.0, 0.0]], "y_pred": [[0.5, 0.5], [0.5, 0.5]],
        "submission": {"loss": 0.25, "gradient": [[-0.25, 0.25], [0.25, -0.25]]},
        "tolerance": {"rtol": 1e-5, "atol": 1e-8}}},
    "exercise": {"summary": "a seeded exercise instead of y_true/y_pred", "value": {
        "loss": "categorical_crossentropy", "exercise": {"seed": 42, "shape": [2, 3]},
        "outputs": ["loss", "per_sample", "gradient"], "submission": {"loss": 1.0, "per_sample": [1.0, 1.0]}}},
    "gradescope": {"summary": "with ?format=gradescope: options of results.json", "value": {
        "loss": "huber", "params": {"delta": 0.5}, "exercise": {"seed": 7, "shape": [2, 2]},
        "submission": {"loss": 0.1}, "gradescope": {"visibility": "after_published", "max_score": {"loss": 2}}}},
}

_EXERCISE_EXAMPLES = {
    "categorical": {"summary": "one-hot targets and probability rows",
                    "value": {"loss": "categorical_crossentropy", "shape": [4, 3], "seed": 42}},
    "weighted": {"summary": "with a sample_weight",
                 "value": {"loss": "huber", "params": {"delta": 0.5}, "shape": [2, 3], "seed": 7,
                           "sample_weight": True}},
    "ctc": {"summary": "CTC label sequences and logits", "value": {"loss": "ctc", "shape": [2, 6, 4], "seed": 1}},
}

Format = Query("json", description="`json` (default) or `gradescope`: Gradescope's results.json body, ready to "
                                   "write to /autograder/results/results.json.")


@router.post("/grade", response_model=GradeResponse | GradescopeResults, responses=PROBLEM_RESPONSES,
             summary="Grade a student's loss, per-sample values, gradient or Hessian", tags=["grading"],
             openapi_extra=request_body_openapi("GradeRequest", _GRADE_EXAMPLES))
async def grade(request: Request, format: Literal["json", "gradescope"] = Format) -> Response:
    """One check per output in `submission` (or listed in `outputs`), each scoring 1. A value passes
    where `|submitted - expected| <= atol + rtol * |expected|` (numpy.isclose: asymmetric, relative to
    the expected value; defaults rtol 1e-5, atol 1e-8). Shapes must match exactly. null, NaN and
    Infinity never pass; a missing output fails its check. Each check reports `mismatches`,
    `max_abs_error`, `max_rel_error`, the `worst` index with the submitted value there, and a
    `message` naming the likely mistake (wrong sign, a constant factor such as a missing 1/N, all
    zeros, a transposed or per-sample shape...). Reference values appear only with
    `reveal_expected: true`.

    Send `y_true`/`y_pred` as for `POST /v1/losses/{name}`, or `exercise: {"seed", "shape"}` to grade on
    the inputs `POST /v1/exercises` gives for the same loss and params. With `?format=gradescope` the
    body is Gradescope's `results.json` (one test per check; `gradescope` sets visibility, test names
    and points)."""
    settings = request.app.state.settings
    body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout)
    return respond(await request.app.state.admission.run(request, grading.grade_response, body,
                                                       request.app.state.limits, format))


@router.post("/exercises", response_model=ExerciseResponse, responses=PROBLEM_RESPONSES,
             summary="Seeded, deterministic inputs for any loss", tags=["grading"],
             openapi_extra=request_body_openapi("ExerciseRequest", _EXERCISE_EXAMPLES))
async def make_exercise(request: Request) -> Response:
    """`y_true`, `y_pred` (and `sample_weight` if asked) in the loss's valid domain: one-hot rows,
    probabilities, integer labels, positive rates, unit embeddings, CTC label sequences... The same
    request gives the same numbers in every release; the algorithm is fixed:

    1. `params` are validated and completed with defaults; `shape` is y_pred's shape (default: the
       loss's sample shape); `decimals` defaults to 4.
    2. `rng = numpy.random.Generator(numpy.random.PCG64(seed))`.
    3. y_true, then y_pred, are drawn from `rng` by kind: real normal(0, 1); logits normal(0, 2) (any
       `from_logits: true`); positive uniform(0.1, 3); probability uniform(0.05, 0.95); binary
       integers {0, 1}; signs integers {-1, 1}; counts poisson(2); one-hot rows (uniform class); labels
       uniform integers of shape `shape[:-1]`; probability rows softmax(normal(0, 1)) over the last
       axis; unit rows normal(0, 1) / L2 norm; each rounded by `numpy.round(x, decimals)` (probability
       rows put the rounding residue on their largest entry; unit rows re-normalise theirs). `circle`
       and `ctc` draw structured inputs (repeated labels; label lengths, tokens, logits) as their
       catalogue notes and source document.
    4. A `params.axis` other than the last: drawn with that axis last, then moved back.
    5. `sample_weight: true`: `rng.uniform(0.5, 2, per_sample_shape)`, rounded, drawn last.

    The inputs pass the loss's own checks; a shape the loss cannot take is a 422 naming `shape`."""
    settings = request.app.state.settings
    body = await read_json_body(request, settings.max_body_bytes, settings.body_timeout)
    return respond(await request.app.state.admission.run(request, exercises.exercise_response, body,
                                                       request.app.state.limits))
