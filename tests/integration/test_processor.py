"""The consent-and-policy processor against the real broker: deliveries, audit, state that
survives a restart, and poison records dead-lettered without stopping the partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest

from consent.main import bootstrap
from consent.processor.loop import Processor
from consent.settings import ProcessorSettings
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.keyed import routing_key
from services.backbone.keyring import Keyring
from services.backbone.publisher import EventPublisher
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.cli import scenario
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanStarted
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.kafka


class Running:
    def __init__(self, settings: ProcessorSettings) -> None:
        self.settings = settings
        self.processor: Processor | None = None
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Processor:
        self.stop = asyncio.Event()
        self.processor = bootstrap(self.settings)
        self.task = asyncio.create_task(self.processor.run(self.stop))
        return self.processor

    async def halt(self) -> None:
        self.stop.set()
        if self.task:
            await self.task


@pytest.fixture
async def stack(
    kafka_bootstrap: str, namespace: str, keyring_path: Path, directory: Directory
) -> AsyncIterator[Running]:
    settings = ProcessorSettings(
        kafka_bootstrap=kafka_bootstrap, topic_namespace=namespace, keyring_file=keyring_path
    )
    await kafka.ensure_topics(kafka_bootstrap, settings.topics().all_specs(directory))
    running = Running(settings)
    await running.start()
    yield running
    await running.halt()


async def _publish(
    agency: str,
    event_type: str,
    data: dict[str, object],
    *,
    namespace: str,
    bootstrap: str,
    keyring: Keyring,
) -> str:
    publisher = EventPublisher(
        agency_id=agency,
        topic=Topics(namespace=namespace).source(agency),
        bootstrap=bootstrap,
        schemas=SchemaRegistry.load(),
        routing=keyring.require_routing(),
    )
    await publisher.start()
    try:
        event = publisher.build(
            event_type=event_type,
            data=data,
            subject_id=f"nhs:{data['subject']['nhs_number']}",  # type: ignore[index]
            native_id=str(uuid.uuid4()),
        )
        await publisher.publish(event)
    finally:
        await publisher.stop()
    return event.id


def _plan() -> dict[str, object]:
    native = ChildProtectionPlanStarted.model_validate(scenario.plan_started(scenario.ON_PLAN))
    return mapping.plan_started(native, authority_name="Northshire County Council")


def _count(n: int) -> Callable[[list[object]], bool]:
    return lambda records: len(records) >= n


async def test_plan_state_survives_a_restart_and_poison_is_dead_lettered(
    stack: Running, kafka_bootstrap: str, namespace: str, keyring: Keyring
) -> None:
    topics = Topics(namespace=namespace)
    common = {"namespace": namespace, "bootstrap": kafka_bootstrap, "keyring": keyring}
    await _publish("la-northshire", mapping.PLAN_STARTED, _plan(), **common)  # type: ignore[arg-type]
    flags = await read_topic(topics.deliver("nhs-riverside-ed"), kafka_bootstrap, until=_count(1))
    assert orjson.loads(flags[0].value)["plan"]["category"] == "neglect"

    # A poison record on the health topic, keyed like a real one, then a good attendance.
    producer = kafka.producer(kafka_bootstrap)
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
    await _publish("nhs-riverside-ed", ATTENDANCE, attendance, **common)  # type: ignore[arg-type]

    notified = await read_topic(topics.deliver("la-northshire"), kafka_bootstrap, until=_count(1))
    assert orjson.loads(notified[0].value)["attendance"]["site"]["ods_code"] == "RVR01"
    assert len(restarted.plans) == 1

    dead = await read_topic(topics.dlq("processor"), kafka_bootstrap, until=_count(1))
    assert dead[0].value == b"{not json"
    reason = dict(dead[0].headers)["dlq_reason"].decode()
    assert "not JSON" in reason

    audit = await read_topic(topics.audit, kafka_bootstrap, until=_count(5))
    decisions = sorted(
        (r["event_type"], r["recipient"] or "-", r["decision"])
        for r in (orjson.loads(a.value) for a in audit)
    )
    assert decisions == [
        (ATTENDANCE, "-", "dead_lettered"),
        (ATTENDANCE, "la-northshire", "shared"),
        (ATTENDANCE, "la-northshire", "withheld"),  # early help: the child is on a plan
        (ATTENDANCE, "ph-northshire", "shared"),
        (mapping.PLAN_STARTED, "nhs-riverside-ed", "shared"),
    ]
