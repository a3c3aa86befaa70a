"""The HTTP edge of the FHIR routes: media type, body size, JSON, and their OpenAPI text.

FHIR R4 JSON is ``application/fhir+json``; ``application/json`` is accepted too, as FHIR
servers commonly do. Anything else is 415. The body is read only after authentication
(the shared app's dependency), so an unauthenticated caller learns nothing about it.

A document nested deeper than :data:`MAX_DEPTH` is refused before FHIR validation, which
recurses once per level and would otherwise fail with RecursionError (a 500): the
body becomes a document in fhir_parse, where a worker process can do it too.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Request, status

from services.backbone.errors import InputTooLarge
from services.health.fhir_parse import MAX_DEPTH, json_document

FHIR_MEDIA_TYPES = ("application/fhir+json", "application/json")
MAX_BODY_BYTES = 5 * 1024 * 1024  # a Bundle of a day's attendances fits many times over
__all__ = ["ERRORS", "MAX_BODY_BYTES", "MAX_DEPTH", "fhir_body", "fhir_json", "request_body"]

ERRORS: dict[int | str, dict[str, Any]] = {
    status.HTTP_413_CONTENT_TOO_LARGE: {
        "description": f"the body is over {MAX_BODY_BYTES // (1024 * 1024)} MiB: send a "
        "smaller Bundle",
    },
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {
        "description": "Content-Type is not application/fhir+json or application/json",
    },
}


def request_body(resource_type: str, description: str) -> dict[str, Any]:
    """The OpenAPI requestBody of a route that reads FHIR JSON itself."""
    schema = {
        "type": "object",
        "required": ["resourceType"],
        "properties": {"resourceType": {"const": resource_type}},
        "description": description,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {media: {"schema": schema} for media in FHIR_MEDIA_TYPES},
        }
    }


async def fhir_body(request: Request) -> bytes:
    """The request's body, once its media type and size are FHIR JSON's: 415 for another
    media type, 413 when too large. :func:`json_document` makes it a document."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in FHIR_MEDIA_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send FHIR R4 JSON with Content-Type: application/fhir+json "
            "(or application/json)",
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise _too_large()
    return body


async def fhir_json(request: Request) -> Any:
    """The request's FHIR JSON document: :func:`fhir_body`'s refusals, and 422 when it is
    not JSON (``json_invalid``) or is nested too deeply (``json_depth``)."""
    return json_document(await fhir_body(request))


def _too_large() -> InputTooLarge:
    limit = MAX_BODY_BYTES // (1024 * 1024)
    return InputTooLarge(["body"], f"the body is larger than {limit} MiB", "body.too_large")
