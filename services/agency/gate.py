"""The agency services' front gate, before any route reads a body: a request for anything
but health and the API documents needs a key of this service's agency (401 / 403). The
body's bounds (6 MiB, chunked or not; no Content-Length with Transfer-Encoding; JSON
nesting) are kept by the shared :class:`~services.backbone.body_limit.BodyLimit`, inside
this gate, so nothing is read from a caller without the key. The routes' own dependency
then checks the scope the route needs."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.backbone.api_keys import AgencyCredential
from services.backbone.body_limit import answer_json

OPEN_PATHS = frozenset(
    {"/healthz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
)
MAX_BODY_BYTES = 6 * 1024 * 1024  # the largest native input (a 5 MiB export) and its framing
MAX_JSON_DEPTH = 64  # a FHIR Bundle's nested extensions reach about 15 (health/fhir_parse.py)


class AgencyGate:
    def __init__(
        self, app: ASGIApp, *, agency: str, lookup: Callable[[str], AgencyCredential | None]
    ) -> None:
        self.app = app
        self.agency = agency
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        found = self.lookup(token) if scheme.lower() == "bearer" and token else None
        if found is None:
            await answer_json(
                send,
                401,
                {"detail": "a valid API key is required (Authorization: Bearer <key>)"},
                {"www-authenticate": "Bearer"},
            )
            return
        if found.agency != self.agency:
            await answer_json(send, 403, {"detail": "this key belongs to another agency"})
            return
        scope.setdefault("state", {})["caller"] = found  # request.state.caller, for the scope
        await self.app(scope, receive, send)
