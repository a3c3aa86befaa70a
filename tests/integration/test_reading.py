"""Reading to fixed offsets on the real broker (services/backbone/reading.py): only committed
records, up to the end found when the read began, ending even when the last offsets are
transaction markers of aborted and committed transactions; a changelog read back as a table."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition

from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_spans, read_table, read_to_end
from services.backbone.topics import TopicSpec

pytestmark = pytest.mark.kafka


async def _write(access: KafkaAccess, topic: str, namespace: str) -> None:
    """``a``..``e`` committed, ``x`` and ``y`` aborted in between, a tombstone for ``b``: every
    transaction leaves a marker behind its records."""
    producer = kafka.producer(access, transactional_id=f"{namespace}reading-writer")
    await producer.start()
    try:
        for key, value, commit in [
            (b"a", b"1", True),
            (b"x", b"aborted", False),
            (b"b", b"2", True),
            (b"c", b"3", True),
            (b"y", b"aborted", False),
            (b"b", None, True),
            (b"d", b"4", True),
            (b"e", b"5", True),
            (b"y", b"aborted", False),
        ]:
            await producer.begin_transaction()
            await producer.send_and_wait(topic, value, key=key, partition=0)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


async def test_only_committed_records_are_read_and_the_read_ends(
    kafka_access: KafkaAccess, namespace: str
) -> None:
    topic = f"{namespace}reading"
    await kafka.ensure_topics(kafka_access, [TopicSpec(topic, 1)])
    await _write(kafka_access, topic, namespace)

    reader = kafka.consumer(topic, access=kafka_access, group_id=None)
    await reader.start()
    try:
        async with asyncio.timeout(30):  # the read must end though markers close the log
            everything = [r async for batch in read_to_end(reader) for r in batch]
        assert [r.key for r in everything] == [b"a", b"b", b"c", b"b", b"d", b"e"]
        tp = TopicPartition(topic, 0)
        third = everything[2].offset
        async with asyncio.timeout(30):
            span = [
                r async for b in read_spans(reader, {tp: (third, everything[4].offset)}) for r in b
            ]
        assert [r.key for r in span] == [b"c", b"b"]
    finally:
        await reader.stop()

    table = await read_table(kafka_access, topic, bytes.decode)
    assert table == {"a": "1", "c": "3", "d": "4", "e": "5"}
    assert await read_table(kafka_access, topic, bytes.decode, partitions=[1]) == {}
