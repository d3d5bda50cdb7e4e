"""The OpenAPI document, made to say exactly what the server accepts.

The routes read raw bytes (for speed), so FastAPI documents no request bodies: they are added here
from the wire models in ``schemas``, then tightened from the registry and the settings where the
models are looser than the server: each loss's parameters become a model generated from its
declared ``Param``s (a loss added later is covered without edits), a loss named in the body is
paired with its model, and arrays are nested non-empty number arrays of at most ``max_rank``
dimensions. ``tests/test_openapi_truth.py`` holds the server to this document with schemathesis.

What JSON Schema cannot express is a 422 (or a 413) of one of the types in ``SCHEMA_INEXPRESSIBLE``,
which every operation's 422 response lists.
"""

from __future__ import annotations

import copy

import re

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import schemas

from ..config import Settings
from ..engine import all_losses
from ..engine.params import FLOAT_MAX
from ..engine.registry import Loss
from . import curves, grading

SCHEMA_INEXPRESSIBLE = {
    "shape-mismatch": "shapes that must agree: y_true with y_pred, sample_weight with the per-sample values, rows "
                      "of one length, an axis or per-class parameter with y_pred, an exercise shape with the loss",
    "domain-error": "values outside the loss's domain (probabilities in [0, 1], rows summing to 1, integer labels "
                    "below the class count, ...: see each loss's catalogue entry)",
    "non-finite-result": "a result that overflows the dtype",
    "unsupported-output": "on POST /v1/losses/{name} only: a hessian of a loss that offers none (see its catalogue "
                          "entry)",
    "invalid-parameter": "on POST /v1/losses/{name}: parameters of another loss than the one in the path "
                         "(OpenAPI cannot tie a body to a path parameter, so params is any loss's model there); "
                         "everywhere but /v1/exercises: a required parameter left out (torch.ctc_loss's input_lengths "
                         "and target_lengths, optional in the schema because an exercise draws them)",
    "not-in-family": "on POST /v1/losses/{name} only: a reduction or a sample_weight that the family of the loss in "
                     "the path does not take (torch.* losses: mean, sum, none, batchmean for kl_div, no sample_weight; "
                     "Keras losses: no batchmean); each loss's catalogue entry lists its reductions",
    "y-true-required": "a missing y_true for a loss that needs one: y_true is optional in the schema because some "
                       "losses do not use it (torch.triplet_margin_loss; its catalogue entry says so), and which "
                       "loss needs it depends on the loss named",
    "axis-mismatch": "on GET /v1/losses/{name}/curve only: a loss in `with` plotted on another axis kind than the "
                     "loss in the path (each curve's axis.kind says which)",
    "invalid-range": "on GET /v1/losses/{name}/curve only: x_min or x_max outside the axis' domain (which depends on "
                     "the loss in the path), or x_min not below x_max",
    "limit-exceeded": "413: a size over a configured limit that is a sum or a product (numbers in all arrays, an "
                      "exercise's shape, a loss's work)",
}
"""Problem types a body valid against this document can still get, with the reason."""


def build(app: FastAPI, settings: Settings) -> dict:
    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes, tags=app.openapi_tags)
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (schemas.LossRequest, schemas.BatchRequest, *grading.REQUEST_MODELS, *curves.EXTRA_SCHEMAS):
        defs = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in defs.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[model.__name__] = defs
    _problem_json_everywhere(spec)
    _arrays(components, settings.max_rank)
    _exercise_shapes(components, settings.max_rank)
    _loss_params(components)
    _batch_items(components, settings.max_batch_items)
    _grade_inputs(components["GradeRequest"])
    _graded_outputs_offered(components["GradeRequest"])
    _inexpressible_422s(spec)
    return spec


# --- arrays ---------------------------------------------------------------------------------------

def _ndarray(max_rank: int) -> dict:
    """A number or non-empty nested arrays of numbers, at most ``max_rank`` deep (ragged rows are a
    shape-mismatch: JSON Schema cannot say "every row the same length")."""
    number = {"type": "number", "minimum": -FLOAT_MAX, "maximum": FLOAT_MAX}
    level: dict = number
    for _ in range(max_rank):
        level = {"anyOf": [number, {"type": "array", "minItems": 1, "items": level}]}
    return {**level, "title": "NDArray",
            "description": f"A JSON number or non-empty nested arrays of numbers, row-major (NumPy order), at most "
                           f"{max_rank} dimensions (LOSS_SERVICE_MAX_RANK). NaN, Infinity, strings, booleans and "
                           f"numbers beyond float64 are rejected (422)."}


