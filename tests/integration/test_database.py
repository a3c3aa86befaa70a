"""Services that share a database create its tables at the same moment (the three agency
services and the person index, on every start of a stack): each must find the tables made,
none may fail because another made one first. On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from services.backbone.database import create_tables, engine_for
from services.outbox.tables import OutboxRow, SubmissionRow
from services.personindex.tables import LinkRow, PersonRow, ReviewRow

TABLES = [
    SQLModel.metadata.tables[str(t.__tablename__)]
    for t in (PersonRow, LinkRow, ReviewRow, SubmissionRow, OutboxRow)
]
STARTS = 8


def at_once(work: Callable[[Engine], None], url: str) -> list[BaseException]:
    """``work`` on ``STARTS`` engines of their own, released together; what each raised."""
    engines = [engine_for(url) for _ in range(STARTS)]
    gate = threading.Barrier(STARTS)
    failures: list[BaseException] = []

    def start(engine: Engine) -> None:
        gate.wait()
        try:
            work(engine)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for e in engines:
        e.dispose()
    return failures


def test_tables_created_at_once_by_many_are_created_once(database_url: str) -> None:
    engine = engine_for(database_url)
    try:
        for _ in range(5):  # the race is a matter of timing: give it chances
            SQLModel.metadata.drop_all(engine, tables=TABLES)
            assert at_once(lambda e: create_tables(e, TABLES), database_url) == []
            assert {t.name for t in TABLES} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
