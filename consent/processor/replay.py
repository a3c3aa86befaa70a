"""Replay: decide a range of a source topic again under today's protocols, consent and plan
state, never re-sending old payloads.

Each decision is audited as ``replay`` under the run's id; deliveries keep the id the
recipient saw before (so a recipient that has one drops it) and name the run. A run is its
own transactional producer and consumer group: the deliveries, audit records and progress of
a batch commit together, so the same run id again resumes where it stopped and decides
nothing twice. Plan state is read, never written, and the processor's duplicate memory is
left alone: a replay is not a second occurrence of the events. A copy of an event later in
the range is skipped, as it was when first read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry import trace

from consent.core.state import ProtectionPlan
from consent.processor.dedup import Seen
from consent.processor.disclosed import Disclosed
from consent.processor.handle import Context, Handled, handle
from consent.processor.observe import delivery_headers
from consent.processor.producers import quietly
from consent.processor.records import OutRecord
from consent.registry.view import ConsentView
from services.backbone import kafka, telemetry
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_spans, read_table
from services.backbone.records import ReadRecord
from services.backbone.topics import DISCLOSED, PROTECTION_PLANS

BATCH = 500
tracer = trace.get_tracer("infoshare.replay")


@dataclass(frozen=True)
class ReplayRange:
    """Which records: partitions of one source topic, bounded by time and/or offsets."""

    topic: str
    partitions: tuple[int, ...] = ()  # empty: all
    since: datetime | None = None
    until: datetime | None = None
    from_offset: int | None = None
    to_offset: int | None = None  # exclusive


@dataclass
class ReplayReport:
    run: str
    planned: int = 0
    read: int = 0
    unprocessable: int = 0
    duplicates: int = 0
    resumed: int = 0  # records an earlier attempt of this run had already decided
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (recipient, decision)


def new_run_id(now: datetime) -> str:
    return f"replay-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


async def plan_offsets(
    access: KafkaAccess, what: ReplayRange
) -> dict[TopicPartition, tuple[int, int]]:
    """Per partition, the first offset and the offset to stop before."""
    reader = kafka.consumer(what.topic, access=access, group_id=None)
    await reader.start()
    try:
        tps = sorted(reader.assignment())
        if what.partitions:
            unknown = set(what.partitions) - {tp.partition for tp in tps}
            if unknown:
                raise ValueError(f"{what.topic} has no partition {sorted(unknown)[0]}")
            tps = [tp for tp in tps if tp.partition in what.partitions]
        firsts = await reader.beginning_offsets(tps)
        ends = await reader.end_offsets(tps)
        starts = dict(firsts)
        stops = dict(ends)
        if what.since is not None:
            found = await reader.offsets_for_times({tp: _ms(what.since) for tp in tps})
            starts = {tp: found[tp].offset if found[tp] else ends[tp] for tp in tps}
        if what.until is not None:
            found = await reader.offsets_for_times({tp: _ms(what.until) for tp in tps})
            stops = {tp: found[tp].offset if found[tp] else ends[tp] for tp in tps}
        if what.from_offset is not None:
            starts = {tp: max(starts[tp], what.from_offset) for tp in tps}
        if what.to_offset is not None:
            stops = {tp: min(stops[tp], what.to_offset) for tp in tps}
        return {tp: (starts[tp], stops[tp]) for tp in tps if starts[tp] < stops[tp]}
    finally:
        await reader.stop()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def replay(
    ctx: Context,
    *,
    access: KafkaAccess,
    what: ReplayRange,
    recipient: str | None = None,
    progress: Callable[[ReplayReport], None] = lambda r: None,
) -> ReplayReport:
    """Decide ``what`` again; only ``recipient``'s decisions are kept when one is named.

    The run commits its progress as the offsets of a consumer group of its own, in the same
    transaction as its outputs, so running the same run id again resumes after the last
    committed batch instead of deciding anything twice."""
    assert ctx.replay_run, "a replay needs ctx.replay_run"
    report = ReplayReport(ctx.replay_run)
    ranges = await plan_offsets(access, what)
    report.planned = sum(stop - start for start, stop in ranges.values())
    group = run_group(ctx)
    done = await _committed(access, group, list(ranges))
    ranges = {tp: (max(a, done.get(tp, a)), b) for tp, (a, b) in ranges.items()}
    report.resumed = report.planned - sum(b - a for a, b in ranges.values() if a < b)
    ranges = {tp: (a, b) for tp, (a, b) in ranges.items() if a < b}
    if not ranges:
        return report
    plans: dict[str, ProtectionPlan | None] = dict(
        await read_table(access, ctx.topics.state(PROTECTION_PLANS), ProtectionPlan.from_bytes)
    )
    # What was recalled is not shared again by a replay (disclosed.py).
    disclosed = await read_table(access, ctx.topics.state(DISCLOSED), Disclosed.from_bytes)
    consents = ConsentView(topic=ctx.topics.consent_records, access=access)
    await consents.start()
    producer = kafka.producer(access, transactional_id=group)
    reader = kafka.consumer(access=access, group_id=None)
    seen: dict[str, Seen] = {}
    seal = telemetry.TraceSeal.of(ctx.trace_seal)
    await producer.start()
    await reader.start()
    try:
        reader.assign(list(ranges))
        async for batch in read_spans(reader, ranges, max_records=BATCH):
            outs: list[OutRecord] = []
            offsets: dict[TopicPartition, int] = {}
            for rec in batch:
                offsets[TopicPartition(rec.topic, rec.partition)] = rec.offset + 1
                handled = _decide(ctx, rec, plans, consents, seen, seal, disclosed)
                report.read += 1
                if handled.dead_letter_reason:
                    report.unprocessable += 1  # dead-lettered (and audited) when first read
                elif handled.suppressed:
                    report.duplicates += 1  # a copy: suppressed (and audited) when first read
                else:
                    seen.update(handled.seen_changes)
                    outs += _kept(handled.records, ctx, recipient, report)
            await _commit(producer, outs, offsets, group)
            progress(report)
    finally:
        await quietly(reader.stop())
        await quietly(consents.stop())
        await quietly(producer.stop())
    return report


def run_group(ctx: Context) -> str:
    """The run's consumer group and transactional id (never a processor's ``<group>-pN``)."""
    return f"{ctx.topics.namespace}infoshare-replay.{ctx.replay_run}"


def _decide(
    ctx: Context,
    rec: ConsumerRecord,
    plans: dict[str, ProtectionPlan | None],
    consents: ConsentView,
    seen: dict[str, Seen],
    seal: telemetry.TraceSeal | None,
    disclosed: dict[str, Disclosed],
) -> Handled:
    inrec = ReadRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value, rec.headers)
    with telemetry.span(tracer, f"replay {rec.topic}"):
        return handle(
            inrec,
            ctx,
            plans,
            telemetry.current_trace_id(),
            partial(delivery_headers, seal),
            consents.by_subject,
            seen,
            audit_trace=telemetry.inject_headers(),
            disclosed=disclosed,
        )


async def _committed(
    access: KafkaAccess, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    admin = kafka.admin(access, request_timeout_ms=10000)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def _kept(
    records: list[OutRecord], ctx: Context, recipient: str | None, report: ReplayReport
) -> list[OutRecord]:
    kept: list[OutRecord] = []
    for out in records:
        if out.topic == ctx.topics.audit:
            audit = orjson.loads(out.value or b"{}")
            if recipient and audit.get("recipient") != recipient:
                continue
            report.outcomes[(audit.get("recipient") or "-", audit["decision"])] += 1
            kept.append(out)
        elif not recipient or out.topic == ctx.topics.deliver(recipient):
            kept.append(out)
    return kept


async def _commit(
    producer: AIOKafkaProducer,
    outs: list[OutRecord],
    offsets: dict[TopicPartition, int],
    group: str,
) -> None:
    async with producer.transaction():
        sent = [await producer.send(o.topic, o.value, key=o.key, headers=o.headers) for o in outs]
        await asyncio.gather(*sent)
        await producer.send_offsets_to_transaction(offsets, group)


def for_run(ctx: Context, run: str) -> Context:
    return replace(ctx, replay_run=run)
