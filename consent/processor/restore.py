"""Read partitions of a changelog from the beginning to their committed end."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiokafka import ConsumerRecord

from services.backbone import kafka


async def read_changelog(
    *,
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] | None,
    apply: Callable[[ConsumerRecord], None],
) -> int:
    """Apply every committed record of ``topic``'s ``partitions`` (None: all) in order;
    return how many. End offsets are read first (read_committed: the last stable offset),
    so it terminates."""
    reader = kafka.consumer(topic, bootstrap=bootstrap, group_id=None)
    await reader.start()
    applied = 0
    try:
        tps = sorted(reader.assignment())  # group-less: every partition of the topic
        if partitions is not None:
            wanted = set(partitions)
            tps = [tp for tp in tps if tp.partition in wanted]
            reader.unsubscribe()
            reader.assign(tps)
        if not tps:
            return 0
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
