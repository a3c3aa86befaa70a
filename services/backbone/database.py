"""SQLAlchemy engines the services share: SQLite as the embedded default, PostgreSQL (or
any SQLAlchemy URL) in production, through the same code."""

from __future__ import annotations

from functools import partial
from typing import Any

import orjson
from sqlalchemy import Engine, event
from sqlmodel import create_engine


def engine_for(url: str, *, sqlite_cache_kib: int | None = None) -> Engine:
    """An engine for ``url``. On SQLite: WAL (readers never wait for the writer), a busy
    timeout (another process's writer is waited for, not refused) and fully synchronous
    commits (a service acknowledges or commits Kafka offsets only after the database
    commit, so a commit must survive a power cut); ``sqlite_cache_kib`` enlarges the page
    cache for tables of millions of rows. JSON columns go through orjson."""
    sqlite = url.startswith("sqlite")
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False} if sqlite else {},
        json_serializer=lambda value: orjson.dumps(value).decode(),
        json_deserializer=orjson.loads,
    )
    if sqlite:
        event.listen(engine, "connect", partial(_sqlite_pragmas, cache_kib=sqlite_cache_kib))
    return engine


def _sqlite_pragmas(connection: Any, _record: object, *, cache_kib: int | None) -> None:
    cursor = connection.cursor()
    if cache_kib:
        cursor.execute(f"PRAGMA cache_size = -{int(cache_kib)}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA busy_timeout = 10000")
    cursor.close()
