"""What ``infoshare protocols simulate`` decides over: a file of events (JSON lines), or a
range of a raw source topic with today's plan state. Reads Kafka, writes nothing to it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka import ConsumerRecord, TopicPartition

from consent.core.decide import EventFacts
from consent.core.state import ProtectionPlan, SubjectState
from consent.policy.simulate import SimEvent, SimulationInputError, sim_event
from services.backbone import envelope, kafka
from services.backbone.errors import BackboneError
from services.backbone.identifiers import subject_identifier
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_spans, read_table
from services.backbone.topics import PROTECTION_PLANS, Topics


def events_from_file(path: Path) -> list[SimEvent]:
    """One simulated event per non-blank line of ``path``; SimulationInputError naming the
    line of the first that is not one."""
    events = []
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SimulationInputError(f"{path.name} line {index}: not JSON: {exc}") from None
        events.append(sim_event(doc, index=index))
    return events


async def events_from_topic(
    *, access: KafkaAccess, topic: str, partition: int, start: int, end: int, topics: Topics
) -> list[SimEvent]:
    """Records ``start`` to ``end`` (inclusive) of one partition, with today's plan state."""
    plans = await read_table(access, topics.state(PROTECTION_PLANS), ProtectionPlan.from_bytes)
    reader = kafka.consumer(access=access, group_id=None)
    await reader.start()
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        stop = min(end + 1, (await reader.end_offsets([tp]))[tp])
        events: list[SimEvent] = []
        async with asyncio.timeout(30):
            async for batch in read_spans(reader, {tp: (start, stop)}):
                events += [_from_record(rec, plans) for rec in batch]
        return events
    finally:
        await reader.stop()


def _from_record(rec: ConsumerRecord, plans: dict[str, ProtectionPlan]) -> SimEvent:
    try:
        event = envelope.decode(rec.key, rec.value, list(rec.headers or ()))
        nhs = str(event.data["subject"]["nhs_number"])
    except (BackboneError, KeyError, TypeError) as exc:
        raise SimulationInputError(f"offset {rec.offset}: {exc}") from None
    facts = EventFacts(
        event.id,
        event.type,
        event.source_agency,
        event.data,
        subject_identifier(nhs_number=nhs),
        occurred=event.time.date(),
    )
    return SimEvent(facts, SubjectState(plans.get(event.key)))
