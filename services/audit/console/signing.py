"""Signing in and out of the console: the browser is sent to the identity provider with a
sign-in begun here (signin.py), comes back with a code, and leaves with a session cookie if
the ID token names an IG officer."""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response

from services.audit.console import web
from services.audit.console.base import Console, FormRefused, P
from services.audit.console.sessions import SIGN_IN_S
from services.audit.console.signin import Client, OidcSignIn, SignInFailed
from services.backbone.people import PeopleConfig, PeopleVerifier, PersonRole


@dataclass(frozen=True)
class SignInOptions:
    client_id: str | None = None  # default: the audience people's tokens name
    client_secret: str | None = None
    public_url: str | None = None  # default: the URL the request came in on
    max_s: float = 8 * 3600.0


def add_signing_routes(
    app: FastAPI, console: Console, people: PeopleVerifier | None, options: SignInOptions
) -> None:
    signin = _signin(people, options) if people is not None else None
    sessions = console.sessions

    def callback_url(request: Request) -> str:
        base = options.public_url or str(request.base_url)
        return base.rstrip("/") + f"{P}/callback"

    @app.exception_handler(FormRefused)
    async def refused(_request: Request, _exc: FormRefused) -> Response:
        return console.problem(
            None,
            403,
            "Form refused",
            "This form did not come from your current console session (it may be from an "
            "older page or another site). Open the page again and resend it.",
        )

    @app.get(P, include_in_schema=False)
    def home() -> Response:
        return web.redirect(f"{P}/search")

    @app.get(f"{P}/static/console.css", include_in_schema=False)
    def stylesheet() -> Response:
        return web.secured(FileResponse(web.STATIC / "console.css", media_type="text/css"))

    @app.get(f"{P}/signin", include_in_schema=False)
    def begin(request: Request) -> Response:
        if signin is None:
            return console.problem(
                None,
                503,
                "No identity provider",
                "This service has no identity provider configured (INFOSHARE_OIDC_ISSUER).",
            )
        key, started = sessions.begin_sign_in()
        try:
            to = signin.authorization_url(started, callback_url(request))
        except SignInFailed as exc:
            return console.problem(None, 502, "Sign-in unavailable", str(exc))
        response = web.redirect(to)
        web.set_cookie(response, console.origin(request), web.SIGN_IN_COOKIE, key, int(SIGN_IN_S))
        return response

    @app.get(f"{P}/callback", include_in_schema=False)
    def finish(
        request: Request,
        code: str | None = None,
        state: str | None = None,
        error: str | None = None,
    ) -> Response:
        started = sessions.finish_sign_in(request.cookies.get(web.SIGN_IN_COOKIE), state or "")
        if error is not None:  # the provider's answer (RFC 6749 4.1.2.1): its code only
            said = error[:64] if error.replace("_", "").isalnum() else "an error"
            return console.problem(
                None,
                401,
                "Sign-in not completed",
                f"The identity provider said {said}.",
                again=True,
            )
        if signin is None or started is None or not code:
            return console.problem(
                None,
                400,
                "Sign-in not completed",
                "This sign-in was not begun here, was used already, or took too long.",
                again=True,
            )
        try:
            person = signin.finish(started, code, callback_url(request))
        except SignInFailed as exc:
            return console.problem(None, 401, "Sign-in failed", str(exc), again=True)
        if PersonRole.IG_OFFICER not in person.roles:
            return console.problem(
                None,
                403,
                "Not for your role",
                "The console is for information governance officers (the ig_officer role).",
            )
        origin = console.origin(request)
        sessions.close(request.cookies.get(web.SESSION_COOKIE))  # one session a browser
        response = web.redirect(f"{P}/search")
        web.forget_cookie(response, origin, web.SIGN_IN_COOKIE)
        web.set_cookie(
            response, origin, web.SESSION_COOKIE, sessions.open(person), int(options.max_s)
        )
        return response

    @app.post(f"{P}/signout", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        session, _ = await console.posted(request)  # a form not this session's: refused
        if session is not None:
            sessions.close(request.cookies.get(web.SESSION_COOKIE))
        response = web.redirect(f"{P}/signed-out")
        web.forget_cookie(response, console.origin(request), web.SESSION_COOKIE)
        return response

    @app.get(f"{P}/signed-out", include_in_schema=False)
    def signed_out() -> Response:
        return console.show("signed_out.html", None)


def _signin(people: PeopleVerifier, options: SignInOptions) -> OidcSignIn:
    """The ID token names this client as its audience: verified as people's tokens are,
    with that audience."""
    client_id = options.client_id or people.config.audience
    verifier = people
    if client_id != people.config.audience:
        config: PeopleConfig = replace(people.config, audience=client_id)
        verifier = PeopleVerifier(config)
    return OidcSignIn(verifier, Client(client_id, options.client_secret))
