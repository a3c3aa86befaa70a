"""``infoshare audit verify``: prove the audit trail has not been altered, or say where.
``infoshare audit migrate``: bring the audit store's schema to the newest revision.
``public-keys``, ``prove`` and ``check-proof``: audit_proof_cmd.py."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from deploy.cli import audit_proof_cmd
from deploy.cli.terminal import err, fail, out

if TYPE_CHECKING:
    from sqlalchemy import Engine

T = TypeVar("T")

app = typer.Typer(
    help="The audit trail: verify it has not been altered; prove a record is in it; migrate "
    "its schema",
    no_args_is_help=True,
)
TAMPERED, BAD_INPUT = audit_proof_cmd.TAMPERED, audit_proof_cmd.BAD_INPUT
app.command("public-keys")(audit_proof_cmd.public_keys_cmd)
app.command("prove")(audit_proof_cmd.prove_cmd)
app.command("check-proof")(audit_proof_cmd.check_proof_cmd)


@app.command("verify")
def verify_cmd(
    database_url: Annotated[
        str | None,
        typer.Option(help="the audit store (default: INFOSHARE_AUDIT_DATABASE_URL)"),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="checkpoint file kept outside the database (default: "
            "INFOSHARE_AUDIT_CHECKPOINT_FILE)"
        ),
    ] = None,
) -> None:
    """Recompute every record's hash and chain link, check every signed checkpoint (from the
    database and from the file outside it), and name the first record that was edited,
    deleted, reordered or inserted, or the truncation. Exit 0 intact, 1 tampered, 2 bad input.
    Needs the keyring (INFOSHARE_KEYRING_FILE): the chain is keyed."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from services.audit.app import AuditSettings
    from services.audit.store import AuditStore
    from services.audit.verification import verify_trail
    from services.backbone.errors import ConfigurationError

    try:
        settings = AuditSettings()
        keyring = settings.keyring(None)
        keyring.require_audit_chain()
        keyring.require_audit_signing()
        chain_keys = [k.secret for k in keyring.keys_of("audit_chain")]  # rotated ones too
    except ValidationError as exc:
        raise _fail(f"settings: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}") from None
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    url = database_url or settings.audit_database_url.get_secret_value()
    cp_file = checkpoints or settings.audit_checkpoint_file
    engine = AuditStore.engine_for(url)
    try:
        with _progress(engine) as counted:
            verdict = verify_trail(
                engine,
                chain_keys=chain_keys,
                public_keys=keyring.audit_verifying_keys(),
                checkpoint_file=cp_file,
                counted=counted,
            )
    except SQLAlchemyError as exc:
        raise _fail(f"cannot read the audit store: {type(exc).__name__}") from None
    if verdict.checkpoint_file_missing:
        err.print(f"note: no checkpoint file at {cp_file}; only the database's checkpoints count")
    if verdict.problem is not None:
        out.print(f"[bold red]TAMPERED[/]: {escape(verdict.problem)}")
        if verdict.failed == "chain":
            out.print(f"{verdict.records} record(s) before it verified")
        raise typer.Exit(TAMPERED)
    out.print(
        f"[bold green]intact[/]: {verdict.records} record(s), chain and hashes verified; "
        f"{verdict.checkpoints} signed checkpoint(s) agree; the alias index matches"
    )


@contextlib.contextmanager
def _progress(engine: Engine) -> Iterator[Callable[[Iterable[T]], Iterator[T]]]:
    """Counts records as they are verified, on stderr (a large trail takes minutes)."""
    from sqlalchemy import func, select

    from services.audit.models import AuditEntry

    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    columns = (
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("records"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=total < 50_000) as bar:
        task = bar.add_task("verify", total=total)

        def counted(items: Iterable[T]) -> Iterator[T]:
            for n, item in enumerate(items, 1):
                if n % 5000 == 0:
                    bar.update(task, completed=n)
                yield item

        yield counted


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
