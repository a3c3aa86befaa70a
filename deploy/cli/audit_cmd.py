"""``infoshare audit``: ``migrate`` brings the audit store's schema to the newest revision;
``verify`` is audit_verify_cmd.py's; ``public-keys``, ``prove``, ``prove-growth`` and
``check-proof`` are audit_proof_cmd.py's."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy.cli import audit_proof_cmd, audit_verify_cmd
from deploy.cli.terminal import fail, out

app = typer.Typer(
    help="The audit trail: verify it has not been altered; prove a record is in it; migrate "
    "its schema",
    no_args_is_help=True,
)
TAMPERED, BAD_INPUT = audit_proof_cmd.TAMPERED, audit_proof_cmd.BAD_INPUT
app.command("public-keys")(audit_proof_cmd.public_keys_cmd)
app.command("prove")(audit_proof_cmd.prove_cmd)
app.command("prove-growth")(audit_proof_cmd.prove_growth_cmd)
app.command("check-proof")(audit_proof_cmd.check_proof_cmd)
app.command("verify")(audit_verify_cmd.verify_cmd)


@app.command("migrate")
def migrate_cmd(
    database_url: Annotated[
        str | None,
        typer.Option(help="the audit store (default: INFOSHARE_AUDIT_DATABASE_URL)"),
    ] = None,
    revision: Annotated[str, typer.Option(help="target revision")] = "head",
) -> None:
    """Bring the audit store's schema to the newest revision (Alembic; the audit service
    does it too when it starts). Safe to run again. Exit 0 done, 2 refused."""
    from sqlalchemy.exc import SQLAlchemyError

    from services.audit import migrate
    from services.audit.app import AuditSettings
    from services.audit.store import AuditStore

    url = database_url or AuditSettings().audit_database_url.get_secret_value()
    engine = AuditStore.engine_for(url)
    try:
        before = migrate.current(engine)
        after = migrate.upgrade(engine, revision)
    except (migrate.MigrationError, SQLAlchemyError) as exc:
        raise _fail(str(exc).splitlines()[0]) from None
    finally:
        engine.dispose()
    if before == after:
        out.print(f"audit store already at revision {after}")
    else:
        out.print(f"audit store migrated from {before or 'empty'} to revision {after}")


def _fail(message: str) -> typer.Exit:
    return fail(message, BAD_INPUT)
