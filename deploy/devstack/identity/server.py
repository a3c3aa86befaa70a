"""The embedded identity provider's public face: its OpenID configuration and JWKS, all a
service needs to verify people's tokens. It issues nothing over HTTP (``infoshare users
token`` signs on the operator's machine), so it holds nothing a caller could take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from deploy.devstack.identity.provider import DevIdentityProvider


def create_app(directory: Path) -> FastAPI:
    provider = DevIdentityProvider(directory)
    app = FastAPI(
        title="infoshare: development identity provider",
        description="OpenID configuration and JWKS of the embedded identity provider "
        "(development and demo only; production uses the organisation's).",
        version="0.1.0",
    )

    @app.get("/.well-known/openid-configuration", summary="OpenID Provider configuration")
    async def configuration() -> dict[str, Any]:
        return provider.openid_configuration()

    @app.get("/jwks.json", summary="The keys that verify its tokens")
    async def jwks() -> dict[str, Any]:
        return provider.jwks()

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
