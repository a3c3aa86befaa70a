"""The agency services' OpenAPI document: the headers and answers every publishing route
shares are written into each operation, so an integrator (and schemathesis) sees them.

Errors come in two shapes, each described exactly: ``{"detail": "message"}`` for a
request refused as a whole (400, 401, 403, 404, 415) and ``{"detail": [{loc, msg,
type}]}`` for input that cannot be used (413, 422), whose items never carry the input."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.agency.auth import required_scope
from services.agency.publish import (
    IDEMPOTENCY_HEADER,
    MAX_IDEMPOTENCY_KEY,
    OVERRIDE_HEADER,
    OVERRIDE_JUSTIFICATION,
    OVERRIDE_ROLE,
    OVERRIDE_ROLE_HEADER,
    OVERRIDE_ROLE_PATTERN,
)

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
ERROR_SHAPES = {
    **{str(code): MESSAGE for code in (400, 401, 403, 404, 415)},
    **{str(code): INPUT_ERRORS for code in (413, 422)},
}
SECURED = {
    401: "no valid API key (Authorization: Bearer <key>)",
    403: "the key belongs to another agency, or lacks the scope this route needs",
}
PUBLISHING = {
    202: "accepted: stored in the outbox, to be published to Kafka (Location names the submission)",
    400: f"a malformed {IDEMPOTENCY_HEADER}, or a body framed by both Content-Length and "
    "Transfer-Encoding",
    413: "the body is over 6 MiB (declared or, chunked, as received), or an event would be "
    "over 900 KiB on Kafka",
    422: "input that cannot be mapped (loc names the field, type the rule; the value is never "
    f"echoed), or an {IDEMPOTENCY_HEADER} used before for a different request",
}
ACCEPTED_HEADERS = {
    "Location": {
        "description": "the submission: GET it to see whether each event is published yet",
        "required": True,
        "schema": {"type": "string", "pattern": "^/submissions/"},
    },
    "Idempotent-Replayed": {
        "description": f"the answer to an earlier request with this {IDEMPOTENCY_HEADER}",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
CHALLENGE = {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}


def _text(length: tuple[int, int]) -> dict[str, Any]:
    return {"type": "string", "minLength": length[0], "maxLength": length[1]}


_HEADERS = [
    (
        IDEMPOTENCY_HEADER,
        "Makes a retry safe: the same key and the same request answer as the first time and "
        "publish nothing more (the answer then has Idempotent-Replayed: true). Printable "
        "ASCII.",
        {**_text((1, MAX_IDEMPOTENCY_KEY)), "pattern": "^[ -~]+$"},
    ),
    (
        OVERRIDE_HEADER,
        "To share without consent to safeguard a child: why, for the protocol, the audit "
        f"trail and IG review. Sent with {OVERRIDE_ROLE_HEADER}.",
        _text(OVERRIDE_JUSTIFICATION),
    ),
    (
        OVERRIDE_ROLE_HEADER,
        f"The role of the practitioner who decided the override; only with {OVERRIDE_HEADER}. "
        "Letters, digits, spaces and - _ . only, beginning with a letter or digit.",
        {**_text(OVERRIDE_ROLE), "pattern": OVERRIDE_ROLE_PATTERN},
    ),
]


def document_agency_api(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _decorate(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _decorate(schema: dict[str, Any]) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    for operations in schema.get("paths", {}).values():
        for method, op in operations.items():
            scope = required_scope(op.get("tags", []))
            if scope is None:
                op.pop("security", None)
                continue
            responses = op.setdefault("responses", {})
            for code, text in SECURED.items():
                responses.setdefault(str(code), {"description": text})
            responses["401"]["headers"] = CHALLENGE
            op["description"] = (op.get("description") or "") + f"\n\nScope: `{scope}`."
            if method == "post":
                _document_publishing(op, responses)
            for code, answer in responses.items():
                if code in ERROR_SHAPES:
                    ref = {"$ref": f"#/components/schemas/{ERROR_SHAPES[code]}"}
                    answer["content"] = {"application/json": {"schema": ref}}


def _document_publishing(op: dict[str, Any], responses: dict[str, Any]) -> None:
    for code, text in PUBLISHING.items():
        responses.setdefault(str(code), {"description": text})
    responses["202"]["headers"] = ACCEPTED_HEADERS
    op.setdefault("parameters", []).extend(
        {"name": n, "in": "header", "required": False, "description": d, "schema": s}
        for n, d, s in _HEADERS
    )
