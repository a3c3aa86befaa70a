"""Helpers for tests against the real broker: read a topic back until a condition holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiokafka import ConsumerRecord

from services.backbone import kafka


async def read_topic(
    topic: str,
    bootstrap: str,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    wait_s: float = 30.0,
) -> list[ConsumerRecord]:
    """Every committed record of ``topic`` from the start, once ``until(records)`` holds."""
    reader = kafka.consumer(topic, bootstrap=bootstrap, group_id=None)
    await reader.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(wait_s):
            while not until(records):
                batch = await reader.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
    except TimeoutError:
        raise AssertionError(
            f"{topic}: condition not met after {wait_s}s; read {len(records)} records"
        ) from None
    finally:
        await reader.stop()
    return records


async def end_offsets(topic: str, bootstrap: str) -> dict[int, int]:
    reader = kafka.consumer(topic, bootstrap=bootstrap, group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets(list(reader.assignment()))
    finally:
        await reader.stop()
    return {tp.partition: offset for tp, offset in ends.items()}
