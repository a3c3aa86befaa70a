"""Who may send a body, checked before a byte of it is read: FastAPI reads and parses a
request's body before any dependency runs, so a route's own bearer check comes after the
parse. A request that carries a body needs a bearer token one of the service's callers
holds, or it is answered 401 unread; an unauthenticated caller learns nothing of the input
rules and costs no parsing. The route then checks who exactly may call it (401 / 403)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from services.backbone.body_limit import answer_json


class CallerGate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        known: Callable[[str], Awaitable[bool]],
        open_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.known = known
        # Paths whose routes take bodies without a bearer token and check the caller
        # themselves before using any of it (the IG console's forms, by session cookie).
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not _carries_body(scope)
            or str(scope["path"]).startswith(self.open_prefixes)
            or await self._admitted(scope)
        ):
            await self.app(scope, receive, send)
            return
        await answer_json(
            send,
            401,
            {"detail": "a valid bearer token is required"},
            {"www-authenticate": "Bearer", "connection": "close"},
        )

    async def _admitted(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name.lower() == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                return scheme.lower() == "bearer" and bool(token) and await self.known(token)
        return False


def _carries_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        name = name.lower()
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


__all__ = ["CallerGate"]
