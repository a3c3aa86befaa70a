"""Read a recipient's delivery topic (read_committed) into an inbox.

An agency service uses it to show what its agency has received; the delivery service uses
it to serve recipients that pull. Received events are kept in order with a per-inbox
event number, so a reader can page with a cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from services.backbone import envelope, kafka, telemetry
from services.backbone.errors import EnvelopeError
from services.backbone.kafka_access import KafkaAccess

log = logging.getLogger(__name__)
tracer = trace.get_tracer("infoshare.inbox")


@dataclass(frozen=True)
class Received:
    number: int
    event_id: str
    type: str
    source: str
    time: datetime
    protocol: str | None
    identity_level: str | None
    data: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.event_id,
            "type": self.type,
            "source": self.source,
            "time": self.time.isoformat(),
            "protocol": self.protocol,
            "identity_level": self.identity_level,
            "data": self.data,
        }


class Inbox:
    """The last ``capacity`` deliveries, numbered from 1 in arrival order."""

    def __init__(self, capacity: int = 10000) -> None:
        self._items: deque[Received] = deque(maxlen=capacity)
        self._seen: set[str] = set()
        self._next = 1
        self.changed = asyncio.Condition()

    async def add(self, event: envelope.CloudEvent) -> None:
        if event.id in self._seen:  # duplicates are dropped by event id
            return
        if len(self._items) == self._items.maxlen:
            self._seen.discard(self._items[0].event_id)  # forget what falls out of the window
        self._seen.add(event.id)
        self._items.append(
            Received(
                number=self._next,
                event_id=event.id,
                type=event.type,
                source=event.source,
                time=event.time,
                protocol=event.extensions.get(envelope.EXT_PROTOCOL),
                identity_level=event.extensions.get(envelope.EXT_IDENTITY),
                data=dict(event.data),
            )
        )
        self._next += 1
        async with self.changed:
            self.changed.notify_all()

    def after(self, cursor: int = 0, limit: int = 100) -> Sequence[Received]:
        return [r for r in self._items if r.number > cursor][:limit]

    def __len__(self) -> int:
        return len(self._items)


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
    topic: str,
    access: KafkaAccess,
    stop: asyncio.Event,
) -> None:
    """Fill ``inbox`` from ``topic`` until ``stop`` is set. Reads the whole topic (no group),
    so the view is complete after a restart. Each record read is a ``receive`` span in the
    recipient's own trace: an agency service is the recipient's side, and never opens the
    event's sealed trace (``telemetry.TraceSeal``)."""
    reader = await _started_reader(topic, access=access, stop=stop)
    if reader is None:
        return
    try:
        while not stop.is_set():
            batch = await reader.getmany(timeout_ms=500)
            for records in batch.values():
                for rec in records:
                    headers = list(rec.headers or ())
                    context = telemetry.extract_context(headers)
                    with telemetry.consumer_span(tracer, rec, operation="receive", context=context):
                        try:
                            # Deliveries to anonymised recipients carry no key at all.
                            event = envelope.decode(rec.key, rec.value, headers, require_key=False)
                        except EnvelopeError as exc:
                            log.error("undecodable delivery at %s@%d: %s", topic, rec.offset, exc)
                            continue
                        await inbox.add(event)
    finally:
        await reader.stop()
