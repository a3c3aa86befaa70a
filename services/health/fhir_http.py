"""The HTTP edge of the FHIR routes: media type, body size, JSON, and their OpenAPI text.

FHIR R4 JSON is ``application/fhir+json``; ``application/json`` is accepted too, as FHIR
servers commonly do. Anything else is 415. The body is read only after authentication
(the shared app's dependency), so an unauthenticated caller learns nothing about it.

A document nested deeper than :data:`MAX_DEPTH` is refused before FHIR validation, which
recurses once per level and would otherwise fail with RecursionError (a 500).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request, status

from services.backbone.errors import InputRejected, InputTooLarge

FHIR_MEDIA_TYPES = ("application/fhir+json", "application/json")
MAX_BODY_BYTES = 5 * 1024 * 1024  # a Bundle of a day's attendances fits many times over
# Arrays and objects inside one another: a Bundle's contained resources' nested extensions
# reach about 15; FHIR validation recurses about five Python frames a level.
MAX_DEPTH = 64

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


async def fhir_json(request: Request) -> Any:
    """The request's FHIR JSON document: 415 for another media type, 413 when too large,
    422 when it is not JSON (``json_invalid``) or is nested too deeply (``json_depth``)."""
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
    try:
        doc = json.loads(body)
    except RecursionError:
        raise _too_deep() from None
    except ValueError:
        raise InputRejected(["body"], "the body is not valid JSON", "json_invalid") from None
    if _depth(doc) > MAX_DEPTH:
        raise _too_deep()
    return doc


def _too_large() -> InputTooLarge:
    limit = MAX_BODY_BYTES // (1024 * 1024)
    return InputTooLarge(["body"], f"the body is larger than {limit} MiB", "body.too_large")


def _too_deep() -> InputRejected:
    msg = f"the body nests arrays and objects more than {MAX_DEPTH} deep"
    return InputRejected(["body"], msg, "json_depth")


def _depth(doc: Any) -> int:
    """How deeply arrays and objects nest in ``doc`` (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(doc, 1)]
    while stack:
        node, level = stack.pop()
        if not isinstance(node, dict | list):
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:  # one level past the limit is enough to know
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest
