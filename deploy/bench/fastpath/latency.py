"""End-to-end latency under open-loop load: events sent on a fixed schedule whatever the
system under test does (so a slow consumer cannot slow its own load, and queueing shows),
each timed from its scheduled send to the moment its output is visible to a read_committed
consumer.

For the bare variants the output is the copy on their sink (the same ``ce_id`` header); for
the processor it is the first of the event's audit records on the decisions topic, which
commits in the same transaction as its deliveries. The generator and the watcher share one
event loop in the parent; the system under test runs in a fresh process.

An event not seen within ``DRAIN_S`` of the last send counts as slower than every event
seen: a percentile that falls on one is reported as more than the window, not as a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from deploy.bench.loadgen import Sent, collector_paused
from services.backbone import kafka
from services.backbone.kafka_access import KafkaAccess

LOAD_S = 3.0  # seconds of scheduled sends per run, at least
MIN_EVENTS = 5000  # measured events per run, at least (a p99.9 needs thousands)
DRAIN_S = 10.0  # how long after the last send an output may still arrive
WARM = 100  # events sent first and waited for, not counted (the group joined, caches warm)
WARM_TIMEOUT_S = 180.0
QUANTILES = (0.5, 0.99, 0.999)


@dataclass(frozen=True)
class Latency:
    variant: str
    load: str  # what the rate is a share of, e.g. "50% of B"
    rate: float  # events/s scheduled
    sent_rate: float  # events/s the generator kept up
    events: int
    seen: int  # outputs seen within the window
    quantiles: tuple[float, ...]  # seconds, QUANTILES; math.inf beyond the window
    window_s: float


def measured_count(rate: float) -> int:
    """Events a run at ``rate`` schedules: LOAD_S seconds' worth, or MIN_EVENTS."""
    return max(MIN_EVENTS, int(rate * LOAD_S))


def quantile(values: Sequence[float], q: float) -> float:
    """The nearest-rank quantile of sorted ``values``."""
    return values[max(0, math.ceil(q * len(values)) - 1)]


def copied_id(record: ConsumerRecord) -> str | None:
    """A bare variant's copy: its CloudEvents id header."""
    for name, value in record.headers or ():
        if name == "ce_id":
            return bytes(value).decode()
    return None


def decided_id(record: ConsumerRecord) -> str | None:
    """The processor's audit record: the event it decides."""
    found = orjson.loads(record.value).get("event_id")
    return found if isinstance(found, str) else None


def sent_id(record: Sent) -> str:
    return next(bytes(v).decode() for k, v in record.headers if k == "ce_id")


async def open_loop(
    access: KafkaAccess,
    records: Sequence[Sent],
    *,
    rate: float,
    watch: str,
    event_id: Callable[[ConsumerRecord], str | None],
    group: str,
) -> tuple[list[float], int, float]:
    """Send ``records[:WARM]`` and wait for them on ``watch``; then the rest at ``rate``
    per second on schedule. The latencies seen (sorted), how many were not seen within the
    window, and the rate the generator kept up."""
    watcher = kafka.consumer(watch, access=access, group_id=group, fetch_max_wait_ms=100)
    producer = kafka.producer(access)
    await watcher.start()
    await producer.start()
    seen = Seen()
    stop = asyncio.Event()
    watching = asyncio.create_task(_watch(watcher, event_id, seen, stop))
    try:
        warm, measured = records[:WARM], records[WARM:]
        await asyncio.gather(
            *[await producer.send(r.topic, r.value, key=r.key, headers=r.headers) for r in warm]
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(WARM_TIMEOUT_S):
                await seen.wait([sent_id(r) for r in warm])
        if len(seen.at) < len(warm):
            raise RuntimeError(f"the warm-up's outputs did not all arrive on {watch}")
        with collector_paused():  # the generator's own pauses are not the system's latency
            scheduled, sent_rate = await _schedule(producer, measured, rate)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await seen.wait(scheduled)
    finally:
        stop.set()
        await watching
        await producer.stop()
        await watcher.stop()
    latencies = sorted(seen.at[i] - due for i, due in scheduled.items() if i in seen.at)
    return latencies, len(scheduled) - len(latencies), sent_rate


async def _schedule(
    producer: AIOKafkaProducer, records: Sequence[Sent], rate: float
) -> tuple[dict[str, float], float]:
    """Send each record at its time on the schedule (or at once, if the generator is
    behind); each event's scheduled time, and the rate achieved."""
    scheduled: dict[str, float] = {}
    pending = []
    start = time.perf_counter() + 0.01
    for n, r in enumerate(records):
        due = start + n / rate
        ahead = due - time.perf_counter()
        if ahead > 0.001:
            await asyncio.sleep(ahead)
        elif n % 100 == 0:
            await asyncio.sleep(0)  # the watcher's turn, even when the generator is behind
        scheduled[sent_id(r)] = due
        pending.append(await producer.send(r.topic, r.value, key=r.key, headers=r.headers))
    finished = time.perf_counter()
    await asyncio.gather(*pending)
    return scheduled, len(records) / max(finished - start, 1e-9)


async def _watch(
    consumer: AIOKafkaConsumer,
    event_id: Callable[[ConsumerRecord], str | None],
    seen: Seen,
    stop: asyncio.Event,
) -> None:
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                found = event_id(record)
                if found is not None:
                    seen.saw(found, now)


class Seen:
    """When each event's first output became visible; ``wait`` for a set of them."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self._wanted: set[str] = set()
        self._all_in = asyncio.Event()

    def saw(self, event_id: str, now: float) -> None:
        if event_id not in self.at:
            self.at[event_id] = now
            self._wanted.discard(event_id)
            if not self._wanted:
                self._all_in.set()

    async def wait(self, ids: Iterable[str]) -> None:
        """Until every one of ``ids`` is seen (the caller bounds it with a timeout)."""
        self._wanted = {i for i in ids if i not in self.at}
        self._all_in.clear()
        if self._wanted:
            await self._all_in.wait()


def summarise(
    variant: str,
    load: str,
    rate: float,
    latencies: list[float],
    missing: int,
    sent_rate: float,
) -> Latency:
    every = latencies + [math.inf] * missing
    return Latency(
        variant,
        load,
        rate,
        sent_rate,
        len(every),
        len(latencies),
        tuple(quantile(every, q) for q in QUANTILES),
        DRAIN_S,
    )


def shown_ms(seconds: float) -> str:
    """A quantile in milliseconds, or that it lies beyond the window."""
    if math.isinf(seconds):
        return f">{DRAIN_S * 1000:,.0f}"
    return f"{seconds * 1000:,.1f}"
