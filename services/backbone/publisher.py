"""Publish canonical events of one agency to its source topic.

Every event is validated against its schema before it is sent, and keyed by the subject
routing key (a keyed hash of the subject identifier, never the identifier). The agency
can publish only to its own topic, under its own source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace

from services.backbone import envelope, kafka, telemetry
from services.backbone.errors import PublishFailed
from services.backbone.keyed import keyed_id
from services.backbone.keyring import Key
from services.backbone.schemas import SchemaRegistry

tracer = trace.get_tracer("infoshare.publisher")


def routing_key(key: Key, subject_id: str) -> str:
    """The subject routing key: one per child across agencies, so every agency's events about
    a child land on the same partition number of their co-partitioned source topics."""
    return keyed_id(key.secret, "routing", subject_id)


class EventPublisher:
    def __init__(
        self,
        *,
        agency_id: str,
        topic: str,
        bootstrap: str,
        schemas: SchemaRegistry,
        routing: Key,
    ) -> None:
        self.agency_id = agency_id
        self.topic = topic
        self.schemas = schemas
        self.routing = routing
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds to the running event loop.
        self._producer = kafka.producer(self._bootstrap)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def build(
        self, *, event_type: str, data: Mapping[str, Any], subject_id: str, version: int = 1
    ) -> envelope.CloudEvent:
        """Validate ``data`` and wrap it; raises SchemaViolation naming the field and rule."""
        schema = self.schemas.get(event_type, version)
        schema.validate(data)
        return envelope.CloudEvent(
            type=event_type,
            source=envelope.agency_source(self.agency_id),
            data=data,
            key=routing_key(self.routing, subject_id),
            dataschema=schema.uri,
        )

    async def publish(self, event: envelope.CloudEvent) -> None:
        """Send and wait for the broker's acknowledgement (acks=all, idempotent)."""
        with tracer.start_as_current_span(
            f"send {self.topic}",
            kind=trace.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": self.topic,
                "messaging.message.id": event.id,
                "cloudevents.event_type": event.type,
            },
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
