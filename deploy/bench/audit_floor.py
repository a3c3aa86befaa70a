"""The audit benchmark's yardstick: the database alone storing the rows the ingest stored,
already bound as the database keeps them, in the ingest's batches, each committed. No
parsing, sealing or binding in Python: what is left is the database's own work (the table,
its indexes, the commit), the most an ingest on it could reach. A script's measure, never a
test."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

from sqlalchemy import Engine

from services.audit import migrate
from services.audit.store import AuditStore

TABLE = "audit_entry"


def database_alone(source: Engine, target_url: str, batch: int) -> float:
    """Seconds ``target_url`` (a new database, migrated here) takes to store ``source``'s
    audit records in batches of ``batch``, one commit each, as its driver takes them
    stored (SQLite: executemany of the stored values; PostgreSQL: COPY of the stored text)."""
    target = AuditStore.engine_for(target_url)
    try:
        migrate.upgrade(target)
        if source.dialect.name == "postgresql":
            return _copied(source, target, batch)
        return _inserted(source, target, batch)
    finally:
        target.dispose()


def _inserted(source: Engine, target: Engine, batch: int) -> float:
    with closing(source.raw_connection()) as read, closing(target.raw_connection()) as write:
        cursor = read.cursor()
        cursor.execute(f"SELECT * FROM {TABLE} ORDER BY seq")  # noqa: S608 (our own name)
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        sql = (
            f"INSERT INTO {TABLE} ({', '.join(names)}) "  # noqa: S608 (our own names)
            f"VALUES ({', '.join('?' * len(names))})"
        )
        driver: sqlite3.Connection = write.driver_connection  # type: ignore[assignment]
        spent = 0.0
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            started = time.perf_counter()
            driver.executemany(sql, chunk)
            driver.commit()
            spent += time.perf_counter() - started
        return spent


def _copied(source: Engine, target: Engine, batch: int) -> float:
    with closing(source.raw_connection()) as read, closing(target.raw_connection()) as write:
        chunks = list(_exported(read.driver_connection, batch))
        driver: Any = write.driver_connection
        spent = 0.0
        for chunk in chunks:
            started = time.perf_counter()
            with driver.cursor() as cursor, cursor.copy(f"COPY {TABLE} FROM STDIN") as copy:
                copy.write(chunk)
            driver.commit()
            spent += time.perf_counter() - started
        return spent


def _exported(driver: Any, batch: int) -> Iterator[bytes]:
    """The table in COPY's text form, ``batch`` records at a time (by seq)."""
    with driver.cursor() as cursor:
        top = cursor.execute(f"SELECT coalesce(max(seq), 0) FROM {TABLE}").fetchone()[0]  # noqa: S608
        for start in range(0, top, batch):
            query = (
                f"COPY (SELECT * FROM {TABLE} WHERE seq > {start} "  # noqa: S608 (ints)
                f"AND seq <= {start + batch} ORDER BY seq) TO STDOUT"
            )
            with cursor.copy(query) as copy:
                yield b"".join(bytes(data) for data in copy)
    driver.commit()
