"""A dry run over a range of a raw source topic on the real broker writes nothing."""

from __future__ import annotations

import uuid

import pytest

from consent.policy.load import load_protocols
from consent.policy.simulate import simulate
from consent.policy.simulate_inputs import events_from_topic
from deploy.devstack.demo import scenario
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.publisher import EventPublisher
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from tests.integration.kafka_helpers import end_offsets

pytestmark = pytest.mark.kafka


async def test_simulate_a_topic_range(
    kafka_access: KafkaAccess, namespace: str, keyring: Keyring, directory: Directory
) -> None:
    topics = Topics(namespace=namespace, partitions=1)
    await kafka.ensure_topics(kafka_access, topics.all_specs(directory))
    source = topics.source("nhs-riverside-ed")
    publisher = EventPublisher(
        agency_id="nhs-riverside-ed",
        topic=source,
        access=kafka_access,
        schemas=SchemaRegistry.load(),
        routing=keyring.require_routing(),
    )
    await publisher.start()
    try:
        for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN, scenario.THIRD):
            data = attendance_from_bundle(scenario.attendance_bundle(child))
            await publisher.publish(
                publisher.build(
                    event_type=ATTENDANCE,
                    data=data,
                    native_id=str(uuid.uuid4()),
                    subject_id=f"nhs:{child.nhs_number}",
                )
            )
    finally:
        await publisher.stop()
    before = {
        t: await end_offsets(t, kafka_access)
        for t in (topics.audit, topics.deliver("la-northshire"), topics.deliver("ph-northshire"))
    }

    events = await events_from_topic(
        access=kafka_access, topic=source, partition=0, start=1, end=2, topics=topics
    )
    rows = simulate(
        events, load_protocols(None, directory=directory, schemas=SchemaRegistry.load())
    )
    assert [e.facts.subject_id for e in events] == [
        f"nhs:{scenario.NOT_ON_PLAN.nhs_number}",
        f"nhs:{scenario.THIRD.nhs_number}",
    ]
    assert {(r.index, r.recipient) for r in rows} >= {(1, "ph-northshire"), (2, "ph-northshire")}
    after = {t: await end_offsets(t, kafka_access) for t in before}
    assert after == before  # nothing written
