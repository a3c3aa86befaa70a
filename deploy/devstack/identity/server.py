"""The embedded identity provider's public face: its OpenID configuration and JWKS, all a
service needs to verify people's tokens, and the Authorization Code flow with PKCE that
signs a person in to a browser application (authorize.py). ``infoshare users token`` signs
on the operator's machine instead, without a password."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from deploy.devstack.identity.authorize import code_flow_router
from deploy.devstack.identity.provider import DevIdentityProvider


def create_app(directory: Path, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """The provider in ``directory`` as a web app; ``clock`` (seconds since the epoch)
    dates its codes and tokens."""
    provider = DevIdentityProvider(directory)
    app = FastAPI(
        title="infoshare: development identity provider",
        description="OpenID configuration, JWKS and sign-in (Authorization Code with PKCE) "
        "of the embedded identity provider (development and demo only; production uses the "
        "organisation's).",
        version="0.1.0",
    )

    @app.get("/.well-known/openid-configuration", summary="OpenID Provider configuration")
    async def configuration() -> dict[str, Any]:
        return provider.openid_configuration()

    @app.get("/jwks.json", summary="The keys that verify its tokens")
    async def jwks() -> dict[str, Any]:
        return provider.jwks()

    app.include_router(code_flow_router(provider, clock=clock))

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
