"""The Authorization Code flow with PKCE (OIDC Core 3.1, RFC 7636) over HTTP: the login page
at ``/authorize`` and the code's exchange for tokens at ``/token``. Thin: the request is
checked by auth_request, passwords by the provider, codes kept by codes.CodeStore."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from deploy.devstack.identity import auth_request, login_page
from deploy.devstack.identity.auth_request import RedirectedError, UnknownClient
from deploy.devstack.identity.clients import load_clients
from deploy.devstack.identity.codes import CodeStore, Grant, verifier_matches
from deploy.devstack.identity.provider import DEFAULT_TTL_S, DevIdentityProvider
from services.backbone.errors import ConfigurationError

FORM = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenError(Exception):
    """A refused token request: its OAuth error code (RFC 6749 5.2)."""


def code_flow_router(provider: DevIdentityProvider, *, clock: Callable[[], float]) -> APIRouter:
    codes = CodeStore(clock)
    router = APIRouter()

    def page(html: str, status: int, redirect_uri: str | None = None) -> HTMLResponse:
        headers = login_page.form_headers(redirect_uri) if redirect_uri else login_page.PAGE_HEADERS
        return HTMLResponse(html, status_code=status, headers=headers)

    def back(uri: str, params: dict[str, str | None], status: int) -> RedirectResponse:
        target = auth_request.redirect_to(uri, {**params, "iss": provider.issuer})
        return RedirectResponse(target, status_code=status, headers=login_page.PAGE_HEADERS)

    def refused(exc: RedirectedError, status: int) -> RedirectResponse:
        params = {"error": exc.error, "error_description": exc.description, "state": exc.state}
        return back(exc.redirect_uri, params, status)

    @router.get("/login.css", include_in_schema=False)
    async def style() -> Response:
        return Response(login_page.STYLE, media_type="text/css")

    @router.get("/authorize", response_class=HTMLResponse, summary="Sign in (the login page)")
    async def authorize(request: Request) -> Response:
        try:
            asked = auth_request.parse(
                request.query_params.multi_items(), load_clients(provider.directory)
            )
        except UnknownClient as exc:
            return page(login_page.refusal(str(exc)), 400)
        except RedirectedError as exc:
            return refused(exc, 302)
        form = login_page.login_form(asked.hidden_fields(), client_id=asked.client_id)
        return page(form, 200, asked.redirect_uri)

    @router.post("/authorize", response_class=HTMLResponse, summary="Sign in (the form)")
    async def sign_in(request: Request) -> Response:
        pairs = await _form(request)
        if pairs is None:
            return page(login_page.refusal("The form sent is not one this page makes."), 400)
        try:
            asked = auth_request.parse(pairs, load_clients(provider.directory))
        except UnknownClient as exc:
            return page(login_page.refusal(str(exc)), 400)
        except RedirectedError as exc:
            return refused(exc, 303)
        values, _ = auth_request.single_values(pairs)
        username, password = values.get("username", ""), values.get("password", "")
        user = await run_in_threadpool(provider.check_password, username, password)
        if user is None:
            form = login_page.login_form(
                asked.hidden_fields(),
                client_id=asked.client_id,
                username=username,
                error=login_page.WRONG_CREDENTIALS,
            )
            return page(form, 401, asked.redirect_uri)
        grant = Grant(
            client_id=asked.client_id,
            redirect_uri=asked.redirect_uri,
            code_challenge=asked.code_challenge,
            nonce=asked.nonce,
            user=user.name,
            auth_time=int(clock()),
        )
        return back(asked.redirect_uri, {"code": codes.issue(grant), "state": asked.state}, 303)

    @router.post("/token", summary="Exchange a code for tokens")
    async def token(request: Request) -> JSONResponse:
        pairs = await _form(request)
        try:
            if pairs is None:
                raise TokenError("invalid_request")
            body = await run_in_threadpool(_exchange, provider, codes, pairs, clock)
        except TokenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400, headers=NO_STORE)
        return JSONResponse(body, headers=NO_STORE)

    return router


async def _form(request: Request) -> list[tuple[str, str]] | None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        return None
    return auth_request.form_pairs(await request.body())


def _exchange(
    provider: DevIdentityProvider,
    codes: CodeStore,
    pairs: list[tuple[str, str]],
    clock: Callable[[], float],
) -> dict[str, Any]:
    """The tokens for a code (RFC 6749 4.1.3, RFC 7636 4.6), or TokenError."""
    values, repeated = auth_request.single_values(pairs)
    if repeated:
        raise TokenError("invalid_request")
    if "grant_type" not in values:
        raise TokenError("invalid_request")
    if values["grant_type"] != "authorization_code":
        raise TokenError("unsupported_grant_type")
    client_id = values.get("client_id", "")
    if client_id not in load_clients(provider.directory):
        raise TokenError("invalid_client")
    if not all(values.get(n) for n in ("code", "redirect_uri", "code_verifier")):
        raise TokenError("invalid_request")
    grant = codes.redeem(values["code"])  # gone now, whatever follows
    if (
        grant is None
        or grant.client_id != client_id
        or grant.redirect_uri != values["redirect_uri"]
        or not verifier_matches(values["code_verifier"], grant.code_challenge)
    ):
        raise TokenError("invalid_grant")
    now = clock()
    extra: dict[str, Any] = {"auth_time": grant.auth_time}
    if grant.nonce is not None:
        extra["nonce"] = grant.nonce
    try:
        id_token = provider.token(grant.user, now=now, audience=client_id, extra_claims=extra)
        # For the client alone, never the services' audience: a page that passes itself off
        # as a client's sign-in gets no token the APIs accept.
        access_token = provider.token(grant.user, now=now, audience=client_id)
    except ConfigurationError:  # the person was removed since they signed in
        raise TokenError("invalid_grant") from None
    return {
        "access_token": access_token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": DEFAULT_TTL_S,
    }
