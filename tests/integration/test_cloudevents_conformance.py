"""Records the agency services publish are CloudEvents 1.0 in Kafka binary content mode, as
the official cloudevents SDK reads them back from the real broker."""

from __future__ import annotations

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

from deploy.devstack.demo import scenario
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.publisher import EventPublisher
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics, TopicSpec
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.kafka


async def test_published_attendance_reads_back_as_a_cloudevent(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring
) -> None:
    topics = Topics(namespace=namespace)
    topic = topics.source("nhs-riverside-ed")
    await kafka.ensure_topics(kafka_access, [TopicSpec(topic, 3)])
    schemas = SchemaRegistry.load()
    publisher = EventPublisher(
        agency_id="nhs-riverside-ed",
        topic=topic,
        access=kafka_access,
        schemas=schemas,
        routing=keyring.require_routing(),
    )
    data = attendance_from_bundle(scenario.attendance_bundle(scenario.ON_PLAN))
    subject = f"nhs:{scenario.ON_PLAN.nhs_number}"
    await publisher.start()
    try:
        event = publisher.build(
            event_type=ATTENDANCE, data=data, subject_id=subject, native_id="ED-77812"
        )
        await publisher.publish(event)
    finally:
        await publisher.stop()

    (record,) = await read_topic(topic, kafka_access, until=lambda rs: len(rs) >= 1)
    message = KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    ce = from_binary(message, JSONFormat())

    assert ce.get_specversion() == "1.0"
    assert ce.get_id() == event.id
    assert ce.get_type() == ATTENDANCE
    assert ce.get_source() == "/agencies/nhs-riverside-ed"
    assert ce.get_datacontenttype() == "application/json"
    assert ce.get_dataschema() == schemas.get(ATTENDANCE).uri
    assert str(ce.get_dataschema()).endswith("/health.unscheduled_care.attendance/v1.json")
    assert ce.get_time() is not None
    assert ce.get_data() == data
    # The key is the pseudonymous routing key, and nothing identifying rides in key or headers.
    assert record.key.decode() == routing_key(keyring.require_routing(), subject)
    nhs = scenario.ON_PLAN.nhs_number.encode()
    assert nhs not in record.key
    assert all(nhs not in value for _, value in record.headers)
    names = {name for name, _ in record.headers}
    assert names <= {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_dataschema",
        "content-type",
        "traceparent",
        "tracestate",
    }
