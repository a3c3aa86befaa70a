"""SQLAlchemy engines the services share: SQLite as the embedded default, PostgreSQL (or
any SQLAlchemy URL) in production, through the same code."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, Table, event, inspect, make_url, text
from sqlmodel import SQLModel, create_engine

from services.backbone.bulk import json_text
from services.backbone.private_files import private_file


def engine_for(
    url: str, *, sqlite_cache_kib: int | None = None, sqlite_page_bytes: int | None = None
) -> Engine:
    """An engine for ``url``. On SQLite: WAL (readers never wait for the writer), a busy
    timeout (another process's writer is waited for, not refused) and fully synchronous
    commits (a service acknowledges or commits Kafka offsets only after the database
    commit, so a commit must survive a power cut); ``sqlite_cache_kib`` enlarges the page
    cache for tables of millions of rows. A new SQLite file is created 0600 first (SQLite
    gives its -wal and -shm files the database's mode). JSON columns go through orjson."""
    sqlite = url.startswith("sqlite")
    if sqlite:
        _private_sqlite_file(url)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False} if sqlite else {},
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )
    if sqlite:
        pragmas = partial(_sqlite_pragmas, cache_kib=sqlite_cache_kib, page_bytes=sqlite_page_bytes)
        event.listen(engine, "connect", pragmas)
    return engine


def _private_sqlite_file(url: str) -> None:
    """Create the database file 0600 before SQLite creates it with the umask's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return  # in memory, or a URI (uri=true) naming its own mode and options
    path = Path(database)
    if path.parent.is_dir():  # else SQLite's own error says what is wrong
        private_file(path)


def _sqlite_pragmas(
    connection: Any, _record: object, *, cache_kib: int | None, page_bytes: int | None = None
) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")
    if cache_kib:
        cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    if page_bytes:  # takes only on a new file, before WAL: an existing one keeps its own
        cursor.execute(f"PRAGMA page_size = {int(page_bytes)}")
    _wal(cursor)
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.close()


def _wal(cursor: Any) -> None:
    """Switch to WAL. A new file is switched by whichever connection comes first; SQLite
    answers "locked" at once, without its busy timeout, to the others opening it meanwhile
    (several services starting on one new database), so they try again for a while."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * min(2**attempt, 20))


_WAL_ATTEMPTS = 60  # about ten seconds, like the busy timeout


def create_tables(engine: Engine, tables: Sequence[Table] | None = None) -> None:
    """Create ``tables`` (None: every table of the metadata) that do not exist yet, one
    process at a time: several services may share a database (the agency services share the
    person index), and two of them creating the same table at once made the second fail.
    SQLite's own write lock is taken first (``BEGIN IMMEDIATE``), PostgreSQL's advisory lock
    on others, so the check for each table and its creation are one step."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.begin()
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DDL_LOCK})
        else:
            conn.begin()
        SQLModel.metadata.create_all(conn, tables=tables)
        _add_new_columns(conn, tables or list(SQLModel.metadata.tables.values()))
        conn.commit()


def _add_new_columns(conn: Connection, tables: Sequence[Table]) -> None:
    """Columns (and indexes) added to a table since it was created, added to it: each column
    is nullable (a row stored before has none), so no value need be made up. A table the
    stores did not make with create_tables (Alembic's) is never passed here."""
    existing = inspect(conn)
    for table in tables:
        if not existing.has_table(table.name):
            continue
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name in have:
                continue
            if not column.nullable:
                raise RuntimeError(
                    f"{table.name}.{column.name} is new and not nullable: it needs a migration"
                )
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
        for index in table.indexes:  # and indexes declared since
            index.create(conn, checkfirst=True)


_DDL_LOCK = 0x1F05_5C4E_6DD1  # any constant: every infoshare process takes the same one


def too_long(model: type[SQLModel], values: Mapping[str, str | None]) -> str | None:
    """Which of ``values`` is longer than its column of ``model`` holds, said; None if all
    fit. PostgreSQL refuses a longer value (SQLite does not check), failing the whole batch
    of a reader again and again: readers turn such a record away before they store it."""
    lengths = _lengths(model)
    for column, value in values.items():
        length = lengths[column]
        if value is not None and length is not None and len(value) > length:
            return f"{column} is longer than {length} characters"
    return None


@lru_cache(maxsize=64)  # asked for every record a reader takes: one lookup a model
def _lengths(model: type[SQLModel]) -> dict[str, int | None]:
    """The most characters each column of ``model`` holds (None: no limit)."""
    table = model.__table__  # type: ignore[attr-defined]
    return {
        c.name: length if isinstance(length := getattr(c.type, "length", None), int) else None
        for c in table.columns
    }
