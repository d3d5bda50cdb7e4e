"""The examples of the OpenAPI document (/docs, /redoc), built from the service's own answers.

Every response example is computed when the document is first built, by the code that answers the
request (the header checks, the pipeline, the problem rendering) on a fixed input; none is typed by
hand, so the pages cannot show a body the service would not give. The 200 examples of
``POST /v1/losses/{name}`` are the catalogue's stored responses (service/data/examples.json, which
tests/test_catalogue.py replays). tests/test_docs.py sends every input here to the app and checks
that it answers the documented body.

``POST /v1/losses/{name}`` has one example per loss, under the same key (the loss's name) and in
the same order for the ``name`` parameter, the request body and the 200 response; the default of
``name`` is the first of them, so the page runs as prefilled. Swagger UI cannot pair a parameter's
examples with the body's, so service/api/static/loss-service-docs.js does: picking either one picks
the other (and the matching 200 example).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from .. import catalogue, exercises, grading
from ..config import Settings
from ..engine import all_losses
from ..engine.errors import LossServiceError
from ..transport import json as json_transport
from ..transport.call import Answer, Limits, Plan
from ..problems import problem_body
from ..transport.curves import curve_plan
from ..transport.json import dumps
from .body import check_headers

LOSS_OPERATION = ("/v1/losses/{name}", "post")


@dataclass(frozen=True)
class Case:
    """One documented request: ``url`` is the operation's path filled in (and its query, if any)."""

    summary: str
    url: str
    body: bytes = b""
    content_type: str = "application/json"
    oversize: bool = False  # declares a Content-Length one byte over LOSS_SERVICE_MAX_BODY_BYTES

    def headers(self, settings: Settings) -> dict[str, str]:
        length = settings.max_body_bytes + 1 if self.oversize else len(self.body)
        return {"content-type": self.content_type, "content-length": str(length)}

    def description(self, method: str) -> str:
        if self.oversize:
            return f"`{method.upper()} {self.url}` with a `Content-Length` over the limit."
        text = self.body.decode()
        said = f" with `{text if len(text) <= 200 else text[:120] + ' ...'}`" if text else ""
        if self.content_type != "application/json":
            said += f" as `Content-Type: {self.content_type}`"
        return f"`{method.upper()} {self.url}`{said}."


