"""The agency services' part of their OpenAPI document: the scope each secured operation
needs, and the headers and answers every publishing route shares, written into each
operation so that an integrator (and schemathesis) sees them. The answers every service
shares (401, 403, 400, 413, 422 and the error bodies) are added by
``services.backbone.openapi_responses``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

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
from services.backbone.openapi_responses import Document, add_openapi_step, answer

PUBLISHING = {
    202: "accepted: stored in the outbox, to be published to Kafka (Location names the submission)",
    400: f"a malformed {IDEMPOTENCY_HEADER}",
    409: "another request amended the same record at the same moment: send this one again",
    413: "an event would be over 900 KiB on Kafka",
    422: f"an {IDEMPOTENCY_HEADER} used before for a different request",
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
    add_openapi_step(app, _decorate)


def _decorate(schema: Document) -> None:
    for operations in schema.get("paths", {}).values():
        for method, op in operations.items():
            scope = required_scope(op.get("tags", []))
            if scope is None:  # the app-wide key dependency declares a scheme it never asks
                op.pop("security", None)
                continue
            op["description"] = (op.get("description") or "") + f"\n\nScope: `{scope}`."
            if method == "post":
                _document_publishing(op)


def _document_publishing(op: dict[str, Any]) -> None:
    for code, text in PUBLISHING.items():
        answer(op, code, text)
    op["responses"]["202"]["headers"] = ACCEPTED_HEADERS
    op.setdefault("parameters", []).extend(
        {"name": n, "in": "header", "required": False, "description": d, "schema": s}
        for n, d, s in _HEADERS
    )