def _arrays(components: dict, max_rank: int) -> None:
    components["NDArray"] = _ndarray(max_rank)
    ref = {"$ref": "#/components/schemas/NDArray"}
    for name in ("LossRequest", "BatchItem", "GradeRequest"):
        props = components[name]["properties"]
        for field in ("y_true", "y_pred", "sample_weight"):
            optional = field == "sample_weight" or name == "GradeRequest" or not _every_loss_needs(field)
            described = {"description": props[field].get("description", "")}
            props[field] = {"anyOf": [ref, {"type": "null"}], **described} if optional else {**ref, **described}
            if not optional and field not in components[name].setdefault("required", []):
                components[name]["required"].append(field)


def _every_loss_needs(field: str) -> bool:
    """Whether the schema may require ``field`` whatever the loss (y_true is optional for a loss that
    documents it as unused)."""
    return field != "y_true" or all(loss.y_true_required for loss in all_losses())


def _exercise_shapes(components: dict, max_rank: int) -> None:
    for name in ("ExerciseRequest", "ExerciseOptions"):
        shape = components[name]["properties"]["shape"]["anyOf"][0]
        shape["maxItems"] = max_rank  # more is a 422 (LOSS_SERVICE_MAX_RANK)


# --- loss names and parameters --------------------------------------------------------------------

def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", name))  # torch.l1_loss -> TorchL1Loss


def params_component(loss: Loss) -> str:
    return f"{_camel(loss.name)}Params"


def params_schema(loss: Loss) -> dict:
    """The model of ``loss``'s parameters, from its declared ``Param``s."""
    which = "every one optional, with its default" if loss.params else "it takes none: send {} or leave params out"
    return {"title": f"{loss.name} params", "type": "object", "additionalProperties": False,
            "properties": {p.name: p.json_schema() for p in loss.params},
            "description": f"The parameters of {loss.name} ({', '.join(loss.aliases) or 'no aliases'}); {which}."}


def name_schema(loss: Loss) -> dict:
    """The names the service takes for ``loss``: its name and aliases, case-insensitive, with any
    spaces, ``_`` and ``-`` (``registry.name_key``)."""
    sep = r"[\s_-]*"
    keys = sorted({re.sub(r"[\s_\-]", "", n).lower() for n in (loss.name, *loss.aliases)})
    words = "|".join(sep.join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in key) for key in keys)
    return {"type": "string", "pattern": f"^{sep}(?:{words}){sep}$", "examples": [loss.name, *loss.aliases]}


def family_properties(loss: Loss) -> dict:
    """What the loss's family allows of the other fields: its reductions (left out: its default) and,
    for a family without sample weights, none (a batch item's array, an exercise's ``true``)."""
    out: dict = {"reduction": {"anyOf": [{"enum": list(loss.reductions)}, {"type": "null"}],
                               "description": f"{loss.name}'s reductions; left out, {loss.default_reduction}."}}
    if not loss.reducer.sample_weight:
        out["sample_weight"] = {"enum": [None, False], "description": f"{loss.name} takes no sample_weight."}
        out["exercise"] = {"anyOf": [{"type": "null"}, {"type": "object",
                                                        "properties": {"sample_weight": {"const": False}}}]}
    return out


def _loss_params(components: dict) -> None:
    losses = all_losses()
    for loss in losses:
        components[params_component(loss)] = params_schema(loss)
    components["LossParams"] = {
        "title": "LossParams",
        "anyOf": [{"$ref": f"#/components/schemas/{params_component(loss)}"} for loss in losses],
        "description": "The parameters of the loss (one model per loss; see also GET /v1/losses/{name}). Unknown "
                       "names, wrong types and out-of-range values are a 422 listing the valid parameters."}
    # the exact names (a pattern per loss) are in LossAndItsParams, whose variants /docs shows collapsed
    components["LossName"] = {
        "type": "string", "examples": [loss.name for loss in losses],
        "description": "A loss name or alias, case-insensitive, with any spaces, _ and - (GET /v1/losses lists "
                       "them; LossAndItsParams has the pattern of each); an unknown name is a 404 with suggestions."}
    components["LossAndItsParams"] = {
        "description": "The loss named in the body with the parameters of that loss.",
        "oneOf": [{"title": loss.name, "type": "object", "required": ["loss"],
                   "properties": {"loss": name_schema(loss),
                                  "params": {"$ref": f"#/components/schemas/{params_component(loss)}"},
                                  **family_properties(loss)}}
                  for loss in losses]}
    params = {"$ref": "#/components/schemas/LossParams", "default": {}}
    request = components["LossRequest"]["properties"]
    request["params"] = {**params, "description": "The parameters of the loss in the path: one of the models of "
                                                  "LossParams (its title names the loss); another loss's are a 422."}
    for name in ("BatchItem", "GradeRequest", "ExerciseRequest"):
        model = components[name]
        model["properties"]["loss"] = {"$ref": "#/components/schemas/LossName"}
        # the pairing with the named loss is in LossAndItsParams, once, which keeps /docs readable
        model["properties"]["params"] = {"type": "object", "default": {}, "description": (
            "The parameters of the loss named in `loss`: that loss's model in LossAndItsParams (One of).")}
        model["allOf"] = [{"$ref": "#/components/schemas/LossAndItsParams"}]


