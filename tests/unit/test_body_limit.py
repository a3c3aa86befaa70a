"""The shared body bounds (services/backbone/body_limit.py) around a small app: a declared
length over the limit and a length beside a chunked body are refused before the app is
called; a chunked body is counted as it arrives and refused at the limit, unread beyond;
JSON nested past the limit is refused with the chunk that goes too deep, however the body is
cut into chunks; and no refusal quotes the body."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.backbone.body_limit import BodyLimit, JsonDepth
from tests.bodies import SECRET, Pieces

LIMIT = 64 * 1024
PIECE = 4 * 1024


def _app(calls: list[int]) -> BodyLimit:
    async def echo_length(request: Request) -> JSONResponse:
        calls.append(1)
        return JSONResponse({"read": len(await request.body())})

    inner = Starlette(routes=[Route("/", echo_length, methods=["POST"])])
    return BodyLimit(inner, max_bytes=LIMIT, max_json_depth=8)


async def _post(calls: list[int], **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(calls))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.post("/", **kwargs)


def _assert_refusal(response: httpx.Response, status: int, rule: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["detail"] == [
        {"loc": ["body"], "msg": response.json()["detail"][0]["msg"], "type": rule}
    ]
    assert SECRET.decode() not in response.text
    assert response.headers["connection"] == "close"


async def test_a_declared_length_over_the_limit_is_refused_before_the_app_is_called() -> None:
    calls: list[int] = []
    pieces = Pieces(LIMIT + 1, size=PIECE)
    response = await _post(
        calls, content=pieces, headers={"content-length": str(LIMIT + 1), "content-type": "x/y"}
    )
    _assert_refusal(response, 413, "body.too_large")
    assert response.json()["detail"][0]["msg"] == "the body is over 64 KiB"
    assert calls == [] and pieces.sent == 0


async def test_a_length_beside_a_chunked_body_is_refused_unread() -> None:
    calls: list[int] = []
    pieces = Pieces(10 * LIMIT, size=PIECE)
    response = await _post(
        calls,
        content=pieces,
        headers={"content-length": "10", "transfer-encoding": "chunked", "content-type": "x/y"},
    )
    assert response.status_code == 400
    assert "Content-Length" in response.json()["detail"]
    assert calls == [] and pieces.sent == 0


@pytest.mark.parametrize("length", ["-1", "1e3", "abc"])
async def test_a_length_that_is_not_a_count_of_bytes_is_refused(length: str) -> None:
    calls: list[int] = []
    response = await _post(calls, content=b"", headers={"content-length": length})
    assert response.status_code == 400 and calls == []


async def test_a_chunked_body_is_counted_and_refused_at_the_limit_unread_beyond() -> None:
    calls: list[int] = []
    pieces = Pieces(10 * LIMIT, size=PIECE)
    response = await _post(calls, content=pieces, headers={"content-type": "x/y"})
    _assert_refusal(response, 413, "body.too_large")
    assert pieces.sent == LIMIT // PIECE + 1  # the piece that crossed the limit, no more


async def test_a_chunked_body_within_the_limit_reaches_the_app_whole() -> None:
    calls: list[int] = []
    response = await _post(
        calls, content=Pieces(LIMIT, size=PIECE), headers={"content-type": "x/y"}
    )
    assert response.status_code == 200 and response.json() == {"read": LIMIT}


@pytest.mark.parametrize("media", [None, "application/json", "application/fhir+json"])
async def test_json_nested_past_the_limit_is_refused_as_it_arrives(media: str | None) -> None:
    calls: list[int] = []
    deep = b'{"a":' * 9 + b"1" + b"}" * 9
    headers = {"content-type": media} if media else {}
    response = await _post(calls, content=deep, headers=headers)
    _assert_refusal(response, 422, "json_depth")
    assert response.json()["detail"][0]["msg"] == (
        "the body nests arrays and objects more than 8 deep"
    )
    fits = await _post(calls, content=b"[" * 8 + b"]" * 8, headers=headers)
    assert fits.status_code == 200


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32", "utf-32-be"])
async def test_json_in_another_encoding_than_utf8_is_refused_unmeasured(encoding: str) -> None:
    """A parser would guess UTF-16 or UTF-32 and read brackets the byte scanner cannot see:
    such a body is refused, however shallow, and the application never reads it."""
    calls: list[int] = []
    deep = ('{"a":' * 9 + '"' + SECRET.decode() + '"' + "}" * 9).encode(encoding)
    assert json.loads(deep)  # what a parser left to guess would have accepted
    _assert_refusal(await _post(calls, content=deep), 422, "json_encoding")
    shallow = json.dumps({"a": 1}).encode(encoding)
    _assert_refusal(await _post(calls, content=shallow), 422, "json_encoding")
    utf8 = await _post(calls, content=json.dumps({"a": "é"}, ensure_ascii=False).encode())
    assert utf8.status_code == 200


async def test_brackets_in_other_media_types_and_in_strings_are_not_nesting() -> None:
    calls: list[int] = []
    csv = await _post(calls, content=b"[" * 100, headers={"content-type": "text/csv"})
    assert csv.status_code == 200
    quoted = json.dumps({"a": "[{" * 100 + '\\"[[[['}).encode()
    assert (await _post(calls, content=quoted)).status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=4), inner, max_size=3)
    ),
    max_leaves=20,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


@given(value=json_values, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6))
@settings(max_examples=300, deadline=None)
def test_the_depth_is_found_however_the_text_is_cut(value: Any, cuts: list[int]) -> None:
    text = json.dumps(value, ensure_ascii=False).encode()
    bounds = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    chunks = [text[a:b] for a, b in pairwise(bounds)]
    depth = _depth(value)
    for limit, expected in ((depth, False), (depth - 1, depth > 0)):
        scanner = JsonDepth(limit)
        assert any(scanner.too_deep(c) for c in chunks) is expected, (text, limit)


# Escaped quotes and backslashes, and brackets inside strings, where a cut falls between a
# backslash and what it escapes, or inside a run of backslashes.
TRICKY: list[Any] = [
    {'a"[': ["]\\"], "{": "}}"},
    ["\\", ['"]]', [["\\\\"]]], '"'],
    {'\\\\"{': [[["x"]]], "": ['\\"', {"]": "["}]},
]


@pytest.mark.parametrize("value", TRICKY)
def test_the_depth_is_found_for_every_cut_into_three_chunks(value: Any) -> None:
    text = json.dumps(value).encode()
    depth = _depth(value)
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            chunks = [text[:first], text[first:second], text[second:]]
            for limit, expected in ((depth, False), (depth - 1, True)):
                scanner = JsonDepth(limit)
                assert any(scanner.too_deep(c) for c in chunks) is expected, (chunks, limit)
