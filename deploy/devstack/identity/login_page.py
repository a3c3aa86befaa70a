"""The development identity provider's pages: the login form and the page that refuses a
sign-in request it cannot send back. Server-rendered HTML with labelled fields, no script
and no asset from elsewhere; the one style sheet is the provider's own (``/login.css``), as
the Content-Security-Policy below allows nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import urlsplit

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
WRONG_CREDENTIALS = "The user name or password is wrong."


def form_headers(redirect_uri: str) -> dict[str, str]:
    """The login form's headers: a browser holds a form's redirects to its form-action too
    (CSP 3), so the form may lead on to where the sign-in is sent back, and nowhere else."""
    parts = urlsplit(redirect_uri)
    policy = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}"
    )
    return {**PAGE_HEADERS, "Content-Security-Policy": policy}


STYLE = """\
body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; color: #1b1b1b; background: #f4f4f4; }
main { max-width: 26rem; margin: 3rem auto; padding: 1.5rem 2rem; background: #fff;
       border: 1px solid #b1b4b6; }
h1 { font-size: 1.5rem; margin-top: 0; }
label { display: block; font-weight: 600; }
input { display: block; width: 100%; box-sizing: border-box; padding: .4rem;
        font: inherit; border: 2px solid #0b0c0c; }
input:focus, button:focus { outline: 3px solid #fd0; outline-offset: 0; }
button { font: inherit; padding: .5rem 1.2rem; background: #00703c; color: #fff;
         border: 0; cursor: pointer; }
.error { border-left: 5px solid #d4351c; padding-left: .8rem; color: #d4351c;
         font-weight: 600; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="stylesheet" href="login.css">\n</head>\n'
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def login_form(
    hidden: Mapping[str, str], *, client_id: str, username: str = "", error: str | None = None
) -> str:
    """The login form: user name, password, and the authorization request's parameters in
    hidden fields (``hidden``), posted back to ``authorize``."""
    described = ' aria-describedby="error" aria-invalid="true"' if error else ""
    alert = f'<p class="error" id="error" role="alert">{escape(error)}</p>\n' if error else ""
    fields = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">\n'
        for name, value in hidden.items()
    )
    body = (
        "<h1>Sign in to infoshare</h1>\n"
        f"<p>Development identity provider. Signing in to <strong>{escape(client_id)}"
        "</strong>.</p>\n"
        f"{alert}"
        '<form method="post" action="authorize">\n'
        f"{fields}"
        '<p><label for="username">User name</label>\n'
        f'<input id="username" name="username" type="text" value="{escape(username)}"'
        ' autocomplete="username" autocapitalize="none" spellcheck="false" required'
        f"{described}></p>\n"
        '<p><label for="password">Password</label>\n'
        '<input id="password" name="password" type="password"'
        f' autocomplete="current-password" required{described}></p>\n'
        '<p><button type="submit">Sign in</button></p>\n'
        "</form>\n"
    )
    return _page("Sign in: infoshare development identity provider", body)


def refusal(message: str) -> str:
    """The page for a request that cannot be answered at its redirect URI (an unknown
    client, or a redirect URI it did not register): OIDC Core 3.1.2.6 forbids redirecting."""
    body = (
        "<h1>This sign-in request cannot be used</h1>\n"
        f'<p class="error" role="alert">{escape(message)}</p>\n'
        "<p>Go back to the application and start again; if this happens again, its client "
        "registration is wrong (<code>infoshare users client</code>).</p>\n"
    )
    return _page("Sign-in request refused: infoshare development identity provider", body)