# --- batch items and grading inputs ---------------------------------------------------------------

def _batch_items(components: dict, max_items: int) -> None:
    """One bad item does not fail the others (api.md): an item that is not a valid BatchItem, an
    object or not, is answered in its place by ``{"error": problem}``, so any JSON value is accepted."""
    requests = components["BatchRequest"]["properties"]["requests"]
    requests["maxItems"] = max_items  # more is a 413 (LOSS_SERVICE_MAX_BATCH_ITEMS)
    requests["items"] = {"anyOf": [
        {"$ref": "#/components/schemas/BatchItem"},
        {"description": "Any other JSON value is answered in its place by {\"error\": problem} (422 or 404), "
                        "without failing the other items."}]}


def _grade_inputs(grade: dict) -> None:
    """y_true and y_pred, or an exercise that generates them (not both); and something to grade."""
    null = {"type": "null"}
    grade["allOf"] = [*grade.get("allOf", []), {"oneOf": [
        {"title": "inputs sent", "required": ["y_true", "y_pred"] if _every_loss_needs("y_true") else ["y_pred"],
         "properties": {"y_true": {"not": null}, "y_pred": {"not": null}, "exercise": null}},
        {"title": "exercise", "required": ["exercise"],
         "properties": {"exercise": {"not": null}, "y_true": null, "y_pred": null},
         "anyOf": [{"properties": {"exercise": {"properties": {"sample_weight": {"const": False}}}}},
                   {"properties": {"sample_weight": null}}]},
    ]}, {"anyOf": [
        {"title": "outputs listed", "required": ["outputs"], "properties": {"outputs": {"not": null}}},
        {"title": "outputs from the submission", "properties": {"submission": {"minProperties": 1}}},
    ]}]


def _graded_outputs_offered(grade: dict) -> None:
    """A Hessian is graded only for a loss that offers one, a gradient only for a differentiable loss.
    The graded outputs are `outputs` when given, else the submission's keys."""
    def named(losses: list[Loss]) -> dict:
        return {"required": ["loss"], "properties": {"loss": {"anyOf": [
            {k: v for k, v in name_schema(loss).items() if k != "examples"} for loss in losses]}}}

    for output, offers in (("hessian", lambda loss: loss.hessian), ("gradient", lambda loss: loss.differentiable)):
        offering = [loss for loss in all_losses() if offers(loss)]
        lacking = [loss for loss in all_losses() if not offers(loss)]
        if not lacking:
            continue
        not_graded = [
            {"required": ["outputs"],
             "properties": {"outputs": {"type": "array", "items": {"not": {"const": output}}}}},
            {"properties": {"outputs": {"type": "null"}, "submission": {"properties": {output: False}}}}]
        # the shorter list of names: fifty patterns to match make schema-driven generation too slow, and
        # LossAndItsParams already holds `loss` to the registered names, so "not one that lacks it" is the same
        graded = named(offering) if len(offering) <= len(lacking) else {"not": named(lacking)}
        grade["allOf"].append({"anyOf": [graded, *not_graded]})


# --- errors ---------------------------------------------------------------------------------------

def _problem_json_everywhere(spec: dict) -> None:
    """FastAPI documents its own 422 body (HTTPValidationError); this service answers every error
    with RFC 9457 problem+json, so the spec says that instead (the Open Inference Protocol's
    ``{"error": ...}`` under /v2, as service.api.problems renders them)."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    oip_error = {"application/json": {"schema": {"$ref": "#/components/schemas/OipError"}}}
    for path, operations in spec.get("paths", {}).items():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code.startswith(("4", "5")) and not _answers_with_a_body_model(response):
                    response["content"] = copy.deepcopy(oip_error if path.startswith("/v2") else problem)
    for name in ("HTTPValidationError", "ValidationError"):
        spec.get("components", {}).get("schemas", {}).pop(name, None)


def _answers_with_a_body_model(response: dict) -> bool:
    """A non-2xx answer documented with a body of its own (a 503 readiness), not an error body."""
    ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
    return ref.rsplit("/", 1)[-1] in ("Readiness", "ServerReady")


def _inexpressible_422s(spec: dict) -> None:
    listed = "; ".join(f"`{slug}`: {why}" for slug, why in SCHEMA_INEXPRESSIBLE.items())
    note = f" A body valid against this schema can still be refused for what JSON Schema cannot express ({listed})."
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            response = operation.get("responses", {}).get("422")
            if response is not None and "requestBody" in operation:
                response["description"] = response.get("description", "") + note
