"""Writing one batch of audit records while the next is prepared: the ingester's rhythm,
and the benchmark's, which times it.

A batch is prepared (``prepared.prepare_arrived``: parsed, validated, its canonical bytes
and bound values made) in a worker process, while the batch before is written to the store
in a thread. On SQLite the writer's share of a record (numbering, chaining, the database's
own insert and commit) was some 30 µs and the preparing as much again, one after the other
in one thread; now they overlap on two CPUs. Only one batch is ever written at a time, and
in the order taken, so the chain is in the order the records arrived.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from services.audit.prepared import Ready, prepare_arrived
from services.backbone.offload import Offload

log = logging.getLogger(__name__)


def workers_for(dialect: str) -> int:
    """How many workers prepare batches on ``dialect`` by default: one for SQLite, none
    for PostgreSQL. PostgreSQL's server stores the rows in a process of its own while the
    ingest seals the next ones, so it has the second CPU already: with a worker as well,
    ingest of 100,000 records fell from 19,100-25,000 to 16,800-20,200 records/s (four runs
    each, in turn, on two CPUs). SQLite stores them in the ingest's own thread: with a
    worker it rose from 14,600-17,300 to 15,200-21,900 (six runs each)."""
    return 0 if dialect == "postgresql" else 1


class Overlap:
    def __init__(self, offload: Offload, driver: str) -> None:
        """``offload``: the worker process (none: prepared in a thread here); ``driver``:
        the store's ``engine.url.drivername``."""
        self.offload = offload
        self.driver = driver
        self._writing: asyncio.Task[None] | None = None

    async def prepare(self, values: Sequence[bytes], activity: Sequence[bool]) -> list[Ready | str]:
        """``prepare_arrived(values, activity)`` in the worker, while a write goes on.
        Without a worker it waits for the write first: in a thread beside it, the two
        took turns at the GIL, and the writer waited for it after every row SQLite
        stored (100,000 records: 13,000 to 15,400 records/s, against 16,300 to 16,700
        one after the other)."""
        if self.offload.workers == 0:
            await self.written()
            # Parsed only, in a thread (the event loop stays free meanwhile), and prepared
            # as they are written.
            parse = functools.partial(prepare_arrived, complete=False)
            return await self.offload.run(
                parse, values, activity, self.driver, large=False, in_thread=True
            )
        return await self.offload.run(prepare_arrived, values, activity, self.driver, large=True)

    async def then(self, write: Coroutine[Any, Any, None]) -> None:
        """Once the batch being written is written, start ``write`` (the next)."""
        try:
            await self.written()
        except BaseException:
            write.close()  # never started
            raise
        self._writing = asyncio.create_task(write)

    async def written(self) -> None:
        """Wait for the batch being written, if any; its failure is raised here. If the
        caller is cancelled meanwhile, the write goes on (a thread cannot be stopped
        half-way) and is still ``abandon``'s to wait for."""
        writing = self._writing
        if writing is None:
            return
        try:
            await asyncio.shield(writing)
        finally:
            if writing.done():
                self._writing = None

    async def abandon(self) -> None:
        """On the way out after a failure: let the batch being written finish, and log
        the kind of what it raised, if anything (its text may quote a value)."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.wait({writing})
            if not writing.cancelled() and writing.exception() is not None:
                kind = type(writing.exception()).__name__
                log.error("writing an audit batch failed as well (%s)", kind)
