"""Helpers for tests against the real broker: read a topic back until a condition holds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import ConsumerRecord

from consent.processor.loop import Processor
from consent.processor.main import bootstrap
from consent.processor.settings import ProcessorSettings
from deploy.devstack.demo import scenario
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.publisher import EventPublisher
from services.backbone.reading import read_to_end
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanStarted

T = TypeVar("T")


async def read_topic(
    topic: str,
    access: KafkaAccess,
    *,
    until: Callable[[list[ConsumerRecord]], bool],
    wait_s: float = 30.0,
) -> list[ConsumerRecord]:
    """Every committed record of ``topic`` from the start, once ``until(records)`` holds."""
    reader = kafka.consumer(topic, access=access, group_id=None)
    await reader.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(wait_s):
            while not until(records):
                batch = await reader.getmany(timeout_ms=200)
                for part in batch.values():
                    records.extend(part)
    except TimeoutError:
        raise AssertionError(
            f"{topic}: condition not met after {wait_s}s; read {len(records)} records"
        ) from None
    finally:
        await reader.stop()
    return records


async def end_offsets(topic: str, access: KafkaAccess) -> dict[int, int]:
    reader = kafka.consumer(topic, access=access, group_id=None)
    await reader.start()
    try:
        ends = await reader.end_offsets(list(reader.assignment()))
    finally:
        await reader.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def publish_event(
    agency: str,
    event_type: str,
    data: dict[str, object],
    *,
    namespace: str,
    access: KafkaAccess,
    keyring: Keyring,
    native_id: str | None = None,
) -> str:
    publisher = EventPublisher(
        agency_id=agency,
        topic=Topics(namespace=namespace).source(agency),
        access=access,
        schemas=SchemaRegistry.load(),
        routing=keyring.require_routing(),
    )
    await publisher.start()
    try:
        event = publisher.build(
            event_type=event_type,
            data=data,
            subject_id=f"nhs:{data['subject']['nhs_number']}",  # type: ignore[index]
            native_id=native_id or str(uuid.uuid4()),
        )
        await publisher.publish(event)
    finally:
        await publisher.stop()
    return event.id


def plan_data() -> dict[str, object]:
    native = ChildProtectionPlanStarted.model_validate(scenario.plan_started(scenario.ON_PLAN))
    return mapping.plan_started(native, authority_name="Northshire County Council")


def at_least(n: int) -> Callable[[list[object]], bool]:
    return lambda records: len(records) >= n


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


async def read_all(topic: str, access: KafkaAccess, keep: Callable[[ConsumerRecord], T]) -> list[T]:
    """``keep(record)`` of every committed record of ``topic`` up to its end offsets as of
    now, partition after partition (records of one partition in their order)."""
    reader = kafka.consumer(topic, access=access, group_id=None)
    await reader.start()
    by_partition: dict[int, list[T]] = {}
    try:
        async for batch in read_to_end(reader):
            for rec in batch:
                by_partition.setdefault(rec.partition, []).append(keep(rec))
    finally:
        await reader.stop()
    return [item for partition in sorted(by_partition) for item in by_partition[partition]]


async def eventually(
    what: str, check: Callable[[], Awaitable[bool]], *, wait_s: float = 20.0
) -> None:
    """Wait until ``check()`` holds (polling), or fail naming ``what``."""
    deadline = time.monotonic() + wait_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {wait_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)