def _body(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _name_in(url: str) -> str:
    return unquote(urlsplit(url).path.rsplit("/", 1)[1])


def _query(url: str, key: str, default: str) -> str:
    return parse_qs(urlsplit(url).query).get(key, [default])[0]


# What each route runs on a body that passed the header checks (service/api/routes.py and grading.py).
# Each gives the route's plan (parsed and validated, work declared); ``answer`` runs it, as the route
# does once the work budget admits it.
_ROUTES: dict[tuple[str, str], Callable[[str, bytes, Limits], Plan]] = {
    ("/v1/losses/{name}", "get"): lambda url, body, limits: Plan(0, lambda: Answer(dumps(catalogue.detail(
        _name_in(url))))),
    ("/v1/losses/{name}", "post"): lambda url, body, limits: json_transport.loss_response(_name_in(url), body, limits),
    ("/v1/batch", "post"): lambda url, body, limits: json_transport.batch_response(body, limits, urlsplit(url).path),
    ("/v1/grade", "post"): lambda url, body, limits: grading.grade_response(body, limits,
                                                                            _query(url, "format", "json")),
    ("/v1/exercises", "post"): lambda url, body, limits: exercises.exercise_response(body, limits),
    ("/v1/losses/{name}/curve", "get"): lambda url, body, limits: _curve(url),
}


def _curve(url: str) -> Plan:
    """GET /v1/losses/{name}/curve's plan (service/api/curves.py): its query read as the route reads it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    first = {k: v[0] for k, v in query.items()}
    name = unquote(parts.path.rsplit("/", 2)[1])
    items = [(k, v) for k, vs in query.items() for v in vs]
    return curve_plan(name, items, first.get("format", "json"), int(first.get("points", 201)), first.get("with"),
                      float(first["x_min"]) if "x_min" in first else None,
                      float(first["x_max"]) if "x_max" in first else None)


def answer(operation: tuple[str, str], case: Case, settings: Settings) -> Any:
    """The JSON body the service answers ``case`` with, computed by the code its route runs."""
    try:
        if operation[1] == "post":
            check_headers(case.headers(settings), settings.max_body_bytes)
        return orjson.loads(_ROUTES[operation](case.url, case.body, Limits.from_settings(settings)).run().body)
    except LossServiceError as err:
        return problem_body(err, urlsplit(case.url).path)


def _mse(**extra: Any) -> bytes:
    return _body({"y_true": [[0.0, 1.0]], "y_pred": [[0.5, 0.5]], **extra})


def _header_cases(url: str) -> dict[int, dict[str, Case]]:
    """400, 413 and 415 as every POST route gives them."""
    return {
        400: {"invalid JSON": Case("a trailing comma", url, b'{"y_true": [1.0], "y_pred": [2.0,]}')},
        413: {"body too large": Case("a body over LOSS_SERVICE_MAX_BODY_BYTES", url, oversize=True)},
        415: {"not JSON": Case("a form-encoded body", url, b"y_true=1&y_pred=2",
                               "application/x-www-form-urlencoded")},
    }


def problem_cases(settings: Settings) -> dict[tuple[str, str], dict[int, dict[str, Case]]]:
    """The fixed bad inputs documented for each operation and status code, by example key."""
    loss, batch, grade, exercise = "/v1/losses", "/v1/batch", "/v1/grade", "/v1/exercises"
    too_many = {"requests": [{"loss": "mse", "y_true": [1.0], "y_pred": [1.0]}] * (settings.max_batch_items + 1)}
    batch_cases = _header_cases(batch)
    batch_cases[413]["too many items"] = Case("more items than LOSS_SERVICE_MAX_BATCH_ITEMS", batch, _body(too_many))
    return {
        ("/v1/losses/{name}", "get"): {404: {"unknown loss": Case("a misspelt name, with suggestions",
                                                                  f"{loss}/hubber")}},
        LOSS_OPERATION: {
            **_header_cases(f"{loss}/mse"),
            404: {"unknown loss": Case("a misspelt name, with suggestions", f"{loss}/hubber", _mse())},
            422: {
                "invalid field": Case("a reduction that does not exist", f"{loss}/mse", _mse(reduction="average")),
                "unknown field": Case("a misspelt field", f"{loss}/mse",
                                      _body({"y_true": [[0.0, 1.0]], "y_prd": [[0.5, 0.5]]})),
                "shape mismatch": Case("y_true and y_pred of different shapes", f"{loss}/mse",
                                       _body({"y_true": [[0.0, 1.0]], "y_pred": [[0.5, 0.5, 0.5]]})),
                "domain error": Case("a probability above 1", f"{loss}/binary_crossentropy",
                                     _body({"y_true": [[0.0], [1.0]], "y_pred": [[0.4], [1.5]]})),
                "non-finite input": Case("NaN in y_pred", f"{loss}/mse",
                                         b'{"y_true": [[0.0, 1.0]], "y_pred": [[0.5, NaN]]}'),
                "non-finite result": Case("a loss that overflows float32", f"{loss}/mse",
                                          _body({"y_true": [0.0], "y_pred": [1e30], "dtype": "float32"})),
                "unknown parameter": Case("a misspelt parameter", f"{loss}/huber",
                                          _body({"y_true": [0.0], "y_pred": [1.0], "params": {"delt": 0.5}})),
                "invalid parameter": Case("a parameter out of range", f"{loss}/huber",
                                          _body({"y_true": [0.0], "y_pred": [1.0], "params": {"delta": -1}})),
            },
        },
        ("/v1/losses/{name}/curve", "get"): {
            404: {"unknown loss": Case("a misspelt name, with suggestions", f"{loss}/hubber/curve"),
                  "unknown overlay": Case("a misspelt loss in with", f"{loss}/huber/curve?with=mea")},
            422: {"axis mismatch": Case("overlaying a loss on another axis", f"{loss}/huber/curve?with=bce"),
                  "invalid parameter": Case("a parameter out of range", f"{loss}/huber/curve?delta=-1"),
                  "unknown query key": Case("a misspelt parameter", f"{loss}/huber/curve?delt=2")},
        },
        ("/v1/batch", "post"): {
            **batch_cases,
            422: {"not a batch": Case("a loss request sent to /v1/batch", batch, _mse())},
        },
        ("/v1/grade", "post"): {
            **_header_cases(grade),
            404: {"unknown loss": Case("a misspelt loss, with suggestions", grade, _body(
                {"loss": "hubber", "exercise": {"seed": 1}, "submission": {"loss": 0.1}}))},
            422: {"no submission": Case("nothing to grade", grade, _body(
                {"loss": "huber", "exercise": {"seed": 1}}))},
        },
        ("/v1/exercises", "post"): {
            **_header_cases(exercise),
            404: {"unknown loss": Case("a misspelt loss, with suggestions", exercise, _body(
                {"loss": "hubber", "seed": 1}))},
            422: {"impossible shape": Case("a shape the loss cannot take", exercise, _body(
                {"loss": "ctc", "shape": [2, 3], "seed": 1}))},
        },
    }


def success_cases(spec: dict) -> dict[tuple[str, str], dict[str, Case]]:
    """The 200 of each request-body example of /v1/batch, /v1/grade and /v1/exercises, under its key."""
    out = {}
    for path in ("/v1/batch", "/v1/grade", "/v1/exercises"):
        examples = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"].get("examples", {})
        # the grading route's "gradescope" example documents ?format=gradescope
        out[(path, "post")] = {key: Case(example.get("summary", key),
                                         path + ("?format=gradescope" if key == "gradescope" else ""),
                                         _body(example["value"]))
                               for key, example in examples.items()}
    return out


def loss_examples() -> dict[str, dict[str, Any]]:
    """One stored example per loss, keyed by the loss's name, in catalogue order."""
    out = {}
    for loss in all_losses():
        stored = catalogue.stored_examples().get(loss.name)
        if stored:
            out[loss.name] = stored[0]
    return out


def _media(responses: dict, status: int, media_type: str) -> dict:
    """The response's ``media_type`` object, made this operation's own: FastAPI and app.openapi() share
    one content object between the operations."""
    response = responses[str(status)] = dict(responses[str(status)])
    content = response["content"] = dict(response.get("content", {}))
    media = content[media_type] = dict(content.get(media_type, {}))
    return media


def catalogue_link(name: str) -> str:
    """Each loss's example on /docs and /redoc links to its catalogue page (service/api/site.py)."""
    return f"[{name} in the catalogue]({catalogue.page_path(name)}): formula, curves, playground."


def _name_examples(operation: dict, keys: list[str]) -> None:
    """``name`` prefilled with the first loss, and every loss in its Examples list."""
    for i, parameter in enumerate(operation["parameters"]):
        if parameter["name"] == "name" and parameter["in"] == "path":
            parameter = operation["parameters"][i] = copy.deepcopy(parameter)
            parameter["schema"].pop("examples", None)
            parameter["schema"]["default"] = keys[0]
            parameter["examples"] = {key: {"summary": key, "description": catalogue_link(key), "value": key}
                                     for key in keys}


def _pair_loss_examples(operation: dict) -> None:
    examples = loss_examples()
    operation["requestBody"]["content"]["application/json"]["examples"] = {
        key: {"summary": key, "description": catalogue_link(key), "value": example["request"]}
        for key, example in examples.items()}
    _media(operation["responses"], 200, "application/json")["examples"] = {
        key: {"summary": key, "value": example["response"]} for key, example in examples.items()}
    _name_examples(operation, list(examples))


def _show(operation: tuple[str, str], spec: dict, status: int, cases: dict[str, Case], settings: Settings) -> None:
    path, method = operation
    media_type = "application/json" if status == 200 else "application/problem+json"
    examples = _media(spec["paths"][path][method]["responses"], status, media_type).setdefault("examples", {})
    for key, case in cases.items():
        examples[key] = {"summary": case.summary, "description": case.description(method),
                         "value": answer(operation, case, settings)}


def add_examples(spec: dict, settings: Settings) -> None:
    """Puts the paired loss examples and every response example into ``spec`` (the OpenAPI document)."""
    _pair_loss_examples(spec["paths"][LOSS_OPERATION[0]][LOSS_OPERATION[1]])
    _name_examples(spec["paths"][LOSS_OPERATION[0]]["get"], list(loss_examples()))
    for operation, by_status in problem_cases(settings).items():
        for status, cases in by_status.items():
            _show(operation, spec, status, cases, settings)
    for operation, cases in success_cases(spec).items():
        _show(operation, spec, 200, cases, settings)
    _oip_error_examples(spec, settings)


def _oip_error_examples(spec: dict, settings: Settings) -> None:
    """/v2 answers an error with ``{"error": <the /v1 detail>}``: its examples are the /v1 compute
    route's, computed the same way, in that form."""
    v1_cases = problem_cases(settings)[LOSS_OPERATION]
    for path, operations in spec["paths"].items():
        if not path.startswith("/v2"):
            continue
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                media = response.get("content", {}).get("application/json", {})
                if not status.startswith(("4", "5")) or not media.get("schema", {}).get("$ref", "").endswith("/OipError"):
                    continue
                media["examples"] = {key: {"summary": case.summary, "description": case.description("post"),
                                           "value": {"error": answer(LOSS_OPERATION, case, settings)["detail"]}}
                                     for key, case in v1_cases.get(int(status), {}).items()}
