"""``infoshare users``: people of the embedded identity provider (development and demo),
each signing in as themselves. Production uses the organisation's identity provider
(INFOSHARE_OIDC_ISSUER) and never these commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import StateDir, fail, out
from deploy.devstack.identity.provider import DevIdentityProvider
from services.backbone.errors import ConfigurationError
from services.backbone.people import PersonRole

app = typer.Typer(
    help="People of the embedded identity provider: add, list, and a token to act as one",
    no_args_is_help=True,
)
Name = Annotated[str, typer.Argument(help="the login, e.g. asha.patel")]


def _provider(state_dir: Path) -> DevIdentityProvider:
    return DevIdentityProvider(state_dir / "identity")


@app.command("add")
def users_add(
    state_dir: StateDir,
    name: Name,
    role: Annotated[list[PersonRole], typer.Option(help="practitioner or ig_officer (repeatable)")],
    display_name: Annotated[str | None, typer.Option(help="as records name them")] = None,
) -> None:
    """Add a person (or change their roles and display name)."""
    provider = _provider(state_dir)
    try:
        user = provider.add_user(name, role, display_name)
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    out.print(f"{user.name} ({user.display_name}): {', '.join(r.value for r in user.roles)}")


@app.command("list")
def users_list(state_dir: StateDir) -> None:
    """Every person, with their roles."""
    provider = _provider(state_dir)
    for user in provider.users():
        out.print(f"{user.name:<24} {user.display_name:<28} {', '.join(user.roles)}")


@app.command("token")
def users_token(
    state_dir: StateDir,
    name: Name,
    ttl: Annotated[int, typer.Option(min=60, max=12 * 3600, help="seconds it lasts")] = 3600,
) -> None:
    """Print a bearer token that names this person (to the running stack's services)."""
    provider = _provider(state_dir)
    try:
        token = provider.token(name, ttl_s=ttl)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    typer.echo(token)
