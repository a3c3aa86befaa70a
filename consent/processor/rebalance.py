"""What the processor does when the group moves partitions: finish or fail the batch in
flight before letting go, and on taking partitions, fence, seek, restore, then decide."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sized
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from consent.processor.producers import PartitionProducers

log = logging.getLogger(__name__)


class PartitionHolder(Protocol):
    """What a rebalance needs of the processor whose partitions move (the loop's Processor):
    the batch lock it waits for, the flags it sets, and the state it restores."""

    batch_lock: asyncio.Lock
    state_ready: asyncio.Event
    generation: int
    restore_failed: BaseException | None

    @property
    def seen(self) -> Sized: ...

    async def restore_state(self, partitions: Iterable[int]) -> int: ...


class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, processor: PartitionHolder, consumer: AIOKafkaConsumer, producers: PartitionProducers
    ) -> None:
        self.processor = processor
        self.consumer = consumer
        self.producers = producers

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Wait for the batch in flight (it commits or fails as a whole); from here until
        the next assignment has restored state, nothing is decided."""
        async with self.processor.batch_lock:
            self.processor.state_ready.clear()
            self.processor.generation += 1

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """In this order: start the producers of the assigned partition numbers (which
        fences earlier holders and completes their last commit), then read the committed
        offsets, which are now final, then restore state. aiokafka would only log a
        listener's error; the loop reads ``restore_failed`` and ends the session instead."""
        processor = self.processor
        numbers = {tp.partition for tp in assigned}
        processor.restore_failed = None
        try:
            _require_whole_numbers(assigned, self.consumer.subscription())
            await self.producers.take(numbers)
            await rewind(self.consumer, assigned)
            restored = await processor.restore_state(numbers)
            log.info(
                "assigned partitions %s; restored %d active protection plans, %d event ids",
                sorted(numbers),
                restored,
                len(processor.seen),
            )
        except Exception as exc:
            processor.restore_failed = exc
            log.error("could not take partitions %s: %s", sorted(numbers), type(exc).__name__)
        finally:
            processor.generation += 1
            processor.state_ready.set()


class NotCoPartitioned(Exception):
    """This member holds partition N of some source topics but not of others."""


def _require_whole_numbers(assigned: set[TopicPartition], topics: Iterable[str]) -> None:
    """Partition N of every source topic, or none of them: one transactional id per number
    fences them together, and plan state is per child, whatever the agency. The range
    assignor gives that when every member subscribes to the same topics; during a rolling
    deploy that adds a publisher, members disagree, and this instance refuses to decide."""
    topics = set(topics)
    for number in {tp.partition for tp in assigned}:
        held = {tp.topic for tp in assigned if tp.partition == number}
        if held != topics:
            missing = ", ".join(sorted(topics - held))
            raise NotCoPartitioned(
                f"assigned partition {number} without the same partition of {missing}: "
                "are all processor instances running the same agency directory?"
            )


async def rewind(consumer: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> None:
    """Put still-assigned ``partitions`` back at their committed offsets: the only offsets
    that are right whoever processed in between, since nothing commits outside a batch."""
    assigned = consumer.assignment()
    for tp in partitions:
        if tp not in assigned:
            continue
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
