"""Ingest audit.decisions into the store: batched, idempotent, offsets committed after the
database commit (at-least-once from Kafka, exactly once in the table by audit id).

A record that is not an audit record goes, untouched, to ``dlq.audit`` with its reason
before the offset moves past it, and the trail records that it did (``dead_lettered``):
nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.audit.observe import AuditTelemetry
from services.audit.store import AuditStore
from services.backbone import deadletter, kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord, is_disclosure_decision
from services.backbone.collector import collect_less_often
from services.backbone.kafka_access import KafkaAccess

log = logging.getLogger(__name__)
CHECKPOINT_EVERY_S = 60.0
# Records taken from Kafka and stored per transaction, at most: each commit waits for the
# disk (about 18 ms on SQLite here), so at 1,000 a record paid 18 µs for it alone.
BATCH_MAX = 5000
NOT_AN_AUDIT_RECORD = "not an audit record (schema validation failed)"
NOT_THE_PROCESSORS = (
    "a disclosure decision on the activity topic: only the processor decides disclosures, "
    "and only on the decisions topic, which no one else may write"
)


REFUSED_BY_STORE = "the audit store refused it"


async def _dead_letter(
    producer: AIOKafkaProducer, topic: str, msg: ConsumerRecord, reason: str = NOT_AN_AUDIT_RECORD
) -> AuditRecord:
    """Park the record on the dead-letter topic; return the audit record saying so."""
    headers = deadletter.dead_letter_headers(
        msg.headers or (),
        stage="audit",
        reason=reason,
        origin=deadletter.Origin(msg.topic, msg.partition, msg.offset),
    )
    await producer.send_and_wait(topic, msg.value, key=msg.key, headers=headers)
    log.error(
        "dead-lettered an audit record %s[%d]@%d: %s", msg.topic, msg.partition, msg.offset, reason
    )
    return AuditRecord.about(
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        protocol="dead_letter",
        recorded_at=datetime.now(UTC),
        action="dead_letter",
        decision=AuditOutcome.DEAD_LETTERED,
        reason_code="dead_letter.unprocessable",
        reason=reason,
        actor="infoshare-audit",
        topic_out=topic,
    )


async def _admitted(
    msg: ConsumerRecord,
    activity: str | None,
    producer: AIOKafkaProducer,
    dlq_topic: str,
    seen: AuditTelemetry | None,
) -> AuditRecord:
    """The audit record ``msg`` holds, or, if it holds none or a disclosure decision on the
    activity topic, the record of its dead-lettering."""
    try:
        record = AuditRecord.from_json(msg.value or b"")
    except ValidationError:
        reason: str | None = NOT_AN_AUDIT_RECORD
    else:
        misplaced = msg.topic == activity and is_disclosure_decision(record.decision, record.action)
        reason = NOT_THE_PROCESSORS if misplaced else None
    if reason is None:
        return record
    if seen is not None:
        seen.dead_lettered()
    return await _dead_letter(producer, dlq_topic, msg, reason)


def _data_refused(exc: DBAPIError) -> bool:
    """The database refused the data (a constraint, a value it cannot store), rather than
    being unreachable: only then is storing record by record worth trying."""
    return not (exc.connection_invalidated or isinstance(exc, OperationalError))


async def _one_by_one(
    store: AuditStore,
    producer: AIOKafkaProducer,
    dlq_topic: str,
    arrived: list[tuple[ConsumerRecord, AuditRecord]],
    seen: AuditTelemetry | None = None,
) -> None:
    """The database refused the batch for its data: store what it takes, one record at a
    time, and dead-letter (and audit) the rest, so one bad record never stops the trail."""
    for msg, record in arrived:
        try:
            await asyncio.to_thread(store.add_batch, [record])
        except DBAPIError as exc:
            if not _data_refused(exc):
                raise
            reason = f"{REFUSED_BY_STORE} ({type(exc.orig).__name__})"
            await asyncio.to_thread(
                store.add_batch, [await _dead_letter(producer, dlq_topic, msg, reason)]
            )
            if seen is not None:
                seen.dead_lettered()


async def ingest(
    store: AuditStore,
    *,
    topic: str,
    activity: str | None = None,
    access: KafkaAccess,
    group_id: str,
    dlq_topic: str,
    stop: asyncio.Event,
    seen: AuditTelemetry | None = None,
) -> None:
    """Store what arrives on ``topic`` (the processor's decisions) and ``activity``
    (everyone else's records, never a disclosure decision)."""
    collect_less_often()
    reader = kafka.consumer(*[t for t in (topic, activity) if t], access=access, group_id=group_id)
    producer = kafka.producer(access)
    await producer.start()
    await reader.start()
    if seen is not None:
        seen.lag.attach(reader)
    next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
    try:
        while not stop.is_set():
            if time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
                await asyncio.to_thread(store.checkpoint)
            batch = await reader.getmany(timeout_ms=500, max_records=BATCH_MAX)
            if not batch:
                if seen is not None:
                    await seen.lag.refresh()
                continue
            started_ns = time.time_ns()
            arrived: list[tuple[ConsumerRecord, AuditRecord]] = []
            for msgs in batch.values():
                for msg in msgs:
                    record = await _admitted(msg, activity, producer, dlq_topic, seen)
                    arrived.append((msg, record))
            try:
                await asyncio.to_thread(store.add_batch, [r for _, r in arrived])
            except DBAPIError as exc:
                if not _data_refused(exc):
                    raise  # the database is away, not the data: the service restarts
                await _one_by_one(store, producer, dlq_topic, arrived, seen)
            await reader.commit()
            if seen is not None:
                seen.stored(arrived, started_ns=started_ns)
                await seen.lag.refresh()
    finally:
        if seen is not None:
            seen.lag.attach(None)
        await reader.stop()
        await producer.stop()
        await asyncio.to_thread(store.checkpoint)  # what was stored is signed before we go
