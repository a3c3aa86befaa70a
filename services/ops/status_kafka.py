"""The Kafka side of ``infoshare status``: is the broker there, how far behind each reader
is, how many dead letters wait.

Lag and depth are measured against the last stable offset (what ``end_offsets`` gives a
read_committed consumer). A transaction's commit marker takes an offset of its own, so an
offset difference counts markers as records: a reader that has read everything on a
transactional topic stands one offset before the end. Where the difference is small (at
most ``COUNT_AT_MOST`` offsets a partition) the records are read, group-less, and counted
exactly; past that, or when time runs out, the difference is given as an upper bound.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError

from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess
from services.backbone.reading import read_spans
from services.ops.status_model import DeadLetterDepth, GroupLag, KafkaStatus, PartitionLag

COUNT_AT_MOST = 20_000  # offsets of one partition read to count its records exactly
Offsets = Mapping[tuple[str, int], int]


@dataclass(frozen=True)
class Reader:
    """A reader whose lag to measure: one with a Kafka consumer group (``kafka_group``), or
    one that keeps its offsets itself and reported them in ``stored`` (None: it did not)."""

    name: str
    group: str
    topics: tuple[str, ...]
    kafka_group: bool = True
    stored: Offsets | None = None


@dataclass(frozen=True)
class KafkaFindings:
    status: KafkaStatus
    groups: tuple[GroupLag, ...]
    dead_letters: tuple[DeadLetterDepth, ...]


async def gather_kafka(
    access: KafkaAccess,
    readers: Sequence[Reader],
    dlq_topics: Sequence[str],
    *,
    timeout_s: float = 4.0,
) -> KafkaFindings:
    """Everything status needs from Kafka, within ``timeout_s``; if the broker cannot be
    reached (or stops answering) it says so and every reader's position is unknown."""
    ms = int(timeout_s * 1000)
    admin = kafka.admin(access, request_timeout_ms=ms)
    reader = kafka.consumer(access=access, group_id=None, fetch_max_wait_ms=50)
    deadline = time.monotonic() + timeout_s
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await reader.start()
            return await _measure(
                admin, reader, readers, dlq_topics, access=access, deadline=deadline
            )
    except (KafkaError, OSError, TimeoutError) as exc:
        unknown = tuple(
            GroupLag(r.name, r.group, known=False, note="Kafka did not answer") for r in readers
        )
        return KafkaFindings(KafkaStatus(access.bootstrap, False, _why(exc)), unknown, ())
    finally:
        await reader.stop()
        await admin.close()


def _why(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, KafkaConnectionError | OSError):
        return "cannot connect"
    return type(exc).__name__


async def _members(admin: AIOKafkaAdminClient, groups: list[str]) -> dict[str, int | None]:
    """How many members each group has now (None: Kafka would not say)."""
    found: dict[str, int | None] = {}
    for group in groups:
        # One group a request: aiokafka 0.14 reads a v3 answer with the v2 layout, which
        # lacks a field after each group's members, so a second group in the same answer
        # is misread (the first, and so its members, is read right).
        try:
            [response] = await admin.describe_consumer_groups([group])
            [described] = response.to_object()["groups"]
        except (KafkaError, ValueError):
            found[group] = None
            continue
        found[group] = None if described["error_code"] else len(described["members"])
    return found


Row = tuple[TopicPartition, int | None, int]  # a partition, its committed offset, first unread


async def _positions(
    admin: AIOKafkaAdminClient, readers: Sequence[Reader]
) -> dict[str, Offsets | None]:
    """Each reader's next offsets: committed in its group, or the ones it reported."""
    found: dict[str, Offsets | None] = {}
    for r in readers:
        if not r.kafka_group:
            found[r.group] = r.stored
            continue
        got = await admin.list_consumer_group_offsets(r.group)
        found[r.group] = {(tp.topic, tp.partition): m.offset for tp, m in got.items()}
    return found


