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
from collections import Counter
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from sqlalchemy.exc import DBAPIError, OperationalError

from services.audit.observe import AuditTelemetry
from services.audit.overlap import Overlap
from services.audit.prepared import NOT_AN_AUDIT_RECORD, Ready
from services.audit.store import AuditStore
from services.backbone import deadletter, kafka
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.collector import collect_less_often
from services.backbone.kafka_access import KafkaAccess
from services.backbone.offload import Offload

log = logging.getLogger(__name__)
CHECKPOINT_EVERY_S = 60.0
# Records taken from Kafka and stored per transaction, at most: each commit waits for the
# disk (about 18 ms on SQLite here), so at 1,000 a record paid 18 µs for it alone.
BATCH_MAX = 5000
REFUSED_BY_STORE = "the audit store refused it"
Arrived = list[tuple[ConsumerRecord, Ready]]


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


class _Ingester:
    """One batch from Kafka at a time, prepared while the batch before is written
    (``Overlap``); its offsets committed after its database commit."""

    def __init__(
        self,
        store: AuditStore,
        reader: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        *,
        activity: str | None,
        dlq_topic: str,
        seen: AuditTelemetry | None,
        offload: Offload,
    ) -> None:
        self.store, self.reader, self.producer = store, reader, producer
        self.activity, self.dlq_topic, self.seen = activity, dlq_topic, seen
        self.driver = store.engine.url.drivername
        self.overlap = Overlap(offload, self.driver)
        # Records taken from Kafka but not yet stored, by (topic, partition): the consumer's
        # position is a batch ahead of what is stored, and the lag gauge counts them too.
        self.taken: Counter[tuple[str, int]] = Counter()

    async def take(self, msgs: list[ConsumerRecord]) -> None:
        """Prepare ``msgs`` while the batch before is stored; then start storing them."""
        started_ns = time.time_ns()
        self.taken.update((msg.topic, msg.partition) for msg in msgs)
        made = await self.overlap.prepare(
            [msg.value or b"" for msg in msgs], [msg.topic == self.activity for msg in msgs]
        )
        arrived = [(msg, await self._admitted(msg, p)) for msg, p in zip(msgs, made, strict=True)]
        await self.overlap.then(self._store(arrived, started_ns))

    async def _admitted(self, msg: ConsumerRecord, made: Ready | str) -> Ready:
        """The record, or for a refused one, its dead-lettering's."""
        if not isinstance(made, str):
            return made
        if self.seen is not None:
            self.seen.dead_lettered()
        return await _dead_letter(self.producer, self.dlq_topic, msg, made)

    async def _store(self, arrived: Arrived, started_ns: int) -> None:
        try:
            await asyncio.to_thread(self.store.add_batch, [p for _, p in arrived])
        except DBAPIError as exc:
            if not _data_refused(exc):
                raise  # the database is away, not the data: the service restarts
            await self._one_by_one(arrived)
        await self._commit(arrived)
        self.taken.subtract((msg.topic, msg.partition) for msg, _ in arrived)
        if self.seen is not None:
            self.seen.stored(arrived, started_ns=started_ns)
            await self.seen.lag.refresh(+self.taken)

    async def _commit(self, arrived: Arrived) -> None:
        """Commit this batch's offsets, not the consumer's position: the next batch is
        taken already. Those of a partition taken from this instance since (the group
        rebalanced) are left: its new reader reads them again, and the store keeps each
        record once."""
        assigned = self.reader.assignment()
        last: dict[TopicPartition, int] = {}
        for msg, _ in arrived:
            partition = TopicPartition(msg.topic, msg.partition)
            if partition in assigned:
                last[partition] = msg.offset + 1
        if not last:
            return
        try:
            await self.reader.commit(last)
        except IllegalStateError:  # revoked between the look and the commit
            log.warning("an audit batch's offsets were not committed: its partition moved")

    async def _one_by_one(self, arrived: Arrived) -> None:
        """The database refused the batch for its data: store what it takes, one record at
        a time, and dead-letter (and audit) the rest, so one bad record never stops the
        trail."""
        for msg, made in arrived:
            try:
                await asyncio.to_thread(self.store.add_batch, [made])
            except DBAPIError as exc:
                if not _data_refused(exc):
                    raise
                reason = f"{REFUSED_BY_STORE} ({type(exc.orig).__name__})"
                parked = await _dead_letter(self.producer, self.dlq_topic, msg, reason)
                await asyncio.to_thread(self.store.add_batch, [parked])
                if self.seen is not None:
                    self.seen.dead_lettered()


def _data_refused(exc: DBAPIError) -> bool:
    """The database refused the data (a constraint, a value it cannot store), rather than
    being unreachable: only then is storing record by record worth trying."""
    return not (exc.connection_invalidated or isinstance(exc, OperationalError))


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
    offload: Offload | None = None,
) -> None:
    """Store what arrives on ``topic`` (the processor's decisions) and ``activity``
    (everyone else's records, never a disclosure decision). ``offload``: the worker
    process that prepares each batch (none: prepared here, in a thread)."""
    collect_less_often()
    reader = kafka.consumer(*[t for t in (topic, activity) if t], access=access, group_id=group_id)
    producer = kafka.producer(access)
    await producer.start()
    await reader.start()
    if seen is not None:
        seen.lag.attach(reader)
    ingester = _Ingester(
        store,
        reader,
        producer,
        activity=activity,
        dlq_topic=dlq_topic,
        seen=seen,
        offload=offload or Offload(0),
    )
    next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
    try:
        while not stop.is_set():
            if time.monotonic() >= next_checkpoint:
                next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
                await ingester.overlap.written()
                await asyncio.to_thread(store.checkpoint)
            batch = await reader.getmany(timeout_ms=500, max_records=BATCH_MAX)
            if batch:
                await ingester.take([msg for msgs in batch.values() for msg in msgs])
                continue
            await ingester.overlap.written()
            if seen is not None:
                await seen.lag.refresh(+ingester.taken)
        await ingester.overlap.written()
    finally:
        await ingester.overlap.abandon()
        if seen is not None:
            seen.lag.attach(None)
        await reader.stop()
        await producer.stop()
        await asyncio.to_thread(store.checkpoint)  # what was stored is signed before we go
