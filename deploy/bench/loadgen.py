"""A load generator: children, half of them on a protection plan, attending the emergency
department in arrival order; published as the agency services publish (CloudEvents binary,
routing key), in bulk. The fault tests and ``infoshare bench processor`` drive it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from deploy.devstack.demo import scenario
from services.backbone import envelope, kafka, sampling
from services.backbone.identifiers import subject_identifier
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyed import Key, routing_key
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanStarted

LA = "la-northshire"
PLAN_STARTED = mapping.PLAN_STARTED

ED_SOURCE = "nhs-riverside-ed"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The load generator's own garbage collector kept still while it measures: a full
    collection of its thousands of pending requests paused it for about 120 ms, and every
    request due meanwhile was timed as if the server had been slow (a bare insert's p99 at
    290 requests/s: 25 to 36 ms with it, under 5 ms without)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


def nhs_numbers(count: int, start: int = 999_200_000) -> Iterator[str]:
    """Valid test-range NHS numbers (modulus 11), skipping bases whose check digit is 10."""
    base = start
    made = 0
    while made < count:
        digits = f"{base:09d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1), strict=True))
        check = 11 - total % 11
        base += 1
        if check == 10:
            continue
        made += 1
        yield digits + str(0 if check == 11 else check)


@dataclass(frozen=True)
class Child:
    nhs_number: str
    on_plan: bool

    @property
    def subject_id(self) -> str:
        return subject_identifier(nhs_number=self.nhs_number)


@dataclass
class Workload:
    """Children, half on a plan, each attending ``per_child`` times in arrival order."""

    children: list[Child]
    per_child: int
    authority_name: str

    @classmethod
    def make(cls, *, events: int, children: int, authority_name: str) -> Workload:
        kids = [Child(n, i % 2 == 0) for i, n in enumerate(nhs_numbers(children))]
        return cls(kids, max(1, events // children), authority_name)

    @property
    def attendances(self) -> int:
        return self.per_child * len(self.children)

    @staticmethod
    def arrival(seq: int) -> str:
        return (T0 + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def plan_events(self) -> Iterator[tuple[Child, str, dict[str, Any]]]:
        for child in self.children:
            if child.on_plan:
                native = ChildProtectionPlanStarted.model_validate(
                    scenario.plan_started(_template(child))
                )
                data = mapping.plan_started(native, authority_name=self.authority_name)
                yield child, PLAN_STARTED, data

    def attendance_events(self) -> Iterator[tuple[Child, str, dict[str, Any]]]:
        """Round-robin over children, so every partition is busy all the way through."""
        templates = {
            c.nhs_number: attendance_from_bundle(scenario.attendance_bundle(_template(c)))
            for c in self.children
        }
        for seq in range(self.per_child):
            for child in self.children:
                data = orjson.loads(orjson.dumps(templates[child.nhs_number]))
                data["attendance"]["arrival_time"] = self.arrival(seq)
                data["attendance"]["encounter_id"] = f"ED-{child.nhs_number[-6:]}-{seq}"
                yield child, ATTENDANCE, data


def _template(child: Child) -> scenario.Child:
    return scenario.Child(
        child.nhs_number, f"NS-{child.nhs_number[-6:]}", "Test", "Child", "2016-04-09", "NS1 4AP"
    )


def encoded(
    events: Iterator[tuple[Child, str, dict[str, Any]]],
    *,
    topics: Topics,
    keyring: Keyring,
    schemas: SchemaRegistry,
    ids: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Iterator[Sent]:
    """Each event as the agency services publish it: CloudEvents binary, routing key, and
    the trace of the request that made it (recorded or not as the services' default
    sampling decides). ``ids`` gives each event's id (seeded, for a benchmark that
    publishes the same topic again)."""
    traces = _AgencyTraces()
    routing = keyring.require_routing()
    for child, event_type, data in events:
        event = cloud_event(child, event_type, data, routing=routing, schemas=schemas, id=ids())
        key, value, headers = envelope.encode(event, extra_headers=traces.next())
        yield Sent(topics.source(event_source(event_type)), key, value, list(headers))


def event_source(event_type: str) -> str:
    """Who publishes ``event_type`` in the workload: the emergency department or the LA."""
    return ED_SOURCE if event_type == ATTENDANCE else LA


def cloud_event(
    child: Child,
    event_type: str,
    data: dict[str, Any],
    *,
    routing: Key,
    schemas: SchemaRegistry,
    **more: Any,
) -> envelope.CloudEvent:
    """The workload's event as its agency service makes it."""
    return envelope.CloudEvent(
        type=event_type,
        source=envelope.agency_source(event_source(event_type)),
        data=data,
        key=routing_key(routing, child.subject_id),
        dataschema=schemas.get(event_type).uri,
        **more,
    )


async def publish(
    events: Iterator[tuple[Child, str, dict[str, Any]]],
    *,
    access: KafkaAccess,
    topics: Topics,
    keyring: Keyring,
    schemas: SchemaRegistry,
    progress: Callable[[int], None] = lambda n: None,
    sample_every: int = 0,
    samples: list[Sent] | None = None,
    ids: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> int:
    """Publish ``encoded`` events in bulk; every ``sample_every``-th record is also kept in
    ``samples``, to be published again."""
    producer = kafka.producer(access)
    await producer.start()
    sent: list[asyncio.Future[object]] = []
    count = 0
    try:
        for r in encoded(events, topics=topics, keyring=keyring, schemas=schemas, ids=ids):
            sent.append(await producer.send(r.topic, r.value, key=r.key, headers=r.headers))
            count += 1
            if sample_every and samples is not None and count % sample_every == 0:
                samples.append(r)
            if len(sent) >= 5000:
                await asyncio.gather(*sent)
                sent.clear()
                progress(count)
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return count


class _AgencyTraces:
    """A ``traceparent`` per event, as an agency service's request span would give it: a
    fresh trace, recorded (flag 01) as often as the default sampler records a root."""

    def __init__(self) -> None:
        self.sampler = TraceIdRatioBased(sampling.DEFAULT_RATIO)
        self.ids = sampling.UnpredictableIds()

    def next(self) -> list[tuple[str, bytes]]:
        trace_id = self.ids.generate_trace_id()
        decision = self.sampler.should_sample(None, trace_id, "request").decision
        flags = "01" if decision is Decision.RECORD_AND_SAMPLE else "00"
        parent = f"00-{trace_id:032x}-{self.ids.generate_span_id():016x}-{flags}"
        return [("traceparent", parent.encode())]


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


async def publish_again(records: list[Sent], *, access: KafkaAccess) -> int:
    """The same records once more, as a publisher retrying after a lost acknowledgement."""
    producer = kafka.producer(access)
    await producer.start()
    try:
        sent = [
            await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in records
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return len(records)
