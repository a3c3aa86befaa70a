"""The bare baselines the processor is measured against, on the same client and broker:
records copied from the input topics (the processor's own: every agency's source topic)
to an output topic, nothing decided.

- **A**, at-least-once: fetch a batch, send every record, wait for the acknowledgements,
  commit the consumer's offsets.
- **B**, exactly once as the processor does it: the same fetch size and poll, then one
  transaction per input partition (a transactional producer each, fencing as the processor's
  ``PartitionProducers``), all in flight together, offsets sent to the transaction.
- **C**: B writing ``fanout`` records per input on average (a fraction is spread over the
  records, ``Fanout``), as many as the processor writes.

Each keeps the clock as the processor's figure is kept (clock.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from consent.processor.producers import PartitionProducers
from deploy.bench.fastpath.clock import Clock
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess

POLL_MS = 500  # as the processor's loop polls


class Fanout:
    """How many copies each next record gets, so that on average there are ``mean``: the
    whole part always, one more as the fractions add up to one."""

    def __init__(self, mean: float) -> None:
        self.whole, self.fraction = int(mean), mean - int(mean)
        self._owed = 0.0

    def next(self) -> int:
        self._owed += self.fraction
        if self._owed >= 1.0:
            self._owed -= 1.0
            return self.whole + 1
        return self.whole


@dataclass(frozen=True)
class Passthrough:
    """What every variant copies: from ``sources`` to ``sink`` as consumer ``group``,
    fetching up to ``batch_max`` at a time, ticking ``clock``."""

    access: KafkaAccess
    sources: Sequence[str]
    sink: str
    group: str
    clock: Clock
    batch_max: int

    def consumer(self) -> AIOKafkaConsumer:
        return kafka.consumer(*self.sources, access=self.access, group_id=self.group)


async def at_least_once(run: Passthrough) -> None:
    """Variant A."""
    consumer = run.consumer()
    producer = kafka.producer(run.access)
    await consumer.start()
    await producer.start()
    try:
        async for batch in _batches(consumer, run.clock, run.batch_max):
            records = [r for part in batch.values() for r in part]
            await _send_all(producer, run.sink, records, Fanout(1.0))
            await consumer.commit()
            run.clock.tick(len(records))
    finally:
        await consumer.stop()
        await producer.stop()


async def transactional(
    run: Passthrough, *, fanout: float = 1.0, transaction_timeout_ms: int = 60000
) -> None:
    """Variants B (``fanout`` 1) and C. As the processor does, one transaction per input
    partition number, across the co-partitioned source topics."""
    copies = Fanout(fanout)
    consumer = run.consumer()
    producers = PartitionProducers(
        access=run.access, prefix=run.group, transaction_timeout_ms=transaction_timeout_ms
    )
    await consumer.start()
    held: set[int] = set()
    try:
        async for batch in _batches(consumer, run.clock, run.batch_max):
            assigned = {tp.partition for tp in consumer.assignment()}
            if assigned != held:  # one consumer in a new group: assigned once, at the start
                await producers.take(assigned)
                held = assigned
            by_partition: dict[int, dict[TopicPartition, list[ConsumerRecord]]] = {}
            for tp, records in batch.items():
                by_partition.setdefault(tp.partition, {})[tp] = records
            await asyncio.gather(
                *(
                    _copy(producers[partition], parts, run.sink, run.group, copies)
                    for partition, parts in by_partition.items()
                )
            )
            run.clock.tick(sum(len(records) for records in batch.values()))
    finally:
        await consumer.stop()
        await producers.close()


async def _batches(
    consumer: AIOKafkaConsumer, clock: Clock, batch_max: int
) -> AsyncIterator[dict[TopicPartition, list[ConsumerRecord]]]:
    """Each non-empty fetch, polled as the processor polls, until the clock has them all."""
    while not clock.finished.is_set():
        batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=batch_max)
        if batch:
            yield batch


async def _copy(
    producer: AIOKafkaProducer,
    parts: dict[TopicPartition, list[ConsumerRecord]],
    sink: str,
    group: str,
    copies: Fanout,
) -> None:
    await producer.begin_transaction()
    await _send_all(producer, sink, [r for records in parts.values() for r in records], copies)
    offsets = {tp: records[-1].offset + 1 for tp, records in parts.items()}
    await producer.send_offsets_to_transaction(offsets, group)
    await producer.commit_transaction()


async def _send_all(
    producer: AIOKafkaProducer, sink: str, records: Sequence[ConsumerRecord], copies: Fanout
) -> None:
    """Send ``copies`` of each record to ``sink`` and wait until the broker has them all."""
    sent = []
    for r in records:
        for _ in range(copies.next()):
            sent.append(
                await producer.send(sink, r.value, key=r.key, headers=list(r.headers or ()))
            )
    await asyncio.gather(*sent)
