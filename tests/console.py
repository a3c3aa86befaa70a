"""The IG console for tests: its OAuth client registered at the worker's identity provider,
and a sign-in through the provider's real login form over HTTP (the browser tests sign in
by typing into it instead)."""

from __future__ import annotations

import re
from html import unescape

import httpx

from deploy.devstack.identity.clients import register_client
from deploy.devstack.identity.provider import starter_logins
from tests.people import People

CLIENT_ID = "infoshare-ig-console"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def register_console(people: People) -> str:
    """Register the console as a client of ``people``'s provider (any loopback port)."""
    register_client(people.provider.directory, CLIENT_ID, ["http://127.0.0.1/console/callback"])
    return CLIENT_ID


def password(people: People, name: str) -> str:
    return starter_logins(people.provider.directory)[name]


async def sign_in(console: httpx.AsyncClient, people: People, name: str) -> httpx.Response:
    """Sign ``name`` in to ``console`` (its cookies kept): the console sends the browser to
    the provider, the person types their password into its form, the provider sends the
    browser back with a code. The console's last answer."""
    begun = await console.get("/console/signin")
    assert begun.status_code == 303, begun.text
    async with httpx.AsyncClient(timeout=30) as idp:
        form = await idp.get(begun.headers["location"])
        assert form.status_code == 200, form.text
        fields = {k: unescape(v) for k, v in _HIDDEN.findall(form.text)}
        posted = await idp.post(
            str(form.url).split("?")[0],
            data={**fields, "username": name, "password": password(people, name)},
        )
    assert posted.status_code == 303, posted.text
    back = httpx.URL(posted.headers["location"])
    return await console.get(back.path, params=dict(back.params))
