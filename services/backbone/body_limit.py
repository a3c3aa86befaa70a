"""Every HTTP service's bounds on a request body, kept as the body arrives and before the
application has read more than the limit: ASGI middleware, so no route (and no framework
code that reads a body before any dependency runs) can take more than it allows.

- A body declared (``Content-Length``) over the limit is refused (413) unread.
- ``Content-Length`` with ``Transfer-Encoding`` is refused (400): a server and a proxy in
  front of it may frame such a body differently (request smuggling), and a gate that trusts
  the length would let an unbounded chunked body past.
- A body of no declared length (chunked) is counted as it is received: once past the limit
  the application is given nothing more and the answer is 413.
- A JSON body (what FastAPI parses as JSON: no media type, ``application/json`` or
  ``application/*+json``) nesting arrays and objects deeper than allowed is refused (422
  ``json_depth``) with the chunk where it goes too deep, before any parser recurses into it.

Refusals carry ``{"detail": [{"loc", "msg", "type"}]}`` (400: ``{"detail": msg}``), never a
byte of the body, and close the connection: what the client still sends is not read.
"""

from __future__ import annotations

from itertools import accumulate
from operator import sub
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.backbone.errors import BackboneError

MAX_JSON_DEPTH = 32
"""Arrays and objects inside one another, by default: request bodies of these APIs nest a
handful deep."""

