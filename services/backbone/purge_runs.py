"""The running of a store's retention purges, whatever the store (the delivery store, each
agency's inbox): each run's audit record sent and marked once the broker took it, a run
between two sendings (so one an earlier run could not send goes first), and runs repeated on
a period by whoever holds the lease. The store brings its purge and its log's reads and
writes; what is due is consent/core/retention.py's to decide."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aiokafka.errors import KafkaError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from services.backbone.audit_contract import AuditRecord
from services.backbone.errors import ConfigurationError
from services.backbone.lease import Lease

SendAudit = Callable[[AuditRecord], Awaitable[None]]


class Counted(Protocol):
    """What a run removed, as it is logged: how many, and said in counts only."""

    @property
    def total(self) -> int: ...

    def reason(self, noun: str, *, one: str | None = None) -> str: ...


C = TypeVar("C", bound=Counted)


async def send_unaudited(
    unaudited: Callable[[], list[AuditRecord]],
    mark_audited: Callable[[str], None],
    send: SendAudit,
) -> int:
    """Send every run's audit record not yet sent, oldest first, marking each (by its audit
    id, the run's) once the broker took it; how many were sent. Sent again after a crash in
    between, it keeps its audit id, so the trail has it once."""
    sent = 0
    for record in await asyncio.to_thread(unaudited):
        await send(record)
        await asyncio.to_thread(mark_audited, record.audit_id)
        sent += 1
    return sent


Write = Callable[[], AbstractContextManager[Session]]
"""Opens a transaction on a store's database, committed when the block ends."""


@contextlib.contextmanager
def committing(engine: Engine) -> Iterator[Session]:
    """A :data:`Write` for a store that has none of its own."""
    with Session(engine) as session:
        yield session
        session.commit()


def mark_audited(write: Write, log_table: type[Any], row_id: str, at: datetime) -> None:
    """Mark the log row ``row_id`` of ``log_table`` (a purge run's, a recall purge's) as
    audited ``at``: its record went out."""
    with write() as session:
        row = session.get(log_table, row_id)
        if row is not None:
            row.audited_at = at
            session.add(row)


async def send_logged(
    unaudited: Callable[[], list[AuditRecord]],
    write: Write,
    log_table: type[Any],
    send: SendAudit,
    *,
    now: Callable[[], datetime],
) -> int:
    """:func:`send_unaudited` for a store's log table: each row marked audited (at ``now()``,
    in UTC) once the broker took its record."""

    def mark(row_id: str) -> None:
        mark_audited(write, log_table, row_id, now())

    return await send_unaudited(unaudited, mark, send)


async def between_sends(purge: Callable[[], C], send_unaudited: Callable[[], Awaitable[int]]) -> C:
    """One run: what an earlier run could not send, ``purge`` (in a thread: it reads the
    protocols afresh and deletes), then its audit record."""
    await send_unaudited()
    done = await asyncio.to_thread(purge)
    await send_unaudited()
    return done


async def keep_running(
    run: Callable[[], Awaitable[Counted]],
    *,
    noun: str,
    one: str,
    every_s: float,
    stop: asyncio.Event,
    lease: Lease | None,
    errors: tuple[type[Exception], ...],
    log: logging.Logger,
) -> None:
    """``run`` when started and every ``every_s`` after, until ``stop``, only while holding
    ``lease`` (replicas share the database). A failure (the store or Kafka away, or one of
    ``errors``, such as protocols that do not load) is logged and the next run tries again."""
    caught = (SQLAlchemyError, KafkaError, ConfigurationError, *errors)
    while not stop.is_set():
        try:
            if lease is None or await asyncio.to_thread(lease.held):
                done = await run()
                if done.total:
                    log.info("retention: %s", done.reason(noun, one=one))
        except caught as exc:
            log.warning("retention purge not done (%s); trying again later", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
