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
