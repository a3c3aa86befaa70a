"""What every console answer carries: a strict Content-Security-Policy (nothing but the
console's own stylesheet and images; no script at all), no caching (the pages name children's
decisions), no framing and no referrer; and the checks every form passes: the session's CSRF
token and, when the browser sends one, an Origin of this console."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.audit.console.sessions import Session

HERE = Path(__file__).parent
STATIC = HERE / "static"
SESSION_COOKIE = "infoshare_console"
SIGN_IN_COOKIE = "infoshare_console_signin"
PREFIX = "/console"

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin: nothing leaves with a link; "no-referrer" would send forms "Origin: null".
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def environment() -> Environment:
    """The pages' templates, every value HTML-escaped unless marked safe."""
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def secured(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(env: Environment, name: str, status: int = 200, **context: Any) -> Response:
    html = env.get_template(name).render(**context)
    return secured(HTMLResponse(html, status_code=status))


def redirect(to: str) -> Response:
    return secured(RedirectResponse(to, status_code=303))


def origin_of(request: Request, public_url: str | None) -> str:
    """The console's own origin: its public URL's when one is set (behind a proxy that ends
    TLS, the request itself arrives over http, perhaps under another Host), else the
    request's."""
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.url.scheme}://{request.url.netloc}"


def set_cookie(response: Response, origin: str, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax (the browser comes back from the identity provider by a
    top-level navigation, which Strict would send without it), Secure over https."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=origin.startswith("https://"),
    )


def forget_cookie(response: Response, origin: str, name: str) -> None:
    response.delete_cookie(
        name, path=PREFIX, httponly=True, samesite="lax", secure=origin.startswith("https://")
    )


def form_allowed(request: Request, origin: str, session: Session, token: str | None) -> bool:
    """A form from this console's own page in this session: its CSRF token, and its Origin
    (browsers send one with every POST) this console's."""
    sent = request.headers.get("origin")
    if sent is not None and sent != origin:
        return False
    # As bytes: compare_digest refuses a str with a character beyond ASCII (a 500).
    return token is not None and secrets.compare_digest(token.encode(), session.csrf.encode())
