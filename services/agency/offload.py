"""Parsing a large native input in a worker process, off the service's event loop.

A FHIR Bundle of 2,000 Encounters took over a second of CPU to validate
(fhir.resources), and a school's CSV export of 2,000 pupils a quarter of one. Parsed on
the event loop, or in a thread that holds the GIL as long, that stopped every other
request of the service meanwhile (a single event, a health check, the relay's pass).
In a worker process it runs beside them, on another CPU, while the service stores the
upload before.

What a worker runs is a pure function of the bytes or document it is given (parsing,
validation, mapping): it is given no key, database or socket. Workers are started by
``spawn`` (nothing of the service's memory is inherited) when the first large input
arrives, not at start: most services never get one. They drop the service's settings from
their environment before any work. Small inputs are parsed where they arrive, as before:
sending them to a worker would cost more than parsing them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

log = logging.getLogger(__name__)
R = TypeVar("R")


# An input at least this large is parsed in a worker: about 600 rows of a school's CSV, or
# 50 Encounters of a Bundle. Below it, what a worker saves is less than sending it there.
LARGE_BYTES = 64 * 1024


def large(body: bytes) -> bool:
    return len(body) >= LARGE_BYTES


class Offload:
    """Runs a large input's parsing in one of ``workers`` processes (0: always in the
    caller's process)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.sent = 0  # inputs given to a worker
        self.died = 0  # of them, parsed here after all: the worker died, or its answer broke
        self._pool: ProcessPoolExecutor | None = None

    async def run(
        self, work: Callable[..., R], *args: Any, large: bool, in_thread: bool = False
    ) -> R:
        """``work(*args)``: in a worker process if ``large`` and there are workers, else
        here (``in_thread``: in a thread of this process). Its exception is raised here
        either way. A worker that died (killed, out of memory) is reported and ``work`` is
        run here instead: the upload is not lost for it."""
        if not large or self.workers <= 0:
            return await asyncio.to_thread(work, *args) if in_thread else work(*args)
        pool = self._started()
        self.sent += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work, *args)
        except BrokenProcessPool:
            log.error("a parsing worker process died; parsing this upload in the service")
            self.died += 1
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return await asyncio.to_thread(work, *args) if in_thread else work(*args)

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_forget_settings,
            )
        return self._pool

    def close(self) -> None:
        """Stop the workers (what they were parsing is answered with an error)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _forget_settings() -> None:
    """In a worker, before any work: the service's settings (its keyring, when given as a
    variable's value, and its database URLs among them) are no longer in its environment,
    so nothing a parser calls can pick them up."""
    for name in [n for n in os.environ if n.upper().startswith("INFOSHARE_")]:
        del os.environ[name]
