"""Publish canonical events of one agency to its source topic.

Every event is validated against its schema before it is sent, and keyed by the subject
routing key (a keyed hash of the subject identifier, never the identifier). The agency
can publish only to its own topic, under its own source.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from services.backbone import envelope, kafka, telemetry
from services.backbone.errors import PublishFailed
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyed import Key, keyed_id, routing_key
from services.backbone.schemas import SchemaRegistry

tracer = trace.get_tracer("infoshare.publisher")
MAX_IDS_KEPT = 20_000  # the most EventBuilder remembers, whatever forgets them


class EventBuilder:
    """Validates canonical events of one agency and wraps them in their envelope."""

    def __init__(self, *, agency_id: str, schemas: SchemaRegistry, routing: Key) -> None:
        self.agency_id = agency_id
        self.schemas = schemas
        self.routing = routing
        # Ids made since forget_ids: storing an upload asks each event's id four times (its
        # versions, the person index's links, the event), each an HMAC and a UUID to format.
        # Their native ids may hold identifiers (a UPN), so they are kept no longer.
        self._ids: dict[tuple[str, str, int], str] = {}

    def event_id(self, event_type: str, native_id: str, record_version: int = 1) -> str:
        """The id of the event for the record ``native_id`` of the agency's own system:
        the same for the same record, so a copy is recognised; each amended version of the
        record (``record_version`` 2, 3, ...) has an id of its own. Keyed (HMAC under the
        routing key), because a native id can hold an identifier (a pupil's UPN in an
        attendance record's natural key), and an unkeyed hash of it could be reversed by
        trying every UPN of a school. Formatted as an RFC 9562 version 8 UUID."""
        asked = (event_type, native_id, record_version)
        made = self._ids.get(asked)
        if made is None:
            if len(self._ids) >= MAX_IDS_KEPT:
                self._ids.clear()
            made = self._ids[asked] = self._event_id(*asked)
        return made

    def forget_ids(self) -> None:
        """Drop the ids remembered (at the end of each group of submissions stored)."""
        self._ids.clear()

    def _event_id(self, event_type: str, native_id: str, record_version: int) -> str:
        named = f"{self.agency_id}|{event_type}|{native_id}"
        if record_version > 1:
            named += f"|v{record_version}"
        digest = bytearray.fromhex(keyed_id(self.routing.secret, "event-id", named))
        digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
        digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC variant
        return str(uuid.UUID(bytes=bytes(digest)))

    def build(
        self,
        *,
        event_type: str,
        data: Mapping[str, Any],
        subject_id: str,
        native_id: str,
        version: int = 1,
        record_version: int = 1,
        supersedes: str | None = None,
    ) -> envelope.CloudEvent:
        """Validate ``data`` and wrap it; raises SchemaViolation naming the field and rule.

        The event id derives from the agency, the type and the record's id in the agency's
        own system (plan id, encounter id), so a request retried after a lost answer
        publishes the same event id and every reader can drop the duplicate. An amended
        record (``record_version`` above 1) names the event it ``supersedes``.
        """
        schema = self.schemas.get(event_type, version)
        schema.validate(data)
        return envelope.CloudEvent(
            id=self.event_id(event_type, native_id, record_version),
            type=event_type,
            source=envelope.agency_source(self.agency_id),
            data=data,
            key=routing_key(self.routing, subject_id),
            dataschema=schema.uri,
            extensions={envelope.EXT_SUPERSEDES: supersedes} if supersedes else {},
        )


class EventPublisher(EventBuilder):
    """An :class:`EventBuilder` that also sends, straight to Kafka (tests and tools; agency
    services publish through their outbox)."""

    def __init__(
        self,
        *,
        agency_id: str,
        topic: str,
        access: KafkaAccess,
        schemas: SchemaRegistry,
        routing: Key,
    ) -> None:
        super().__init__(agency_id=agency_id, schemas=schemas, routing=routing)
        self.topic = topic
        self._access = access
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop.
        self._producer = kafka.producer(self._access)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, event: envelope.CloudEvent) -> None:
        """Send and wait for the broker's acknowledgement (acks=all, idempotent)."""
        with telemetry.producer_span(
            tracer,
            operation="send",
            topic=self.topic,
            event_id=event.id,
            event_type=event.type,
        ):
            if self._producer is None:
                raise RuntimeError("the publisher is not started")
            key, value, headers = envelope.encode(event, extra_headers=telemetry.inject_headers())
            try:
                await self._producer.send_and_wait(self.topic, value, key=key, headers=headers)
            except KafkaError as exc:
                raise PublishFailed(
                    f"Kafka did not acknowledge the event: {type(exc).__name__}"
                ) from exc
