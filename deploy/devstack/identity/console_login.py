"""Signing a starter person in to the IG console without a browser, through the provider's
own login form (the demo's check that the console answers; the tests drive the same form):
the console sends the browser to the provider, the person's password goes into the form, the
provider sends the browser back with a code."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx

from deploy.devstack.identity.provider import starter_logins

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def login_fields(page: str, name: str, password: str) -> dict[str, str]:
    """What the provider's login form posts for ``name``: its hidden fields (the request's
    parameters) and the credentials."""
    fields = {k: unescape(v) for k, v in _HIDDEN.findall(page)}
    return {**fields, "username": name, "password": password}


def sign_in(console: httpx.Client, identity_dir: Path, name: str) -> httpx.Response:
    """Sign starter person ``name`` in to the console ``console`` reaches (its cookies
    kept); the console's last answer (a 303 to its search page when signed in)."""
    begun = console.get("/console/signin")
    if begun.status_code != 303:
        raise RuntimeError(f"the console did not begin a sign-in ({begun.status_code})")
    with httpx.Client(timeout=30) as idp:
        form = idp.get(begun.headers["location"])
        password = starter_logins(identity_dir)[name]
        posted = idp.post(str(form.url).split("?")[0], data=login_fields(form.text, name, password))
    if posted.status_code != 303:
        raise RuntimeError(f"the identity provider refused the sign-in ({posted.status_code})")
    back = httpx.URL(posted.headers["location"])
    return console.get(back.path, params=dict(back.params))
