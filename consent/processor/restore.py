"""Read partitions of a changelog from the beginning to their committed end."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiokafka import ConsumerRecord, TopicPartition

from services.backbone import kafka


async def read_changelog(
    *,
    bootstrap: str,
    topic: str,
    partitions: Iterable[int],
    apply: Callable[[ConsumerRecord], None],
) -> int:
    """Apply every committed record of ``topic``'s ``partitions`` in order; return how many.
    End offsets are read first (read_committed: the last stable offset), so it terminates."""
    tps = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not tps:
        return 0
    reader = kafka.consumer(bootstrap=bootstrap, group_id=None)
    await reader.start()
    applied = 0
    try:
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        ends = await reader.end_offsets(tps)
        pending = {tp for tp in tps if ends[tp] > 0}
        while pending:
            batch = await reader.getmany(*pending, timeout_ms=1000)
            for records in batch.values():
                for rec in records:
                    apply(rec)
                    applied += 1
            pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
    finally:
        await reader.stop()
    return applied
