"""The IG console for tests: a sign-in through the worker's identity provider's real login
form over HTTP (the browser tests sign in by typing into it instead)."""

from __future__ import annotations

import httpx

from deploy.devstack.identity.console_login import login_fields
from deploy.devstack.identity.provider import CONSOLE_CLIENT, starter_logins
from tests.people import People

__all__ = ["CONSOLE_CLIENT", "sign_in"]


async def sign_in(console: httpx.AsyncClient, people: People, name: str) -> httpx.Response:
    """Sign ``name`` in to ``console`` (its cookies kept); the console's last answer."""
    begun = await console.get("/console/signin")
    assert begun.status_code == 303, begun.text
    async with httpx.AsyncClient(timeout=30) as idp:
        form = await idp.get(begun.headers["location"])
        assert form.status_code == 200, form.text
        password = starter_logins(people.provider.directory)[name]
        posted = await idp.post(
            str(form.url).split("?")[0], data=login_fields(form.text, name, password)
        )
    assert posted.status_code == 303, posted.text
    back = httpx.URL(posted.headers["location"])
    return await console.get(back.path, params=dict(back.params))
