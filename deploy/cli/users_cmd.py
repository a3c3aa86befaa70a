"""``infoshare users``: people of the embedded identity provider (development and demo),
each signing in as themselves. Production uses the organisation's identity provider
(INFOSHARE_OIDC_ISSUER) and never these commands."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import StateDir, fail, out
from deploy.devstack.identity.clients import register_client
from deploy.devstack.identity.passwords import new_password
from deploy.devstack.identity.provider import DevIdentityProvider
from services.backbone.errors import ConfigurationError
from services.backbone.people import PersonRole

app = typer.Typer(
    help="People of the embedded identity provider: add, list, a token to act as one, and "
    "the clients (browser applications) it signs them in to",
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
    password_stdin: Annotated[
        bool, typer.Option(help="set the login page password to the first line of stdin")
    ] = False,
    generate_password: Annotated[
        bool, typer.Option(help="set a random login page password and print it (only now)")
    ] = False,
) -> None:
    """Add a person (or change their roles and display name, and password if asked).
    Without a password option a new person cannot use the login page, and an existing
    one keeps the password they have."""
    if password_stdin and generate_password:
        raise fail("give --password-stdin or --generate-password, not both", 2)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif generate_password:
        password = new_password()
    provider = _provider(state_dir)
    try:
        user = provider.add_user(name, role, display_name, password=password)
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    out.print(f"{user.name} ({user.display_name}): {', '.join(r.value for r in user.roles)}")
    if generate_password:
        typer.echo(f"password: {password}")


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


@app.command("client")
def users_client(
    state_dir: StateDir,
    client_id: Annotated[str, typer.Argument(help="the client id, e.g. audit-console")],
    redirect_uri: Annotated[
        list[str],
        typer.Option(
            help="where it receives the code (repeatable; replaces those it had). An http "
            "loopback one (127.0.0.1 or localhost) also allows the same path on any port"
        ),
    ],
) -> None:
    """Register a client (a browser application signing people in with the Authorization
    Code flow and PKCE), or change its redirect URIs."""
    try:
        client = register_client(state_dir / "identity", client_id, redirect_uri)
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None
    out.print(f"{client.client_id}: {', '.join(client.redirect_uris)}")
