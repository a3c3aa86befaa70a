"""The agency services' front gate, before any route reads a body: a request for anything
but health and the API documents needs a key of this service's agency (401 / 403), and a
body must say its length (411; agencies' systems and curl do) and not be over the limit
(413), so no body is read into memory unbounded. The routes' own dependency then checks
the scope the route needs."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from services.backbone.api_keys import AgencyCredential

OPEN_PATHS = frozenset(
    {"/healthz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
MAX_BODY_BYTES = 6 * 1024 * 1024  # the largest native input (a 5 MiB export) and its framing


class AgencyGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        agency: str,
        lookup: Callable[[str], AgencyCredential | None],
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.agency = agency
        self.lookup = lookup
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        found = self.lookup(token) if scheme.lower() == "bearer" and token else None
        refusal = self._refusal(found, headers)
        if refusal is not None:
            status, detail, extra = refusal
            await _answer(send, status, {"detail": detail}, extra)
            return
        scope.setdefault("state", {})["caller"] = found  # request.state.caller, for the scope
        await self.app(scope, receive, send)

    def _refusal(
        self, found: AgencyCredential | None, headers: dict[str, str]
    ) -> tuple[int, object, dict[str, str]] | None:
        if found is None:
            return (
                401,
                "a valid API key is required (Authorization: Bearer <key>)",
                {"www-authenticate": "Bearer"},
            )
        if found.agency != self.agency:
            return 403, "this key belongs to another agency", {}
        declared = headers.get("content-length", "")
        if not declared.isdigit() and "transfer-encoding" in headers:
            return 411, "send the body with a Content-Length", {}
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            limit = f"the body is over {self.max_body_bytes // (1024 * 1024)} MiB"
            return 413, [{"loc": ["body"], "msg": limit, "type": "body.too_large"}], {}
        return None


async def _answer(send: Send, status: int, body: object, extra: dict[str, str]) -> None:
    content = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(content)).encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
