"""Kafka client factories and topic administration: the one place aiokafka is configured."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from services.backbone.errors import BackboneError
from services.backbone.topics import TopicSpec

MAX_BATCH_BYTES = 512 * 1024


class KafkaUnavailable(BackboneError):
    """The broker could not be reached."""


def producer(
    bootstrap: str,
    *,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 60000,
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all); transactional when given an id. The broker aborts
    a transaction still open after ``transaction_timeout_ms``."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        transactional_id=transactional_id,
        transaction_timeout_ms=transaction_timeout_ms,
        linger_ms=5,
        # aiokafka holds one batch per partition: when it is full, send() waits for it to
        # reach the broker. 16 KiB (the default) is ten audit records; this is thousands.
        max_batch_size=MAX_BATCH_BYTES,
        request_timeout_ms=30000,
    )


def consumer(
    *topics: str,
    bootstrap: str,
    group_id: str | None,
    from_beginning: bool = True,
    fetch_max_wait_ms: int = 500,
) -> AIOKafkaConsumer:
    """A read_committed consumer with manual offset management (auto-commit never on).

    Range assignment keeps partition N of every co-partitioned source topic on the same
    instance, so one instance holds all of a child's state. ``fetch_max_wait_ms`` is how
    long the broker holds a fetch of an idle topic; aiokafka answers ``end_offsets`` only
    between fetches, so a reader that asks for them often wants it short.
    """
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest" if from_beginning else "latest",
        partition_assignment_strategy=(RangePartitionAssignor,),
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


async def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec], *, wait_s: float = 30
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await asyncio.wait_for(admin.start(), wait_s)
    except (KafkaConnectionError, TimeoutError) as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}") from exc
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(
                s.name,
                s.partitions,
                1,
                topic_configs=s.configs(),
            )
            for s in wanted
        ]
        with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another
            await admin.create_topics(new)
        return [s.name for s in wanted]
    finally:
        await admin.close()


async def partition_counts(bootstrap: str, topics: Iterable[str]) -> dict[str, int]:
    """How many partitions each of ``topics`` has (0: it does not exist)."""
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        await asyncio.wait_for(admin.start(), 30)
        described = await admin.describe_topics(names)
    except (KafkaConnectionError, TimeoutError) as exc:
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}") from exc
    finally:
        await admin.close()
    found = {d["topic"]: len(d["partitions"]) for d in described if not d["error_code"]}
    return {t: found.get(t, 0) for t in names}
