"""The consent-and-policy processor against the real broker: deliveries, audit, state that
survives a restart, and poison records dead-lettered without stopping the partition."""

from __future__ import annotations

import orjson
import pytest

from consent.processor.access_back import ACCESS_BACK
from consent.processor.main import check_co_partitioned
from deploy.devstack.demo import scenario
from services.backbone import kafka
from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics, TopicSpec
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from services.socialcare import mapping
from tests.integration.kafka_helpers import Running, at_least, plan_data, publish_event, read_topic

pytestmark = pytest.mark.kafka


async def test_plan_state_survives_a_restart_and_poison_is_dead_lettered(
    stack: Running, kafka_access: KafkaAccess, namespace: str, keyring: Keyring
) -> None:
    topics = Topics(namespace=namespace)
    common = {"namespace": namespace, "access": kafka_access, "keyring": keyring}
    await publish_event("la-northshire", mapping.PLAN_STARTED, plan_data(), **common)  # type: ignore[arg-type]
    flags = await read_topic(topics.deliver("nhs-riverside-ed"), kafka_access, until=at_least(1))
    assert orjson.loads(flags[0].value)["plan"]["category"] == "neglect"

    # A poison record on the health topic, keyed like a real one, then a good attendance.
    producer = kafka.producer(kafka_access)
    await producer.start()
    key = routing_key(keyring.require_routing(), f"nhs:{scenario.ON_PLAN.nhs_number}")
    await producer.send_and_wait(
        topics.source("nhs-riverside-ed"),
        b"{not json",
        key=key.encode(),
        headers=[
            ("ce_specversion", b"1.0"),
            ("ce_id", b"poison-1"),
            ("ce_source", b"/agencies/nhs-riverside-ed"),
            ("ce_type", ATTENDANCE.encode()),
        ],
    )
    await producer.stop()

    # Restart the processor: the plan must come back from the changelog, not be forgotten.
    await stack.halt()
    restarted = await stack.start()
    attendance = attendance_from_bundle(scenario.attendance_bundle(scenario.ON_PLAN))
    await publish_event("nhs-riverside-ed", ATTENDANCE, attendance, **common)  # type: ignore[arg-type]

    # First the notice that the ED received the plan (the authority asked for access back).
    told, notified = await read_topic(
        topics.deliver("la-northshire"), kafka_access, until=at_least(2)
    )
    assert dict(told.headers)["ce_type"] == ACCESS_BACK.encode()
    assert orjson.loads(notified.value)["attendance"]["site"]["ods_code"] == "RVR01"
    assert len(restarted.plans) == 1

    dead = await read_topic(topics.dlq("processor"), kafka_access, until=at_least(1))
    assert dead[0].value == b"{not json"
    reason = dict(dead[0].headers)["dlq_reason"].decode()
    assert "not JSON" in reason

    audit = await read_topic(topics.audit, kafka_access, until=at_least(6))
    decisions = sorted(
        (r["event_type"], r["recipient"] or "-", r["decision"])
        for r in (orjson.loads(a.value) for a in audit)
    )
    assert decisions == [
        (ATTENDANCE, "-", "dead_lettered"),
        (ATTENDANCE, "la-northshire", "shared"),
        (ATTENDANCE, "la-northshire", "withheld"),  # early help: the child is on a plan
        (ATTENDANCE, "ph-northshire", "shared"),
        (mapping.PLAN_STARTED, "la-northshire", "shared"),  # access back
        (mapping.PLAN_STARTED, "nhs-riverside-ed", "shared"),
    ]


async def test_the_processor_refuses_topics_that_are_not_co_partitioned(
    kafka_access: KafkaAccess, namespace: str
) -> None:
    topics = Topics(namespace=namespace)
    await kafka.ensure_topics(
        kafka_access,
        [TopicSpec(topics.source("la-northshire"), 3), TopicSpec(topics.state("x"), 2, True)],
    )
    with pytest.raises(ConfigurationError, match="same number of partitions"):
        await check_co_partitioned(
            kafka_access, [topics.source("la-northshire"), topics.state("x")]
        )
    await check_co_partitioned(kafka_access, [topics.source("la-northshire")])
