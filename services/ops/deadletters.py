"""The Kafka side of ``infoshare dlq``: read dead letters, re-publish them with their audit
records in one transaction per batch."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka.errors import KafkaError

from services.backbone import kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.kafka import KafkaUnavailable
from services.backbone.topics import Topics
from services.ops.deadletter_view import RETRY_OF, DeadLetter, Header

BATCH = 100  # dead letters per retry transaction
MAX_TEXT = 64  # event ids and types in audit records come from untrusted input


def retry_headers(letter: DeadLetter) -> list[Header]:
    """The original headers, without the dead letter's, naming the letter retried."""
    kept = [(k, v) for k, v in letter.headers if not k.startswith("dlq_") and k != RETRY_OF]
    return [*kept, (RETRY_OF, letter.where.encode())]


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
    try:
        return "infoshare-cli:" + getpass.getuser()
    except (KeyError, OSError):  # no login name (a container's uid without a passwd entry)
        return "infoshare-cli:unknown"


async def _started(client: Any, bootstrap: str) -> None:
    try:
        await asyncio.wait_for(client.start(), 20)
    except (KafkaError, TimeoutError, OSError) as exc:
        await client.stop()
        raise KafkaUnavailable(f"cannot reach Kafka at {bootstrap}") from exc


async def read_letters(
    bootstrap: str,
    stages: Mapping[str, str],
    *,
    window: tuple[int, int, int] | None = None,
    wait_s: float = 120,
) -> list[DeadLetter]:
    """The dead letters of the topics in ``stages`` (topic -> stage), oldest first per topic,
    up to the ends found now; a topic that does not exist has none. ``window`` (partition,
    first, stop) reads only that partition's offsets ``first`` up to ``stop`` (exclusive)."""
    probe = kafka.consumer(bootstrap=bootstrap, group_id=None)
    await _started(probe, bootstrap)
    try:
        names = await probe.topics()
    finally:
        await probe.stop()
    existing = [t for t in stages if t in names]
    if not existing:
        return []
    reader = kafka.consumer(*existing, bootstrap=bootstrap, group_id=None)
    await _started(reader, bootstrap)
    letters: list[DeadLetter] = []
    try:
        async with asyncio.timeout(wait_s):
            parts = list(reader.assignment())
            ends = await reader.end_offsets(parts)
            if window is not None:
                part, first, stop = window
                parts = [tp for tp in parts if tp.partition == part]
                for tp in parts:
                    reader.seek(tp, first)
                    ends[tp] = min(ends[tp], stop)
            pending = {tp for tp in parts if await reader.position(tp) < ends[tp]}
            while pending:
                for tp, records in (await reader.getmany(*pending, timeout_ms=500)).items():
                    stage, end = stages[tp.topic], ends[tp]
                    letters += [_letter(stage, r) for r in records if r.offset < end]
                pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
    except (KafkaError, TimeoutError) as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} stopped answering") from exc
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


async def publish_retries(
    bootstrap: str,
    letters: Sequence[DeadLetter],
    *,
    topics: Topics,
    actor: str,
    advance: Callable[[int], None],
) -> None:
    """Each letter back to its origin partition with its audit record, in transactions of
    ``BATCH`` letters: a batch is committed whole or not at all."""
    producer = kafka.producer(
        bootstrap, transactional_id=f"{topics.namespace}infoshare-cli.dlq-retry"
    )
    await _started(producer, bootstrap)
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
                        await producer.send(topics.audit, audit.model_dump_json().encode(), key=b"")
                    )
                # A record the broker refuses must abort the batch, not vanish from it.
                await asyncio.gather(*sent)
            advance(len(batch))
    finally:
        await producer.stop()