async def _measure(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    readers: Sequence[Reader],
    dlq_topics: Sequence[str],
    *,
    access: KafkaAccess,
    deadline: float,
) -> KafkaFindings:
    members = await _members(admin, [r.group for r in readers if r.kafka_group])
    positions = await _positions(admin, readers)
    wanted = {t for r in readers for t in r.topics} | set(dlq_topics)
    wanted |= {t for offsets in positions.values() for t, _ in offsets or {}}
    tps = await _partitions(admin, wanted)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(tps) if tps else {}
    begins: dict[TopicPartition, int] = await consumer.beginning_offsets(tps) if tps else {}

    def rows(offsets: Offsets | None, topics: set[str]) -> list[Row]:
        found = []
        for tp in (tp for tp in tps if tp.topic in topics):
            at = _at(offsets, tp)
            # No offset, or one before the oldest kept: the reader starts at the beginning.
            found.append((tp, at, min(max(begins[tp], -1 if at is None else at), ends[tp])))
        return found

    plans = []
    for r in readers:
        offsets = positions[r.group]
        plans.append((r, rows(offsets, set(r.topics) | {t for t, _ in offsets or {}})))
    dlq = [tp for tp in tps if tp.topic in dlq_topics]
    spans = {tp: (begins[tp], ends[tp]) for tp in dlq}
    for _, planned in plans:
        for tp, _, first in planned:
            spans[tp] = (min(first, spans.get(tp, (first, 0))[0]), ends[tp])
    seen = await _committed_offsets(consumer, spans, deadline=deadline)

    def count(tp: TopicPartition, first: int) -> tuple[int, bool]:
        if tp not in seen:
            return max(0, ends[tp] - first), False
        return len(seen[tp]) - bisect.bisect_left(seen[tp], first), True

    groups = []
    for r, planned in plans:
        known = positions[r.group] is not None
        lags = tuple(
            PartitionLag(tp.topic, tp.partition, at, ends[tp], *count(tp, first))
            for tp, at, first in planned
        )
        note = "" if known else f"{r.name} did not say where it reads"
        groups.append(
            GroupLag(r.name, r.group, members.get(r.group), lags if known else (), known, note)
        )
    depths = []
    for topic in dlq_topics:
        counted = [count(tp, begins[tp]) for tp in dlq if tp.topic == topic]
        depths.append(
            DeadLetterDepth(topic, sum(n for n, _ in counted), all(e for _, e in counted))
        )
    return KafkaFindings(KafkaStatus(access.bootstrap, True), tuple(groups), tuple(depths))


async def _partitions(admin: AIOKafkaAdminClient, topics: set[str]) -> list[TopicPartition]:
    """Every partition of those of ``topics`` that exist."""
    existing = set(await admin.list_topics())
    described = await admin.describe_topics(sorted(topics & existing))
    return sorted(
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d["error_code"]
        for p in d["partitions"]
    )


def _at(offsets: Offsets | None, tp: TopicPartition) -> int | None:
    at = (offsets or {}).get((tp.topic, tp.partition))
    return at if at is not None and at >= 0 else None


async def _committed_offsets(
    consumer: AIOKafkaConsumer,
    spans: Mapping[TopicPartition, tuple[int, int]],
    *,
    deadline: float,
) -> dict[TopicPartition, list[int]]:
    """The offsets of the committed records in each span (first, end), for the spans short
    enough to read and read before ``deadline``; the others are left out."""
    todo = {tp: s for tp, s in spans.items() if 0 < s[1] - s[0] <= COUNT_AT_MOST}
    done: dict[TopicPartition, list[int]] = {tp: [] for tp, s in spans.items() if s[1] <= s[0]}
    if not todo:
        return done
    consumer.assign(list(todo))
    found: dict[TopicPartition, list[int]] = {tp: [] for tp in todo}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, deadline - time.monotonic() - 0.2)):
            async for batch in read_spans(consumer, todo, max_records=5000, poll_ms=100):
                for r in batch:
                    found[TopicPartition(r.topic, r.partition)].append(r.offset)
    # Commit markers and aborted records are skipped: the position passes them.
    read = {tp for tp in todo if await consumer.position(tp) >= todo[tp][1]}
    return done | {tp: offsets for tp, offsets in found.items() if tp in read}
