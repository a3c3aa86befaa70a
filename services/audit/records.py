"""Reading sealed records back for verification, millions at a time: on the driver's own
cursor, JSON columns as their stored text and parsed only when they hold more than an empty
list, times parsed from SQLite's text. SQLAlchemy's result processing cost verify four
times what the driver's fetch did (14 µs a record against 5).

Each record comes as ``chain.canonical`` covers it (``Stored.canonical``): nulls and empty
lists left out, its sequence number in it, so the walk hashes it without going over it
again. Otherwise it reads as the ORM reads it (tests/integration/test_audit_bulk.py holds
the two equal), so a verdict over these is a verdict over what the IG API shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Connection, Engine, Text, cast
from sqlalchemy import select as sa_select

from services.audit.chain import Stored
from services.audit.models import CONTENT_FIELDS, AuditEntry, as_utc
from services.backbone.bulk import driver_errors

PAGE = 5000  # records a query reads: the table may hold millions

_TABLE: Any = AuditEntry.__table__  # type: ignore[attr-defined]
_JSON_NAMES = tuple(name for name in CONTENT_FIELDS if isinstance(_TABLE.c[name].type, JSON))
_TIME_NAMES = ("recorded_at", "occurred_at")
_NAMES = (*CONTENT_FIELDS, "seq")  # the columns read, in order, then the two hashes
_SEQ = len(_NAMES) - 1
_ENTRY = len(_NAMES)


def stored_records(
    engine: Engine, batch: int = PAGE, *, after: int = 0, through: int | None = None
) -> Iterator[Stored]:
    """Every record after ``after`` (up to ``through``) in sequence order, read a page of
    ``batch`` at a time."""
    # The content's columns first, then the hashes: a row is zipped with the names as it
    # comes, with no copy of its tail.
    columns = [
        cast(_TABLE.c[name], Text) if name in _JSON_NAMES else _TABLE.c[name] for name in _NAMES
    ]
    columns += [_TABLE.c.entry_hash, _TABLE.c.chain_hash]
    while True:
        query = sa_select(*columns).where(_TABLE.c.seq > after)
        if through is not None:
            query = query.where(_TABLE.c.seq <= through)
        query = query.order_by(_TABLE.c.seq).limit(batch)
        # Sequence numbers and the page size are integers: bound as literals, so that the
        # driver takes the statement as it is, whatever its parameter style.
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # In the key's order as the index holds it, never gathered and sorted: with
                # statistics from when the table was small, the planner chose a bitmap scan
                # and a sort that spilled to disk (server time a page 32 ms against 16).
                conn.exec_driver_sql("SET LOCAL enable_sort = off")
            page = _fetched(conn, sql)
        for row in page:
            yield Stored(row[_SEQ], _content(row), row[_ENTRY], row[_ENTRY + 1], canonical=True)
        if len(page) < batch or (through is not None and page[-1][_SEQ] >= through):
            return  # no second round trip to find the range ended
        after = page[-1][_SEQ]


def _fetched(conn: Connection, sql: str) -> list[Any]:
    """The rows ``sql`` gives on the driver's cursor; the driver's refusal (a value it
    cannot decode, say) raised as SQLAlchemy raises it, so callers tell it apart."""
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver_errors(conn, sql):
        cursor = driver.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _content(row: Any) -> dict[str, Any]:
    """The record's content as ``chain.canonical`` covers it: its sequence number and every
    field that is neither null nor an empty list, times in UTC. A value that cannot be read
    as its column's type (altered by hand) is kept as it is stored: it does not give the
    stored hash, and the walk names the record edited."""
    content = {k: v for k, v in zip(_NAMES, row, strict=False) if v is not None}
    for name in _JSON_NAMES:
        text = content.get(name)
        if text is None:
            continue
        if text == "[]":  # nearly every record's, in some column
            del content[name]
            continue
        value = _parsed(text)
        if value is None or value == []:
            del content[name]
        else:
            content[name] = value
    for name in _TIME_NAMES:
        if name in content:
            content[name] = _in_utc(content[name])
    return content


def _parsed(text: Any) -> Any:
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return text


def _in_utc(value: Any) -> Any:
    if isinstance(value, str):  # SQLite keeps times as text, in UTC, without a zone
        if len(value) == 26 and value[10] == " " and value[19] == "." and value[20:].isdigit():
            try:  # as the store writes one: UTC at once (try costs nothing; suppress() did)
                return datetime.fromisoformat(value + "+00:00")
            except ValueError:
                pass
        try:
            value = datetime.fromisoformat(value)  # as the ORM reads it, no more
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return value
    return as_utc(value)  # PostgreSQL's are in its zone, UTC by another name: kept as they are
