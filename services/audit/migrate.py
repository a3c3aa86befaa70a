"""The audit store's schema, by Alembic migrations: the service brings its database to the
newest revision when it starts, and ``infoshare audit migrate`` does it on demand. The same
revisions run on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, inspect, text

VERSION_TABLE = "audit_alembic_version"
AUDIT_TABLES = frozenset(
    {
        "audit_entry",
        "audit_checkpoint",
        "override_review",
        "audit_subject_alias",
        "audit_merkle_block",
    }
)
_SCRIPTS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x1A0D18  # PostgreSQL advisory lock: one migration at a time


class MigrationError(RuntimeError):
    """The database cannot be brought to the current schema; the message says why."""


def target_metadata() -> MetaData:
    """The tables the models describe (the audit ones among them: see include_name)."""
    from sqlmodel import SQLModel

    import services.audit.models  # noqa: F401  (registers the audit tables)

    return SQLModel.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic looks only at the audit store's tables (a database may hold others)."""
    return type_ != "table" or name in AUDIT_TABLES


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Nor at the other tables the models' metadata holds (the delivery service's)."""
    return include_name(name, type_, None)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(engine: Engine) -> str | None:
    """The database's revision; None for a database the migrations never touched."""
    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the database to ``revision`` (default: the newest) and return where it is."""
    config = _config()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # two services starting on a new database
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        tables = set(inspect(conn).get_table_names())
        if "audit_entry" in tables and VERSION_TABLE not in tables:
            raise MigrationError(
                "this audit database was created before infoshare kept migrations, and hashes "
                "its records in an older form: verify it with the infoshare release that wrote "
                "it, archive it, and start a new one"
            )
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current(engine) or "base"


# What the audit service's own database role may do (the schema is changed by its owner, the
# operator, with `infoshare audit migrate`): read the trail and add to it, never change or
# delete a record, a checkpoint or a review.
SERVICE_PRIVILEGES = {
    "audit_entry": ("SELECT", "INSERT"),
    "audit_checkpoint": ("SELECT", "INSERT"),
    "audit_subject_alias": ("SELECT", "INSERT"),
    "override_review": ("SELECT", "INSERT"),
    "audit_merkle_block": ("SELECT", "INSERT"),
    VERSION_TABLE: ("SELECT",),
}
