"""Reading partitions up to offsets fixed when the read begins: to their end (a changelog
restored, the consent view caught up, dead letters listed) or to a chosen stop (a replay's
range, a simulation's records, what ``infoshare status`` counts).

One loop serves every reader. It is read_committed: the stop is the last stable offset when
the read begins, and a position steps over transaction markers and aborted records, so a
read ends even when the last offsets before the stop hold no record a reader is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess

T = TypeVar("T")
Start = int | None  # an offset to seek to first; None: where the consumer stands


async def read_spans(
    consumer: AIOKafkaConsumer,
    spans: Mapping[TopicPartition, tuple[Start, int]],
    *,
    max_records: int | None = None,
    poll_ms: int = 1000,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Each fetch's records of ``spans`` (partition -> (start, stop)), in partition order,
    only those before their partition's stop, until every partition's position has reached
    its stop. The partitions must be assigned to ``consumer``. ``max_records`` bounds one
    fetch (a caller that commits per batch wants small ones)."""
    stops = {tp: stop for tp, (_, stop) in spans.items()}
    for tp, (start, _) in spans.items():
        if start is not None:
            consumer.seek(tp, start)
    pending = {tp for tp in stops if await consumer.position(tp) < stops[tp]}
    while pending:
        fetched = await consumer.getmany(*pending, timeout_ms=poll_ms, max_records=max_records)
        batch = [
            rec
            for tp in sorted(fetched, key=lambda tp: (tp.topic, tp.partition))
            for rec in fetched[tp]
            if rec.offset < stops[tp]
        ]
        if batch:
            yield batch
        pending = {tp for tp in pending if await consumer.position(tp) < stops[tp]}


async def read_to_end(
    consumer: AIOKafkaConsumer,
    partitions: Iterable[TopicPartition] | None = None,
    *,
    from_beginning: bool = False,
    poll_ms: int = 1000,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Each fetch of ``partitions`` (None: every partition assigned) up to the end offsets
    as of now, from where the consumer stands or, with ``from_beginning``, from the oldest
    record kept."""
    tps = sorted(consumer.assignment() if partitions is None else partitions)
    if not tps:
        return
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    async for batch in read_spans(consumer, {tp: (None, ends[tp]) for tp in tps}, poll_ms=poll_ms):
        yield batch


async def read_table(
    access: KafkaAccess,
    topic: str,
    decode: Callable[[bytes], T],
    *,
    partitions: Iterable[int] | None = None,
) -> dict[str, T]:
    """A compacted changelog read back into a table, oldest record first: each key's latest
    value, decoded; a tombstone (null value) removes its key. ``partitions`` (None: all)
    restricts it to those partition numbers."""
    table: dict[str, T] = {}
    reader = kafka.consumer(topic, access=access, group_id=None)
    await reader.start()
    try:
        tps = sorted(reader.assignment())  # group-less: every partition of the topic
        if partitions is not None:
            wanted = set(partitions)
            tps = [tp for tp in tps if tp.partition in wanted]
            if not tps:  # (assigning nothing leaves aiokafka's fetcher unable to stop)
                return table
            reader.unsubscribe()
            reader.assign(tps)
        async for batch in read_to_end(reader, tps, from_beginning=True):
            for rec in batch:
                apply_change(table, rec, decode)
    finally:
        await reader.stop()
    return table


def apply_change(table: dict[str, T], rec: ConsumerRecord, decode: Callable[[bytes], T]) -> None:
    """One changelog record into ``table``: a tombstone removes its key."""
    key = rec.key.decode()
    if rec.value is None:
        table.pop(key, None)
    else:
        table[key] = decode(rec.value)
