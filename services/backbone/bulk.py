"""Writing sealed rows in one round trip where the database allows it: PostgreSQL's COPY
(one statement per row, pipelined, spent half the ingest time waiting on the server);
elsewhere one executemany on the driver's cursor, the statement compiled once and each value
bound by its column type (SQLAlchemy's own executemany spent as long on its bookkeeping per
row as SQLite spent storing it)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Iterator, KeysView, Sequence
from datetime import date, datetime, time
from typing import Any, cast

import orjson
from sqlalchemy import JSON, Connection, Dialect, Table, TypeDecorator, insert
from sqlalchemy.exc import DBAPIError

Prepare = Callable[[dict[str, Any]], tuple[Any, ...]]  # a row's parameters, in order


def insert_rows(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Insert ``rows`` into ``table`` in the connection's transaction, taking each as it is
    written (an iterator may make them meanwhile). Every row names the same columns (the
    first row's keys); a column none names takes its default (an autoincrementing key,
    say). On any error some rows may be in the transaction already: the caller rolls back."""
    taken = iter(rows)
    head = next(taken, None)
    if head is None:
        return
    first = head.keys()
    names = tuple(c.name for c in table.columns if c.name in first)
    bind = row_binder(table, names, conn.dialect)
    write_bound(
        conn, table, names, map(bind, _alike(table.name, first, itertools.chain((head,), taken)))
    )


def row_binder(table: Table, names: tuple[str, ...], dialect: Dialect) -> Prepare:
    """How a row (a dict naming at least ``names``, which are in the table's order) becomes
    the tuple ``write_bound`` writes on ``dialect``: its values of ``names`` in order, each
    bound as the dialect's writer takes it (for PostgreSQL's COPY, JSON as its text; for
    executemany, through its column type's bind processing). A pure function of the row:
    another process may bind rows for the writer."""
    if dialect.name == "postgresql":
        return _copy_binder(table, names)
    return _processing_binder(table, names, dialect)


def write_bound(
    conn: Connection, table: Table, names: tuple[str, ...], bound: Iterable[tuple[Any, ...]]
) -> None:
    """Write rows already bound by ``row_binder(table, names, conn.dialect)`` (or values
    of the same shape) in the connection's transaction, each as it is taken. On any error
    some rows may be in the transaction already: the caller rolls back."""
    dialect = conn.dialect
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver_errors(conn, f"INSERT INTO {table.name}"):
        if dialect.name == "postgresql":
            _copy(driver, table, names, bound)
        else:
            sql = _statement(table, names, dialect)
            cursor = driver.cursor()
            try:
                cursor.executemany(sql, bound)
            finally:
                cursor.close()


def _alike(
    name: str, first: KeysView[str], rows: Iterable[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    for row in rows:
        if row.keys() != first:  # not NULLs by surprise
            raise ValueError(f"rows for {name} name different columns")
        yield row


@contextlib.contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Work on the driver's own cursor, its errors raised as SQLAlchemy raises them
    (``DBAPIError``): callers tell the database's refusal from a fault of ours as they do
    for SQLAlchemy's own statements."""
    error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(statement, None, exc, error, dialect=conn.dialect) from exc


def _copy(driver: Any, table: Table, names: Sequence[str], bound: Iterable[Sequence[Any]]) -> None:
    from psycopg.sql import SQL, Identifier

    statement = SQL("COPY {} ({}) FROM STDIN").format(
        Identifier(table.name), SQL(", ").join(Identifier(name) for name in names)
    )
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in bound:
            copy.write_row(row)


@functools.lru_cache(maxsize=16)
def _copy_binder(table: Table, names: tuple[str, ...]) -> Prepare:
    """A row's values of ``names`` for COPY: JSON as its text (a null as JSON's null, as
    SQLAlchemy), everything else as it is, for psycopg to write."""
    json_columns = [i for i, name in enumerate(names) if isinstance(table.columns[name].type, JSON)]
    values = _getter(names)

    def bind(row: dict[str, Any]) -> tuple[Any, ...]:
        bound = list(values(row))
        for i in json_columns:
            bound[i] = json_text(bound[i])
        return tuple(bound)

    return bind


def _getter(names: Sequence[str]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    """A row's values of ``names``, in order, in one C call (every row names them all)."""
    if len(names) == 1:
        return lambda row: (row[names[0]],)
    return operator.itemgetter(*names)


def json_text(value: Any) -> str:
    """A JSON column's value as the services' engines write it (``engine_for``)."""
    return orjson.dumps(value).decode()


@functools.lru_cache(maxsize=16)
def _statement(table: Table, columns: tuple[str, ...], dialect: Dialect) -> str:
    """The table's INSERT of ``columns`` compiled once for the dialect, its parameters in
    the order of ``columns`` (the table's)."""
    compiled = insert(table).values({name: None for name in columns}).compile(dialect=dialect)
    if tuple(compiled.positiontup or ()) != columns:  # bound rows are in the given order
        raise ValueError(f"columns for {table.name} are not in the table's order: {columns}")
    return str(compiled)


@functools.lru_cache(maxsize=16)
def _processing_binder(table: Table, names: tuple[str, ...], dialect: Dialect) -> Prepare:
    """A row's parameters for ``names``, in order, each through its column type's own bind
    processing (as SQLAlchemy's executemany would, without its per-row bookkeeping)."""
    # Only a few types process what they bind (times, JSON): every other value goes as it
    # is, taken from the row in one C call rather than a call per column.
    processed = [
        (i, _remembering(process) if _of_times(column_type) else process)
        for i, name in enumerate(names)
        if (process := _binding(column_type := table.columns[name].type, dialect))
    ]
    values = _getter(names)

    def prepare(row: dict[str, Any]) -> tuple[Any, ...]:
        bound = list(values(row))
        for i, process in processed:
            bound[i] = process(bound[i])
        return tuple(bound)

    return prepare


def _of_times(column_type: Any) -> bool:
    """Whether a column holds times (which cannot change once made)."""
    if isinstance(column_type, TypeDecorator):  # such as sqlmodel's UTCDateTime
        column_type = column_type.impl_instance
    try:
        return column_type.python_type in (datetime, date, time)
    except NotImplementedError:
        return False


def _remembering(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process``, answering again at once for the very object it was last given: a
    batch's rows mostly share their times (when each was received, queued, stored), so a
    time is formatted once a batch rather than once a row. Only the same object counts
    (``is``), and only times, which cannot change; the answer is kept with its value as
    one tuple, so threads sharing the statement never mix them up."""
    last: tuple[Any, Any] = (_NOTHING, None)

    def remembered(value: Any) -> Any:
        nonlocal last
        given, answer = last
        if value is given:
            return answer
        answer = process(value)
        last = (value, answer)
        return answer

    return remembered


_NOTHING = object()


def _binding(column_type: Any, dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``column_type`` is bound: its type's processing; for JSON, the
    engine's serializer itself, which that processing calls (through three calls of its
    own per value); rows hold plain values (lists, dicts, None), never its NULL markers."""
    process = column_type.dialect_impl(dialect).bind_processor(dialect)
    serializer = getattr(dialect, "_json_serializer", None)
    if process is not None and isinstance(column_type, JSON) and serializer is not None:
        return cast("Callable[[Any], Any]", serializer)
    return cast("Callable[[Any], Any] | None", process)
