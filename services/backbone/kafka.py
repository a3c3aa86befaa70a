"""Kafka client factories and topic administration: the one place aiokafka is configured."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaConnectionError

from services.backbone.errors import BackboneError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import TopicSpec

MAX_BATCH_BYTES = 512 * 1024


class KafkaUnavailable(BackboneError):
    """The broker could not be reached."""


class TopicsMissing(BackboneError):
    """Topics this process needs do not exist, and it may not create them."""


# CreateTopics error codes that mean "not allowed": TOPIC_AUTHORIZATION_FAILED and
# CLUSTER_AUTHORIZATION_FAILED.
_REFUSED = frozenset({29, 31})
_ALREADY_EXISTS = 36


def producer(
    access: KafkaAccess,
    *,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 60000,
) -> AIOKafkaProducer:
    """An idempotent producer (acks=all); transactional when given an id. The broker aborts
    a transaction still open after ``transaction_timeout_ms``."""
    return AIOKafkaProducer(
        **access.aiokafka(),
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
    access: KafkaAccess,
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
        **access.aiokafka(),
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest" if from_beginning else "latest",
        partition_assignment_strategy=(RangePartitionAssignor,),
        fetch_max_wait_ms=fetch_max_wait_ms,
    )


def admin(access: KafkaAccess, *, request_timeout_ms: int = 10000) -> AIOKafkaAdminClient:
    """An admin client (not started)."""
    return AIOKafkaAdminClient(**access.aiokafka(), request_timeout_ms=request_timeout_ms)


async def ensure_topics(
    access: KafkaAccess, specs: Iterable[TopicSpec], *, wait_s: float = 30
) -> list[str]:
    """Create the topics that do not exist yet; return the names created. A principal may
    see only the topics it has rights on: one without the right to create is told which
    topics are missing, and that an administrator creates them."""
    client = await _started_admin(access, wait_s)
    try:
        existing = set(await client.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        new = [
            NewTopic(s.name, s.partitions, s.replication, topic_configs=s.configs()) for s in wanted
        ]
        response = await client.create_topics(new)
        errors = {
            name: (code, message)
            for name, code, *rest in getattr(response, "topic_errors", [])
            for message in [rest[0] if rest else None]
            if code not in (0, _ALREADY_EXISTS)  # another made it meanwhile: fine
        }
        refused = sorted(name for name, (code, _) in errors.items() if code in _REFUSED)
        if refused:
            raise TopicsMissing(
                f"Kafka principal {access.principal} may not create the missing topics "
                f"{', '.join(refused)}: an administrator creates them "
                "(infoshare kafka topics --apply)"
            )
        if errors:
            said = "; ".join(f"{n}: error {c} {m or ''}".rstrip() for n, (c, m) in errors.items())
            raise BackboneError(f"Kafka refused to create topics: {said}")
        return [s.name for s in wanted]
    finally:
        await client.close()


_NOT_READY = (3, 5)  # UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE: just created


async def partition_counts(
    access: KafkaAccess, topics: Iterable[str], *, settle_s: float = 10.0
) -> dict[str, int]:
    """How many partitions each of ``topics`` has (0: it does not exist). A topic made a
    moment ago may not be described yet: it is asked about again for up to ``settle_s``."""
    names = list(topics)
    client = await _started_admin(access, 30)
    deadline = asyncio.get_running_loop().time() + settle_s
    try:
        while True:
            described = await client.describe_topics(names)
            waiting = [d for d in described if d["error_code"] in _NOT_READY]
            if not waiting or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await client.close()
    found = {d["topic"]: len(d["partitions"]) for d in described if not d["error_code"]}
    return {t: found.get(t, 0) for t in names}


async def _started_admin(access: KafkaAccess, wait_s: float) -> AIOKafkaAdminClient:
    client = admin(access)
    try:
        await asyncio.wait_for(client.start(), wait_s)
    except (KafkaConnectionError, TimeoutError) as exc:
        await client.close()
        raise KafkaUnavailable(f"cannot reach Kafka at {access.bootstrap}") from exc
    return client
