"""Group commit for blocking work: callers on the event loop hand in one item each; a thread
of the batcher's own runs every item waiting in one call of ``work`` (one transaction, one
commit), and each caller gets its own item's answer or exception.

No item waits for company: the first starts a batch at once, and those that arrive while it
runs make the next one. Under load the batches grow by themselves, so a commit serves many
requests; when idle, an item costs one thread hop, as ``asyncio.to_thread`` would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Work = Callable[[Sequence[T]], Sequence["R | Exception"]]


class Batcher(Generic[T, R]):
    def __init__(self, work: Work[T, R], *, name: str, max_batch: int = 256) -> None:
        self._work = work
        self._name = name
        self._max = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._draining: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._closed = False

    async def run(self, item: T) -> R:
        """``item``'s answer from ``work``, raised if it is an exception (RuntimeError once
        the batcher is closed: the service is stopping)."""
        if self._closed:
            raise RuntimeError(f"{self._name}: closed, the service is stopping")
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, answer))
        if self._draining is None or self._draining.done():
            self._draining = loop.create_task(self._drain(), name=f"{self._name} batches")
        return await answer

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._waiting and not self._closed:
                if self._thread is None:
                    self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
                batch, self._waiting = self._waiting[: self._max], self._waiting[self._max :]
                try:
                    answers = await loop.run_in_executor(
                        self._thread, self._work, [item for item, _ in batch]
                    )
                    if len(answers) != len(batch):
                        raise RuntimeError(f"{self._name}: {len(answers)} answers to {len(batch)}")
                except Exception as exc:
                    answers = [exc] * len(batch)
                for (_, future), answer in zip(batch, answers, strict=True):
                    if future.done():  # its caller went away; the work was done regardless
                        continue
                    if isinstance(answer, Exception):
                        future.set_exception(answer)
                    else:
                        future.set_result(answer)
        finally:  # closed, or this task cancelled: nobody waits for an answer forever
            for why, left in (
                ("stopping while it was being stored: its outcome is not known", batch),
                ("stopping before it was stored", self._waiting),
            ):
                for _, future in left:
                    if not future.done():
                        future.set_exception(RuntimeError(f"{self._name}: {why}"))
            self._waiting = []

    def close(self) -> None:
        """Take no more items; wait for the batch running (if any), and answer those still
        waiting with an error."""
        self._closed = True
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
