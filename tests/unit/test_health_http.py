"""The FHIR routes' body rules: FHIR JSON media types only (415), a size limit (413), and
JSON that does not parse, or nests too deeply to validate, refused as 422. Requests are
built in memory."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from services.backbone.errors import InputRejected, InputTooLarge
from services.health.fhir_http import MAX_BODY_BYTES, MAX_DEPTH, fhir_json


def request(body: bytes, content_type: str | None, length: int | None = None) -> Request:
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    headers.append((b"content-length", str(len(body) if length is None else length).encode()))
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {"type": "http", "method": "POST", "path": "/fhir", "headers": headers}
    return Request(scope, receive)


def read(req: Request) -> Any:
    return asyncio.run(fhir_json(req))


@pytest.mark.parametrize(
    "content_type",
    ["application/fhir+json", "application/json", "application/fhir+json; charset=utf-8"],
)
def test_fhir_json_is_read(content_type: str) -> None:
    assert read(request(b'{"resourceType": "Bundle"}', content_type)) == {"resourceType": "Bundle"}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "application/fhir+xml"]
)
def test_another_media_type_is_415(content_type: str | None) -> None:
    with pytest.raises(HTTPException) as info:
        read(request(b"<Bundle/>", content_type))
    assert info.value.status_code == 415


def test_an_over_large_body_is_413_before_it_is_read() -> None:
    with pytest.raises(InputTooLarge) as info:
        read(request(b"{}", "application/fhir+json", length=MAX_BODY_BYTES + 1))
    assert (info.value.loc, info.value.rule) == (["body"], "body.too_large")


def test_a_body_larger_than_it_said_is_413() -> None:
    body = b'{"a": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with pytest.raises(InputTooLarge):
        read(request(body, "application/fhir+json", length=2))


@pytest.mark.parametrize("body", [b"", b"{", b'{"nhs": 9990000123', b"\xff\xfe"])
def test_a_body_that_is_not_json_is_refused_without_echoing_it(body: bytes) -> None:
    with pytest.raises(InputRejected) as info:
        read(request(body, "application/fhir+json"))
    assert (info.value.loc, info.value.rule) == (["body"], "json_invalid")
    assert "9990000123" not in info.value.msg


def nested(depth: int) -> bytes:
    """A Flag whose extension nests ``depth`` arrays and objects in all."""
    inner = b"[" * (depth - 1) + b"]" * (depth - 1)
    return b'{"resourceType": "Flag", "extension": %s}' % inner


def test_a_document_as_deep_as_the_limit_is_read() -> None:
    assert read(request(nested(MAX_DEPTH), "application/fhir+json"))["resourceType"] == "Flag"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_a_document_nested_too_deeply_is_refused_not_a_recursion_error(depth: int) -> None:
    """FHIR validation recurses once per level: past the limit it would be a 500."""
    with pytest.raises(InputRejected) as info:
        read(request(nested(depth), "application/fhir+json"))
    assert (info.value.loc, info.value.rule) == (["body"], "json_depth")
