"""Dead letters read back and retried: what ``infoshare dlq`` does on Kafka.

Reads are group-less and read_committed, up to the end offsets found when the read begins,
so they always finish. A retry re-publishes each original record to its origin and audits it
in the same Kafka transaction: either both are committed or neither is.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.deadletter import DeadLetter, retry_headers
from services.backbone.kafka import KafkaUnavailable
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_spans
from services.backbone.topics import Topics

BATCH = 100  # dead letters per retry transaction
MAX_TEXT = 64  # event ids and types in audit records come from untrusted input


class Stage(StrEnum):
    """The stages that dead-letter, each to ``dlq.<stage>``."""

    PROCESSOR = "processor"
    AUDIT = "audit"
    DELIVERY = "delivery"
    OUTBOX = "outbox"


async def _started(client: Any, access: KafkaAccess) -> None:
    try:
        await asyncio.wait_for(client.start(), 20)
    except (KafkaError, TimeoutError, OSError) as exc:
        await client.stop()
        raise KafkaUnavailable(f"cannot reach Kafka at {access.bootstrap}") from exc


async def read_letters(
    access: KafkaAccess,
    stages: Mapping[str, str],
    *,
    window: tuple[int, int, int] | None = None,
    wait_s: float = 120,
) -> list[DeadLetter]:
    """The dead letters of the topics in ``stages`` (topic -> stage), oldest first per topic,
    up to the ends found now; a topic that does not exist has none. ``window`` (partition,
    first, stop) reads only that partition's offsets ``first`` up to ``stop`` (exclusive)."""
    probe = kafka.consumer(access=access, group_id=None)
    await _started(probe, access)
    try:
        names = await probe.topics()
    finally:
        await probe.stop()
    existing = [t for t in stages if t in names]
    if not existing:
        return []
    reader = kafka.consumer(*existing, access=access, group_id=None)
    await _started(reader, access)
    letters: list[DeadLetter] = []
    try:
        async with asyncio.timeout(wait_s):
            parts = list(reader.assignment())
            ends = await reader.end_offsets(parts)
            spans: dict[TopicPartition, tuple[int | None, int]] = {
                tp: (None, ends[tp]) for tp in parts
            }
            if window is not None:
                part, first, stop = window
                spans = {tp: (first, min(ends[tp], stop)) for tp in parts if tp.partition == part}
            async for batch in read_spans(reader, spans, poll_ms=500):
                letters += [_letter(stages[r.topic], r) for r in batch]
    except (KafkaError, TimeoutError) as exc:
        raise KafkaUnavailable(f"Kafka at {access.bootstrap} stopped answering") from exc
    finally:
        await reader.stop()
    return sorted(letters, key=lambda d: (existing.index(d.topic), d.partition, d.offset))


def _letter(stage: str, rec: Any) -> DeadLetter:
    return DeadLetter(
        stage,
        rec.topic,
        rec.partition,
        rec.offset,
        rec.timestamp,
        rec.key,
        rec.value,
        tuple(rec.headers or ()),
    )


def retry_audit(letter: DeadLetter, *, actor: str, now: datetime, topics: Topics) -> AuditRecord:
    """The audit record of one retry: who re-published which letter where (never a value)."""
    origin = letter.origin
    assert origin is not None
    source = topics.source("")
    return AuditRecord.about(
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        protocol="dlq-retry",
        recorded_at=now,
        action="dlq_retry",
        decision=AuditOutcome.RETRIED,
        reason_code="dlq.retried",
        reason=f"dead letter {letter.where} re-published to its origin {origin}",
        actor=actor,
        event_id=(letter.header("ce_id") or "")[:MAX_TEXT] or None,
        event_type=(letter.header("ce_type") or "")[:MAX_TEXT] or None,
        source_agency=origin.topic[len(source) :] if origin.topic.startswith(source) else None,
        topic_out=origin.topic,
    )


def cli_actor() -> str:
    """Who retries: the operator's login name, as the audit trail's actor."""
    try:
        return "infoshare-cli:" + getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's uid without a passwd entry)
        return "infoshare-cli:unknown"


async def publish_retries(
    access: KafkaAccess,
    letters: Sequence[DeadLetter],
    *,
    topics: Topics,
    actor: str,
    advance: Callable[[int], None],
) -> None:
    """Each letter back to its origin partition with its audit record, in transactions of
    ``BATCH`` letters: a batch is committed whole or not at all."""
    producer = kafka.producer(access, transactional_id=f"{topics.namespace}infoshare-cli.dlq-retry")
    await _started(producer, access)
    try:
        for start in range(0, len(letters), BATCH):
            batch = letters[start : start + BATCH]
            now = datetime.now(UTC)
            async with producer.transaction():
                sent = []
                for d in batch:
                    origin = d.origin
                    assert origin is not None
                    sent.append(
                        await producer.send(
                            origin.topic,
                            d.value,
                            key=d.key,
                            headers=retry_headers(d),
                            partition=origin.partition,
                        )
                    )
                    audit = retry_audit(d, actor=actor, now=now, topics=topics)
                    sent.append(
                        await producer.send(
                            topics.audit_activity, audit.model_dump_json().encode(), key=b""
                        )
                    )
                # A record the broker refuses must abort the batch, not vanish from it.
                await asyncio.gather(*sent)
            advance(len(batch))
    finally:
        await producer.stop()
