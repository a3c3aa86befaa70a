"""Work on an input in a worker process, off the service's event loop and its GIL.

- An agency's large native input: a FHIR Bundle of 2,000 Encounters took over a second of
  CPU to validate (fhir.resources), and a school's CSV export of 2,000 pupils a quarter of
  one. Parsed on the event loop, or in a thread that holds the GIL as long, that stopped
  every other request of the service meanwhile (a single event, a health check, the
  relay's pass). Small inputs are parsed where they arrive: sending them to a worker would
  cost more than parsing them.
- The audit service's batches from Kafka, parsed and prepared for the store while the
  batch before is written (services/audit/ingest.py).

In a worker it runs beside the service, on another CPU. What a worker runs is a pure
function of the bytes or document it is given (parsing, validation, mapping): it is given
no key, database or socket. Workers are started by ``spawn`` (nothing of the service's
memory is inherited) when the first input for them arrives, not at start. They drop the
service's settings from their environment before any work.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from services.backbone import logs

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
        self.died = 0  # of them, parsed here after all: their workers died twice
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False

    async def run(
        self, work: Callable[..., R], *args: Any, large: bool, in_thread: bool = False
    ) -> R:
        """``work(*args)``: in a worker process if ``large`` and there are workers, else
        here (``in_thread``: in a thread of this process). Its exception is raised here
        either way.

        A worker that dies (killed, out of memory) breaks every parse its pool was given:
        each is given once more to a new pool, and one whose second worker dies too is
        parsed here, in a thread. Either way the upload is not lost."""
        if large and self.workers > 0 and not self._closed:
            self.sent += 1
            for _attempt in range(2):
                pool = self._started()
                try:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(pool, _in_worker, work, *args)
                except BrokenProcessPool:
                    self._forget(pool)
            log.error("worker processes died twice; doing their work in the service")
            self.died += 1
            in_thread = True
        return await run_in_threadpool(work, *args) if in_thread else work(*args)

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_started,
                initargs=(logs.configured_service(),),
            )
        return self._pool

    def _forget(self, pool: ProcessPoolExecutor) -> None:
        """A broken pool is dropped (once, by whichever of its parses notices first)."""
        if self._pool is pool:
            log.error("a worker process died; its work goes to a new one")
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers, waiting for what they are parsing; later inputs are parsed
        here. Blocks: call it from a thread."""
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _in_worker(work: Callable[..., R], *args: Any) -> R:
    """``work(*args)`` in a worker, the garbage collector kept out of it:
    - Before its first work, what the worker has made lives as long as it does (the modules
      and models ``work`` imported as it was unpickled): it is frozen out of the
      collector's reach.
    - During a parse the collector is off. A parse's objects (a 5 MiB body's at most) are
      freed by reference counting as it ends, or collected after it. With it on, a 2,000-entry
      Bundle met a dozen full collections of 30 to 160 ms, each walking every object the
      parse had made so far."""
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True
    gc.disable()
    try:
        return work(*args)
    except BaseException as exc:
        # Only the exception goes back. What it was raised while handling (fhir.resources'
        # ValidationError, its traceback's frames) holds the whole parse, and the pool keeps
        # the last exception until the next: with the collector this rarely on, a refused
        # 5 MiB Bundle's objects outlived it by some ten uploads.
        exc.__context__ = exc.__cause__ = None
        raise
    finally:
        gc.enable()


_frozen = False


def _worker_started(service: str | None = None) -> None:
    """In a worker, before any work:
    - it logs as its service does (``service``: JSON lines, redacted), Python's warnings
      among them, rather than raw to the stderr it shares with the service;
    - the service's settings (its keyring, when given as a variable's value, and its
      database URLs among them) leave its environment, so nothing a parser calls can pick
      them up;
    - it exits when the service does, however the service ends (a worker waits on its
      queue, which a killed service never closes)."""
    if service is not None:
        logs.configure_logging(service)  # before the settings go: it reads the log format
    for name in [n for n in os.environ if n.upper().startswith("INFOSHARE_")]:
        del os.environ[name]
    service_process = multiprocessing.parent_process()
    if service_process is not None:
        threading.Thread(
            target=_exit_after, args=(service_process.sentinel,), name="service-watch", daemon=True
        ).start()


def _exit_after(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)
