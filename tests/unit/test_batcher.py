"""Group commit (services/backbone/batcher.py): items that arrive while a batch runs make the
next batch together; each caller gets its own item's answer or exception; a batch that
fails as a whole fails each of its callers, and the batcher goes on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from services.backbone.batcher import Batcher


class Work:
    """Doubles numbers; refuses negative ones; fails a whole batch holding 13. The first
    batch waits until released, so that others queue behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.started.set()
        if not self.batches:
            self.release.wait(10)
        self.batches.append(list(items))
        if 13 in items:
            raise RuntimeError("the whole batch failed")
        return [ValueError(f"{i} refused") if i < 0 else i * 2 for i in items]


async def test_items_arriving_during_a_batch_are_run_together_next() -> None:
    work = Work()
    batcher: Batcher[int, int] = Batcher(work, name="test")
    first = asyncio.create_task(batcher.run(1))
    assert await asyncio.to_thread(work.started.wait, 10)  # the first batch runs ...
    others = [asyncio.create_task(batcher.run(i)) for i in (2, 3, 4)]
    await asyncio.sleep(0)  # ... while these queue
    work.release.set()
    assert await first == 2
    assert await asyncio.gather(*others) == [4, 6, 8]
    assert work.batches == [[1], [2, 3, 4]]
    batcher.close()


async def test_each_caller_gets_its_own_refusal_and_a_failed_batch_fails_all() -> None:
    work = Work()
    work.release.set()
    batcher: Batcher[int, int] = Batcher(work, name="test")
    got = await asyncio.gather(batcher.run(5), batcher.run(-1), return_exceptions=True)
    assert got[0] == 10 and isinstance(got[1], ValueError)
    failed = await asyncio.gather(batcher.run(13), batcher.run(6), return_exceptions=True)
    assert all(isinstance(f, RuntimeError) for f in failed)
    assert await batcher.run(7) == 14  # it goes on
    batcher.close()


async def test_a_batch_is_no_larger_than_its_limit() -> None:
    work = Work()
    work.release.set()
    batcher: Batcher[int, int] = Batcher(work, name="test", max_batch=2)
    assert await asyncio.gather(*(batcher.run(i) for i in range(5))) == [0, 2, 4, 6, 8]
    assert [len(b) for b in work.batches] == [2, 2, 1]
    batcher.close()


def test_work_answering_the_wrong_number_fails_its_callers() -> None:
    batcher: Batcher[int, int] = Batcher(lambda items: [], name="test")
    with pytest.raises(RuntimeError, match="0 answers to 1"):
        asyncio.run(batcher.run(1))
    batcher.close()


async def test_a_closed_batcher_refuses_items_and_a_cancelled_one_answers_its_callers() -> None:
    work = Work()
    batcher: Batcher[int, int] = Batcher(work, name="test")
    first = asyncio.create_task(batcher.run(1))
    assert await asyncio.to_thread(work.started.wait, 10)  # the first batch runs ...
    waiting = asyncio.create_task(batcher.run(2))  # ... and this one waits behind it
    await asyncio.sleep(0)
    assert batcher._draining is not None
    batcher._draining.cancel()  # the service's loop stopping
    with pytest.raises(RuntimeError, match="outcome is not known"):
        await first
    with pytest.raises(RuntimeError, match="before it was stored"):
        await waiting
    work.release.set()
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.run(3)
