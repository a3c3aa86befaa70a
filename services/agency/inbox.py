"""Read an agency's delivery topic (read_committed) into its inbox (inbox_store.py), which
its service shows to the agency's people. Received events are kept in order with an inbox
number, so a reader can page with a cursor. A recall notice deletes the item it withdraws
as it is stored; the purge's audit record is sent after the batch (inbox_recall.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError
from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError

from services.agency import inbox_recall
from services.agency.inbox_store import Inbox, acceptable
from services.backbone import envelope, kafka, recall, telemetry
from services.backbone.errors import EnvelopeError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.lease import Lease
from services.backbone.purge_runs import SendAudit

RESEND_AFTER_S = 10.0  # a recall purge's audit record that could not be sent, tried again
log = logging.getLogger(__name__)
tracer = trace.get_tracer("infoshare.inbox")


async def _started_reader(
    topic: str, *, access: KafkaAccess, stop: asyncio.Event
) -> AIOKafkaConsumer | None:
    """A started reader of ``topic``; while Kafka cannot be reached, try again (backing off
    to 5 s) until ``stop`` is set (then None): a service starts, and accepts, without it."""
    backoff = 0.2
    while not stop.is_set():
        reader = kafka.consumer(topic, access=access, group_id=None)
        try:
            await reader.start()
            return reader
        except KafkaError as exc:
            await reader.stop()
            log.warning("inbox reader: Kafka unavailable (%s); retrying", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
        backoff = min(backoff * 2, 5.0)
    return None


async def consume_into(
    inbox: Inbox,
    *,
    access: KafkaAccess,
    stop: asyncio.Event,
    lease: Lease | None = None,
    send: SendAudit | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Fill ``inbox`` from its topic until ``stop`` is set, from the offsets it has stored.
    With a ``lease`` (replicas sharing the database), only its holder reads. Each record
    read is a ``receive`` span in the recipient's own trace: an agency service is the
    recipient's side, and never opens the event's sealed trace (``telemetry.TraceSeal``).
    With ``send`` (to ``audit.activity``), the audit records of the recall purges the
    reader logs, and of any an earlier reader could not send, are sent after each batch."""
    audits = None if send is None else _PurgeAudits(inbox, send, now)
    backoff = 1.0
    while not stop.is_set():
        try:
            if lease is None or await asyncio.to_thread(lease.held):
                await _read_while_held(inbox, access=access, stop=stop, lease=lease, audits=audits)
                continue
        except SQLAlchemyError as exc:  # the database away: never stops the service
            log.warning("inbox reader: database %s; retrying", type(exc).__name__)
            backoff = min(backoff * 2, 30.0)
        else:
            backoff = 1.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), backoff)
    if lease is not None and lease.epoch is not None:
        with contextlib.suppress(SQLAlchemyError):
            await asyncio.to_thread(lease.release)


class _PurgeAudits:
    """The recall purges' audit records still to send: those an earlier reader left, those
    of a batch that held a notice, and any that could not be sent, tried again after each
    batch once ``RESEND_AFTER_S`` has passed (with the broker away, reading is not held up
    by an attempt every half second)."""

    def __init__(self, inbox: Inbox, send: SendAudit, now: Callable[[], datetime]) -> None:
        self.inbox, self.send, self.now = inbox, send, now
        self.due = True  # what an earlier reader left unsent
        self.not_before = 0.0

    async def send_due(self) -> None:
        if not self.due or time.monotonic() < self.not_before:
            return
        try:
            await inbox_recall.send_audits(self.inbox, self.send, now=self.now)
        except (KafkaError, OSError) as exc:
            log.warning("recall purge audit not sent (%s); trying again", type(exc).__name__)
            self.not_before = time.monotonic() + RESEND_AFTER_S
            return
        self.due = False


async def _read_while_held(
    inbox: Inbox,
    *,
    access: KafkaAccess,
    stop: asyncio.Event,
    lease: Lease | None,
    audits: _PurgeAudits | None,
) -> None:
    topic = inbox.topic
    reader = await _started_reader(topic, access=access, stop=stop)
    if reader is None:
        return
    try:
        stored = await asyncio.to_thread(inbox.offsets)
        for tp in reader.assignment():
            if tp.partition in stored:
                reader.seek(tp, stored[tp.partition])
            else:
                await reader.seek_to_beginning(tp)
        while not stop.is_set():
            if lease is not None and not await asyncio.to_thread(lease.held):
                return
            batch = await reader.getmany(timeout_ms=500, max_records=500)
            events: list[envelope.CloudEvent] = []
            offsets: dict[int, int] = {}
            at: dict[str, tuple[int, int]] = {}  # where each was read (a notice's audit id)
            for tp, records in batch.items():
                for rec in records:
                    offsets[tp.partition] = rec.offset + 1
                    event = _decoded(rec, topic)
                    if event is not None:
                        events.append(event)
                        at.setdefault(event.id, (tp.partition, rec.offset))
            if offsets:
                await asyncio.to_thread(functools.partial(inbox.add, events, offsets, at=at))
            if audits is not None:
                audits.due = audits.due or any(e.type == recall.RECALLED for e in events)
                await audits.send_due()
    finally:
        await reader.stop()


def _decoded(rec: ConsumerRecord, topic: str) -> envelope.CloudEvent | None:
    headers = list(rec.headers or ())
    context = telemetry.extract_context(headers)
    with telemetry.consumer_span(tracer, rec, operation="receive", context=context):
        try:
            # Deliveries to anonymised recipients carry no key at all.
            event = envelope.decode(rec.key, rec.value, headers, require_key=False)
        except EnvelopeError as exc:
            log.error("undecodable delivery at %s@%d: %s", topic, rec.offset, exc)
            return None
        # The delivery service reads the same topic: it dead-letters and audits this record.
        problem = acceptable(topic, event)
        if problem is not None:
            log.error("delivery at %s@%d not kept in the inbox: %s", topic, rec.offset, problem)
            return None
        return event
