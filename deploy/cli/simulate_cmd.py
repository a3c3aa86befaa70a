"""``infoshare protocols simulate``: a dry run of a protocol set over a file of events or a
range of a raw source topic, side by side with the live set. Writes nothing to Kafka."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from rich.console import Console
from rich.table import Table

from consent.core.decide import EventFacts
from consent.core.state import ProtectionPlan, SubjectState
from consent.policy.simulate import Row, SimEvent, SimulationInputError, sim_event
from services.backbone import envelope, kafka
from services.backbone.errors import BackboneError
from services.backbone.identifiers import subject_identifier
from services.backbone.topics import Topics


def events_from_file(path: Path) -> list[SimEvent]:
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
    *, bootstrap: str, topic: str, partition: int, start: int, end: int, topics: Topics
) -> list[SimEvent]:
    """Records ``start`` to ``end`` (inclusive) of one partition, with today's plan state."""
    plans = await _plans(bootstrap, topics)
    reader = kafka.consumer(bootstrap=bootstrap, group_id=None)
    await reader.start()
    try:
        tp = TopicPartition(topic, partition)
        reader.assign([tp])
        reader.seek(tp, start)
        events: list[SimEvent] = []
        async with asyncio.timeout(30):
            while await reader.position(tp) <= end:
                batch = await reader.getmany(tp, timeout_ms=1000)
                if not batch and await reader.position(tp) >= (await reader.end_offsets([tp]))[tp]:
                    break
                for rec in batch.get(tp, []):
                    if rec.offset <= end:
                        events.append(_from_record(rec, plans))
        return events
    finally:
        await reader.stop()


def _from_record(rec: object, plans: dict[str, ProtectionPlan]) -> SimEvent:
    try:
        event = envelope.decode(rec.key, rec.value, list(rec.headers or ()))  # type: ignore[attr-defined]
        nhs = str(event.data["subject"]["nhs_number"])
    except (BackboneError, KeyError, TypeError) as exc:
        raise SimulationInputError(f"offset {rec.offset}: {exc}") from None  # type: ignore[attr-defined]
    facts = EventFacts(
        event.id,
        event.type,
        event.source_agency,
        event.data,
        subject_identifier(nhs_number=nhs),
        occurred=event.time.date(),
    )
    return SimEvent(facts, SubjectState(plans.get(event.key)))


async def _plans(bootstrap: str, topics: Topics) -> dict[str, ProtectionPlan]:
    reader = kafka.consumer(topics.state("protection-plans"), bootstrap=bootstrap, group_id=None)
    await reader.start()
    plans: dict[str, ProtectionPlan] = {}
    try:
        parts = list(reader.assignment())
        ends = await reader.end_offsets(parts)
        pending = {tp for tp in parts if ends[tp] > 0}
        while pending:
            for records in (await reader.getmany(*pending, timeout_ms=1000)).values():
                for rec in records:
                    if rec.value is None:
                        plans.pop(rec.key.decode(), None)
                    else:
                        plans[rec.key.decode()] = ProtectionPlan.from_json(orjson.loads(rec.value))
            pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
    finally:
        await reader.stop()
    return plans


def render(rows: list[Row], console: Console, *, compared: bool) -> None:
    table = Table(
        title="Simulation (nothing was written; pseudonyms are throwaway)",
        show_lines=True,
        expand=True,
    )
    for column in (
        "#",
        "event type",
        "recipient",
        "protocol",
        "would",
        *(["live set"] if compared else []),
        "fields it would get",
    ):
        table.add_column(column, overflow="fold")
    for r in rows:
        mark = "[bold yellow]* [/]" if r.changed else ""
        table.add_row(
            str(r.index),
            r.event_type,
            r.recipient,
            r.protocol,
            mark + r.candidate,
            *([r.live or "-"] if compared else []),
            "\n".join(r.fields),
        )
    console.print(table)
    if compared:
        changed = sum(r.changed for r in rows)
        console.print(
            f"{changed} decision(s) differ from the live set"
            if changed
            else "no decision differs from the live set"
        )
