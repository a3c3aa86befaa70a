"""``infoshare postgres``: the project's own PostgreSQL cluster (Debian's server, installed
if missing), on loopback with password authentication; the production audit store."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy.cli.terminal import StateDir, err, fail, out
from deploy.devstack.postgres import PostgresError, PostgresNode

app = typer.Typer(
    help="Run the project's PostgreSQL (production audit store) on loopback",
    no_args_is_help=True,
)
PgPort = Annotated[int, typer.Option(help="port on 127.0.0.1")]


def _node(state_dir: StateDir, port: int) -> PostgresNode:
    return PostgresNode(state_dir=state_dir, port=port)


def _fail(exc: PostgresError) -> typer.Exit:
    return fail(str(exc))


@app.command("start")
def start(state_dir: StateDir, port: PgPort = 5433) -> None:
    """Install the server if missing, initialise the cluster once, start it (idempotent)."""
    try:
        with err.status("starting PostgreSQL ..."):
            status = _node(state_dir, port).start()
    except PostgresError as exc:
        raise _fail(exc) from None
    out.print(status.describe())


@app.command("stop")
def stop(state_dir: StateDir, port: PgPort = 5433) -> None:
    """Stop the cluster started from this state directory."""
    try:
        stopped = _node(state_dir, port).stop()
    except PostgresError as exc:
        raise _fail(exc) from None
    out.print("PostgreSQL stopped" if stopped else "PostgreSQL was not running")


@app.command("status")
def status(state_dir: StateDir, port: PgPort = 5433) -> None:
    """Say whether the cluster runs; exit status 0 if it does, 3 if not."""
    try:
        current = _node(state_dir, port).status()
    except PostgresError as exc:
        raise _fail(exc) from None
    out.print(current.describe())
    if not current.running:
        raise typer.Exit(3)


@app.command("url")
def url(
    state_dir: StateDir,
    port: PgPort = 5433,
    database: Annotated[str, typer.Option(help="database name")] = "infoshare_audit",
) -> None:
    """Create the database if need be and print its SQLAlchemy URL, for
    INFOSHARE_AUDIT_DATABASE_URL (it holds the password: keep it out of shell history)."""
    node = _node(state_dir, port)
    try:
        if not node.status().running:
            raise PostgresError("PostgreSQL is not running: `infoshare postgres start` first")
        print(node.ensure_database(database))
    except PostgresError as exc:
        raise _fail(exc) from None