# Scanning JSON just enough to tell strings from the rest, in bytes' C methods (each linear,
# whatever the input), never a Python loop per byte: escapes (a backslash and the byte it
# escapes) go first, then everything but brackets and
# quotes; what is left between two quotes was a string. Quotes paired side by side left to
# right are each a string's two until the first quote left unpaired: if none is left, every
# pair was one string's.
_NOT_SCANNED = bytes(set(range(256)) - set(b'[]{}"'))
_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def size_text(limit: int) -> str:
    """A byte count as people say it: 6 MiB, 64 KiB, 100 bytes."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


async def answer_json(
    send: Send, status: int, body: object, headers: dict[str, str] | None = None
) -> None:
    """Answer a request from middleware, with a JSON body."""
    content = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


class JsonDepth:
    """How deeply the JSON text fed so far nests arrays and objects, across chunks cut
    anywhere (strings and their escapes skipped). It does not check that the text is JSON:
    the parser does, once the depth is known to be safe. (A backslash outside a string
    is not JSON: the parser stops there, before any bracket the scan may then miscount.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.depth = 0
        self._in_string = False
        self._escaped = False  # the last chunk ended on a backslash inside a string

    def too_deep(self, chunk: bytes) -> bool:
        """Feed the next chunk: True once the nesting has gone past the limit."""
        if not chunk:
            return False
        if self._escaped:  # the last chunk ended on a backslash inside a string
            chunk, self._escaped = chunk[1:], False
        ends_escaping = False
        if b"\\" in chunk:
            # Escaped backslashes go first, pairs taken left to right as a run of them
            # pairs; then escaped quotes. Any other escaped byte is neither a quote nor a
            # bracket in JSON. A backslash left as the chunk's last byte escapes the next
            # chunk's first (inside a string; outside one, the text is not JSON).
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
            ends_escaping = chunk.endswith(b"\\")
        scanned = chunk.translate(None, _NOT_SCANNED)
        if self._in_string:
            scanned = b'"' + scanned
        # Quotes alternate, opening and closing a string: an odd count, and the last
        # opens one that goes on into the next chunk.
        quotes = scanned.count(b'"')
        self._in_string = quotes % 2 == 1
        self._escaped = ends_escaping and self._in_string
        closed = scanned[: scanned.rindex(b'"')] if self._in_string else scanned
        # Most strings hold no bracket: each is then two quotes side by side.
        outside = closed.replace(b'""', b"")
        if b'"' in outside:  # a string holds a bracket: take every other piece instead
            outside = b"".join(closed.split(b'"')[0::2])
        return self._nest(outside)

    def _nest(self, brackets: bytes) -> bool:
        closing = brackets.count(b"]") + brackets.count(b"}")
        opening = len(brackets) - closing
        if brackets and self.depth + opening > self.limit:  # it might: find how deep it goes
            # Depth after each bracket, relative to here: 2 per opening, 0 per closing,
            # summed, less one per bracket so far; in C loops, not Python's.
            summed = accumulate(brackets.translate(_STEPS))
            if self.depth + max(map(sub, summed, range(1, len(brackets) + 1))) > self.limit:
                return True
        self.depth += opening - closing
        return False


def _is_json(headers: dict[bytes, list[bytes]]) -> bool:
    media = b"".join(headers.get(b"content-type", [])[:1]).split(b";")[0].strip().lower()
    return media in (b"", b"application/json") or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class _Refused(BackboneError):
    """The body broke a bound: the application's receive() stops here."""


class BodyLimit:
    """ASGI middleware bounding each request's body to ``max_bytes`` and, for JSON, its
    nesting to ``max_json_depth``."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_json_depth: int = MAX_JSON_DEPTH
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, list[bytes]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), []).append(value.strip())
        refusal = self._framing_refusal(headers)
        if refusal is not None:
            await answer_json(send, *refusal, {"connection": "close"})
            return
        body = _Bounded(
            receive,
            max_bytes=self.max_bytes,
            depth=JsonDepth(self.max_json_depth) if _is_json(headers) else None,
        )
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if body.refusal is not None:
                return  # the application's answer to a body it was never given whole
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, body.receive, guarded)
        except Exception:
            if body.refusal is None:
                raise
        if body.refusal is not None and not started:
            await answer_json(send, *body.refusal, {"connection": "close"})

    def _framing_refusal(self, headers: dict[bytes, list[bytes]]) -> tuple[int, Any] | None:
        lengths = set(headers.get(b"content-length", []))
        if not lengths:
            return None
        if b"transfer-encoding" in headers:
            return 400, {
                "detail": "a request may not carry both Content-Length and Transfer-Encoding"
            }
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            return 400, {"detail": "Content-Length must be one number of bytes"}
        if int(next(iter(lengths))) > self.max_bytes:
            return _too_large(self.max_bytes)
        return None


def _too_large(limit: int) -> tuple[int, Any]:
    msg = f"the body is over {size_text(limit)}"
    return 413, {"detail": [{"loc": ["body"], "msg": msg, "type": "body.too_large"}]}


class _Bounded:
    """The request's receive(), counting and scanning what it hands on."""

    def __init__(self, receive: Receive, *, max_bytes: int, depth: JsonDepth | None) -> None:
        self._receive = receive
        self.max_bytes = max_bytes
        self.received = 0
        self.depth = depth
        self.refusal: tuple[int, Any] | None = None

    async def receive(self) -> Message:
        if self.refusal is not None:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk: bytes = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.max_bytes:
            self.refusal = _too_large(self.max_bytes)
            raise _Refused
        if self.depth is not None and b"\x00" in chunk:
            # JSON between systems is UTF-8 (RFC 8259, 8.1), where a NUL byte can never
            # appear (a NUL in a string is written \u0000). UTF-16 and UTF-32 are full of
            # them: a parser that guesses the encoding must not be handed text this scanner,
            # which reads bytes, could not measure.
            msg = "a JSON body is UTF-8 text (RFC 8259); this one holds NUL bytes"
            self.refusal = 422, {"detail": [{"loc": ["body"], "msg": msg, "type": "json_encoding"}]}
            raise _Refused
        if self.depth is not None and self.depth.too_deep(chunk):
            msg = f"the body nests arrays and objects more than {self.depth.limit} deep"
            self.refusal = 422, {"detail": [{"loc": ["body"], "msg": msg, "type": "json_depth"}]}
            raise _Refused
        return message


__all__ = ["MAX_JSON_DEPTH", "BodyLimit", "JsonDepth", "answer_json", "size_text"]
