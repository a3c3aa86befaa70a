"""Every service's OpenAPI document, made to state every answer a route can give, so that an
integrator (and schemathesis, which the suite runs against each service) can rely on it.

FastAPI documents a route's own success and its 422; the rest is written in here, once
for all six services:

- the answers the shared middleware gives before any route runs (``http.py``): 400 for a
  body framed by both Content-Length and Transfer-Encoding, 413 for a body over the
  service's limit, 422 for JSON nested too deep; and, where a caller gate keeps bodies
  from strangers (``caller_gate.py``), 401;
- for a route with a security scheme (``bearer.py``): 401 (with its ``WWW-Authenticate``
  challenge) and 403; for a person's token also 503 where no identity provider is set;
- 404 for a route with path parameters (an id nobody holds, or a parameter holding a
  slash, which names no route at all);
- the error bodies of every status: ``{"detail": "message"}`` for a request refused as a
  whole, ``{"detail": [{loc, msg, type}]}`` (413, 422) for input that cannot be used,
  whose items never carry the input.

A route states its own reasons for a status with FastAPI's ``responses=`` (a description
is enough: the body's shape is added here). A service adds steps of its own with
``add_openapi_step``; they run before the common answers are added."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from services.backbone.bearer import AGENCY_KEY, PERSON_TOKEN
from services.backbone.body_limit import size_text

Document = dict[str, Any]
Step = Callable[[Document], None]
Responses = dict[int | str, dict[str, Any]]

# FastAPI's own names, so the 422s it documents for the routes it validates point here
# too; its definitions allow an `input` (the value refused) these services never send.
PROBLEM = "ValidationError"
INPUT_ERRORS = "HTTPValidationError"
MESSAGE = "ErrorMessage"
SCHEMAS: dict[str, dict[str, Any]] = {
    PROBLEM: {
        "title": PROBLEM,
        "description": "One rule the input breaks: where (loc), what (msg) and which rule "
        "(type); never the value.",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "additionalProperties": False,
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
    INPUT_ERRORS: {
        "title": INPUT_ERRORS,
        "type": "object",
        "required": ["detail"],
        "additionalProperties": False,
        "properties": {
            "detail": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": f"#/components/schemas/{PROBLEM}"},
            }
        },
    },
    MESSAGE: {
        "title": MESSAGE,
        "type": "object",
        "required": ["detail"],
        "additionalProperties": False,
        "properties": {"detail": {"type": "string"}},
    },
}
INPUT_ERROR_CODES = frozenset({"413", "422"})
CHALLENGE = {
    "WWW-Authenticate": {
        "description": "Bearer, with the reason a token was refused when one was sent",
        "required": True,
        "schema": {"type": "string"},
    }
}
REFUSED = {
    AGENCY_KEY: (
        "no valid agency API key (Authorization: Bearer <key>)",
        "the key is another agency's, or lacks what this route needs",
    ),
    PERSON_TOKEN: (
        "no valid person's token (Authorization: Bearer <OIDC token>)",
        "the person does not hold a role this route needs",
    ),
}
NO_IDENTITY_PROVIDER = "no identity provider is configured here (INFOSHARE_OIDC_ISSUER)"
INVALID = "input that breaks a rule (loc names where, type the rule; the value is never echoed)"


def document_answers(app: FastAPI, *, max_body_bytes: int, gated: bool) -> None:
    """Serve ``app``'s document with the common answers; ``max_body_bytes``: its body limit;
    ``gated``: whether a request with a body needs a known caller's token (401)."""
    steps: list[Step] = []
    app.state.openapi_steps = steps
    size = size_text(max_body_bytes)

    def openapi() -> Document:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # FastAPI's own, kept as app.openapi_schema
            for op in operations(schema):
                invalid = op.get("responses", {}).get("422", {})
                if invalid.get("description") == "Validation Error":  # FastAPI's words
                    invalid["description"] = INVALID
            for step in steps:
                step(schema)
            _add_common(schema, size=size, gated=gated)
        return app.openapi_schema  # type: ignore[return-value]  # set by FastAPI.openapi

    app.openapi = openapi  # type: ignore[method-assign]


def answers(reasons: Mapping[int, str]) -> Responses:
    """A route's ``responses=``: why it answers each status (the body's shape is added to
    the document for every service alike)."""
    return {code: {"description": reason} for code, reason in reasons.items()}


def add_openapi_step(app: FastAPI, step: Step) -> None:
    """Have ``step`` edit ``app``'s document after FastAPI makes it, before the common
    answers are added."""
    app.state.openapi_steps.append(step)


def operations(schema: Document) -> list[dict[str, Any]]:
    """Every operation of the document."""
    return [op for methods in schema.get("paths", {}).values() for op in methods.values()]


def answer(op: dict[str, Any], code: int | str, reason: str, *, merge: bool = True) -> None:
    """Document that ``op`` answers ``code`` for ``reason``: added to the reasons the
    operation already gives for it, or (``merge=False``) only if it gives none."""
    responses = op.setdefault("responses", {})
    known = responses.get(str(code))
    if known is None:
        responses[str(code)] = {"description": reason}
    elif known.get("description") == "Successful Response":  # FastAPI's, saying nothing
        known["description"] = reason
    elif merge and reason not in known.get("description", ""):
        known["description"] = f"{known['description']}; or {reason}"


def _add_common(schema: Document, *, size: str, gated: bool) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for op in operations(schema):
        schemes = {name for requirement in op.get("security", []) for name in requirement}
        for name in sorted(schemes & REFUSED.keys()):
            unauthenticated, forbidden = REFUSED[name]
            answer(op, 401, unauthenticated)
            answer(op, 403, forbidden)
        if PERSON_TOKEN in schemes:
            answer(op, 503, NO_IDENTITY_PROVIDER)
        if gated:
            answer(
                op, 401, "a body sent without a bearer token of this service's callers", merge=False
            )
        if any(p.get("in") == "path" for p in op.get("parameters", [])):
            answer(op, 404, "no such id, or a path parameter that names no route", merge=False)
        answer(
            op,
            400,
            "a body framed by both Content-Length and Transfer-Encoding, or a Content-Length "
            "that is not one number",
        )
        answer(op, 413, f"the body is over {size} (declared, or as received when chunked)")
        answer(op, 422, INVALID)
        answer(op, 422, "a JSON body nested too deep (json_depth), or not UTF-8 (json_encoding)")
        for code, documented in op["responses"].items():
            _shape(code, documented)


def _shape(code: str, documented: dict[str, Any]) -> None:
    """The body (and, for 401, the challenge) of an error answer."""
    if code[:1] not in ("4", "5"):
        return
    shape = INPUT_ERRORS if code in INPUT_ERROR_CODES else MESSAGE
    ref = {"$ref": f"#/components/schemas/{shape}"}
    documented["content"] = {"application/json": {"schema": ref}}
    if code == "401":
        documented["headers"] = CHALLENGE


__all__ = [
    "INPUT_ERRORS",
    "MESSAGE",
    "PROBLEM",
    "SCHEMAS",
    "Responses",
    "add_openapi_step",
    "answer",
    "answers",
    "document_answers",
    "operations",
]
