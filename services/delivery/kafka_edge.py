"""The delivery service's Kafka edge: read every ``deliver.<agency>`` topic from the offsets
the store holds, and write dead letters and their audit records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, ConsumerRecord
from sqlalchemy.exc import SQLAlchemyError

from services.backbone import envelope, kafka, recall
from services.backbone.collector import collect_less_often
from services.backbone.database import too_long
from services.backbone.errors import EnvelopeError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.lease import Lease
from services.backbone.purge_runs import SendAudit
from services.backbone.records import ReadRecord
from services.delivery import recall_audit
from services.delivery.deadletter import (
    Undeliverable,
    dlq_headers,
    dlq_record,
    undecodable_audit,
    undeliverable_audit,
)
from services.delivery.model import Delivered, Incoming
from services.delivery.observe import DeliveryTelemetry
from services.delivery.store import DeliveryStore
from services.delivery.tables import DeliveryRow

STANDBY_POLL_S = 1.0
log = logging.getLogger(__name__)


class DeadLetters:
    """Writes to ``dlq.delivery`` and ``audit.decisions`` (idempotent producer, acks=all).
    A crash after writing and before the store records it writes them again on restart:
    the audit store keeps one record per audit id."""

    def __init__(self, producer: AIOKafkaProducer, *, dlq_topic: str, audit_topic: str) -> None:
        self.producer = producer
        self.dlq_topic = dlq_topic
        self.audit_topic = audit_topic

    async def undeliverable(self, u: Undeliverable) -> None:
        key, value, headers = dlq_record(u)
        audit = undeliverable_audit(u, now=datetime.now(UTC), dlq_topic=self.dlq_topic)
        await self.producer.send_and_wait(self.dlq_topic, value, key=key, headers=headers)
        # Keyed by subscription: its audit records stay in order on one partition.
        await self.producer.send_and_wait(
            self.audit_topic, audit.model_dump_json().encode(), key=u.subscription_id.encode()
        )

    async def undecodable(self, origin: ReadRecord, *, agency: str, problem: str) -> None:
        headers = dlq_headers(origin, reason=problem)
        audit = undecodable_audit(
            origin, agency=agency, now=datetime.now(UTC), dlq_topic=self.dlq_topic
        )
        await self.producer.send_and_wait(
            self.dlq_topic, origin.value, key=origin.key, headers=headers
        )
        await self.producer.send_and_wait(self.audit_topic, audit.model_dump_json().encode())


def _check_lengths(incoming: Incoming) -> None:
    e = incoming.event
    problem = too_long(
        DeliveryRow,
        {
            "event_id": e.event_id,
            "event_type": e.type,
            "source": e.source,
            "protocol": e.protocol,
            "identity_level": e.identity_level,
            "supersedes": e.supersedes,
            "recalls": e.recalls,
            "kafka_topic": incoming.topic,
        },
    )
    if problem is not None:
        raise EnvelopeError(problem)


def incoming(rec: ConsumerRecord, agency: str) -> Incoming:
    """A delivery record as the store keeps it; EnvelopeError if it is not a CloudEvent or
    an attribute is longer than the store keeps."""
    headers = list(rec.headers or ())
    # Deliveries to anonymised recipients carry no key at all.
    event = envelope.decode(rec.key, rec.value, headers, require_key=False)
    assert rec.value is not None  # decode refuses a record without a value
    notice = recall.notice_of(event.type, event.extensions, event.data)
    found = Incoming(
        agency=agency,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key=rec.key,
        value=rec.value,
        headers=headers,
        event=Delivered(
            event_id=event.id,
            type=event.type,
            source=event.source,
            time=event.time,
            protocol=event.extensions.get(envelope.EXT_PROTOCOL) or None,
            identity_level=event.extensions.get(envelope.EXT_IDENTITY) or None,
            data=event.data,
            supersedes=event.extensions.get(envelope.EXT_SUPERSEDES) or None,
            recalls=notice.recalls if notice is not None else None,
        ),
    )
    _check_lengths(found)
    return found


async def ingest(
    store: DeliveryStore,
    *,
    topics: Mapping[str, str],
    access: KafkaAccess,
    dead_letters: DeadLetters,
    stop: asyncio.Event,
    on_new: Callable[[], None] | None = None,
    max_records: int = 500,
    seen: DeliveryTelemetry | None = None,
    lease: Lease | None = None,
    send_audit: SendAudit | None = None,
) -> None:
    """Read ``topics`` (topic -> recipient agency) until ``stop`` is set, from the offsets
    in the store, storing each batch and its offsets in one transaction. ``on_new`` is
    called after every batch that gave some subscription a new event; ``seen`` traces each
    record and keeps the reader's lag; ``send_audit`` takes the audit record of each recall
    purge (recall_audit.py), after the batch that made it and at start.

    With a ``lease`` (replicas sharing the store), only its holder reads; the others wait
    and, once they hold it, start from the offsets the store has then."""

    collect_less_often()

    async def still_held() -> bool:
        if lease is None:
            return True
        return await asyncio.to_thread(lease.held)

    wait = STANDBY_POLL_S
    while not stop.is_set():
        try:
            if await still_held():
                await _ingest_while_held(
                    store,
                    topics=topics,
                    access=access,
                    dead_letters=dead_letters,
                    stop=stop,
                    on_new=on_new,
                    max_records=max_records,
                    seen=seen,
                    still_held=still_held,
                    owed=None if send_audit is None else recall_audit.Owed(store, send_audit),
                )
                continue
            wait = STANDBY_POLL_S
        except SQLAlchemyError as exc:  # the store away: read again from its offsets
            log.warning("delivery reader: store %s; retrying", type(exc).__name__)
            wait = min(wait * 2, 30.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
    if lease is not None and lease.epoch is not None:
        with contextlib.suppress(SQLAlchemyError):
            await asyncio.to_thread(lease.release)


async def _ingest_while_held(
    store: DeliveryStore,
    *,
    topics: Mapping[str, str],
    access: KafkaAccess,
    dead_letters: DeadLetters,
    stop: asyncio.Event,
    on_new: Callable[[], None] | None,
    max_records: int,
    seen: DeliveryTelemetry | None,
    still_held: Callable[[], Awaitable[bool]],
    owed: recall_audit.Owed | None,
) -> None:
    reader = kafka.consumer(*topics, access=access, group_id=None)
    await reader.start()
    if seen is not None:
        seen.lag.attach(reader)
    try:
        stored = await asyncio.to_thread(store.offsets)
        for tp in reader.assignment():
            if (tp.topic, tp.partition) in stored:
                reader.seek(tp, stored[(tp.topic, tp.partition)])
            else:
                await reader.seek_to_beginning(tp)
        while not stop.is_set() and await still_held():
            if owed is not None:
                await owed.settle()
            batch = await reader.getmany(timeout_ms=300, max_records=max_records)
            if not batch:
                if seen is not None:
                    await seen.lag.refresh()
                continue
            items: list[Incoming] = []
            offsets: dict[tuple[str, int], int] = {}
            for tp, records in batch.items():
                for rec in records:
                    offsets[(tp.topic, tp.partition)] = rec.offset + 1
                    try:
                        items.append(incoming(rec, topics[tp.topic]))
                        if seen is not None:
                            seen.received(rec, items[-1].headers)
                    except EnvelopeError as exc:
                        log.error(
                            "undecodable delivery at %s[%d]@%d: dead-lettered",
                            rec.topic,
                            rec.partition,
                            rec.offset,
                        )
                        origin = ReadRecord(
                            rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.headers
                        )
                        await dead_letters.undecodable(
                            origin, agency=topics[tp.topic], problem=str(exc)
                        )
                        if seen is not None:
                            seen.dead_letter()
            result = await asyncio.to_thread(store.ingest, items, offsets, now=datetime.now(UTC))
            if owed is not None and result.recall_purges:
                owed.logged()
                await owed.settle()
            if seen is not None:
                await seen.lag.refresh()
            if result.notified and on_new is not None:
                on_new()
    finally:
        if seen is not None:
            seen.lag.attach(None)
        await reader.stop()
