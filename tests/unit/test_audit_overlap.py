"""The audit ingester's rhythm (services/audit/overlap.py, services/audit/ingest.py): a
batch written in a thread is waited for however its waiter ends, and a batch's offsets are
committed only for partitions this instance still reads."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError

from services.audit.ingest import _Ingester
from services.audit.overlap import Overlap
from services.backbone.consumer_lag import ConsumerLag
from services.backbone.offload import Offload


async def test_a_write_outlives_a_cancelled_wait_and_abandon_waits_for_it() -> None:
    overlap = Overlap(Offload(0), "sqlite")
    release, written = threading.Event(), threading.Event()

    def write() -> None:
        release.wait(10)
        written.set()

    await overlap.then(asyncio.to_thread(write))
    waiter = asyncio.create_task(overlap.written())
    await asyncio.sleep(0)  # the waiter reaches its await
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    abandoning = asyncio.create_task(overlap.abandon())
    await asyncio.sleep(0)
    assert not abandoning.done()  # the thread is still writing
    release.set()
    await abandoning
    assert written.is_set()


class _Reader:
    def __init__(self, assigned: set[TopicPartition], *, moves: bool = False) -> None:
        self.assigned, self.moves = assigned, moves
        self.committed: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.moves:
            raise IllegalStateError("Partition is not assigned")
        self.committed.append(offsets)


def _ingester(reader: _Reader) -> _Ingester:
    store: Any = SimpleNamespace(engine=SimpleNamespace(url=SimpleNamespace(drivername="sqlite")))
    return _Ingester(
        store,
        reader,
        None,
        activity=None,
        dlq_topic="dlq.audit",
        seen=None,
        offload=Offload(0),
    )


def _arrived(*where: tuple[int, int]) -> Any:
    return [(SimpleNamespace(topic="audit", partition=p, offset=o), None) for p, o in where]


async def test_a_batch_commits_its_own_offsets_for_the_partitions_still_read() -> None:
    reader = _Reader({TopicPartition("audit", 0)})
    await _ingester(reader)._commit(_arrived((0, 4), (1, 9), (0, 5)))
    assert reader.committed == [{TopicPartition("audit", 0): 6}]
    await _ingester(reader)._commit(_arrived((1, 10)))  # nothing left to commit here
    assert len(reader.committed) == 1


async def test_a_partition_moved_during_the_commit_is_left_to_its_new_reader() -> None:
    reader = _Reader({TopicPartition("audit", 0)}, moves=True)
    await _ingester(reader)._commit(_arrived((0, 4)))  # logged, not raised
    assert reader.committed == []


class _Consumer:
    """What the lag gauge reads of a consumer: stable end 100, position 60."""

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition("audit", 0)}

    def last_stable_offset(self, _tp: TopicPartition) -> int:
        return 100

    async def position(self, _tp: TopicPartition) -> int:
        return 60


async def test_the_lag_counts_a_batch_taken_but_not_yet_stored() -> None:
    """The ingester reads a batch ahead: records it has taken but not stored are lag."""
    seen: dict[str, float] = {}

    class Meter:
        def create_observable_gauge(self, name: str, callbacks: Any, **_: Any) -> None:
            seen["callback"] = callbacks[0]

    lag = ConsumerLag(Meter(), "audit")  # type: ignore[arg-type]
    lag.attach(_Consumer())
    await lag.refresh()
    assert [o.value for o in lag.observe(None)] == [40]  # type: ignore[arg-type]
    ingester = _ingester(_Reader({TopicPartition("audit", 0)}))
    ingester.taken.update({("audit", 0): 10, ("audit", 1): 5})
    await lag.refresh(+ingester.taken)
    assert [o.value for o in lag.observe(None)] == [50]  # type: ignore[arg-type]


async def test_a_stored_batch_is_no_longer_counted_as_taken() -> None:
    reader = _Reader({TopicPartition("audit", 0)})
    ingester = _ingester(reader)
    ingester.store = SimpleNamespace(add_batch=lambda records: len(records))  # type: ignore[assignment]
    arrived = _arrived((0, 4), (0, 5))
    ingester.taken.update({("audit", 0): 3})
    await ingester._store(arrived, 0)
    assert +ingester.taken == {("audit", 0): 1}
    assert reader.committed == [{TopicPartition("audit", 0): 6}]
