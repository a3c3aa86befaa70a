"""What runs in a fresh process for each measured run of the fast-path benchmark, so that
every run starts from the same state and its peak RSS and CPU time are its own.

A ``Job`` names the variant: a bare baseline (A, B, C: bare.py), the processor (D), or the
audit service's ingester storing the processor's decisions (the other half of E). A job
with a ``total`` ends when that many inputs are done (saturation); one without runs until
the parent says stop (open-loop latency, where the parent makes the load and watches the
output). The audit ingester ends when it has stored the count the parent gives it, once
the processor beside it has said how many it wrote.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session

from consent.processor.handle import Handled
from consent.processor.observe import Headers_, ProcessorMetrics
from deploy.bench.fastpath.clock import Clock
from services.audit.prepared import Ready
from services.audit.store import AuditStore
from services.backbone.kafka_access import KafkaAccess
from services.backbone.topics import Topics

BATCH_MAX = 500  # the processor's default
AUDIT = "audit"  # the ingester's job
IDLE = "idle"  # nothing: a child's own baseline (its imports)


class Flag(Protocol):
    """A ``multiprocessing`` event, as the child sees it."""

    def is_set(self) -> bool: ...


class Count(Protocol):
    """A shared ``multiprocessing`` integer."""

    value: int


@dataclass(frozen=True)
class Job:
    variant: str  # "A", "B", "C", "D", AUDIT or IDLE
    access: KafkaAccess
    keyring_file: Path
    namespace: str
    partitions: int
    total: int = 0  # inputs to wait for; 0: until the parent says stop
    fanout: float = 1.0  # C's records per input
    sink: str = ""  # the bare variants' output topic
    sources: tuple[str, ...] = ()  # the bare variants' input topics
    protocols_dir: Path | None = None
    agencies_file: Path | None = None
    database_url: str = ""  # the audit store's (AUDIT)
    batch_max: int = BATCH_MAX


@dataclass(frozen=True)
class Measured:
    variant: str
    done: int
    per_second: float
    cpu_per_1000: float  # CPU seconds of this process per 1,000 inputs
    peak_rss_kb: int
    first_wall: float
    last_wall: float
    first_done: int  # inputs done in the first batch (not counted in the rate)
    cpu_s: float  # CPU seconds from the first batch to the last
    written: int = 0  # D: records written
    audits: int = 0  # D: audit records written

    @staticmethod
    def of(variant: str, clock: Clock, written: int = 0, audits: int = 0) -> Measured:
        return Measured(
            variant,
            clock.done,
            clock.per_second,
            clock.cpu_per_1000,
            peak_rss_kb(),
            clock.first_wall,
            clock.last_wall,
            clock.first_done,
            clock.last_cpu - clock.first_cpu,
            written,
            audits,
        )


def peak_rss_kb() -> int:
    """This process's peak resident set since it was started (``VmHWM``). Not
    ``ru_maxrss``: Linux keeps that across ``execve``, so a spawned child would report its
    parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the best there is


class CountingMetrics(ProcessorMetrics):
    """The processor's metrics, counting the records and audit records it commits too."""

    written = 0
    audits = 0
    audit_topic = ""

    def committed(self, results: Iterable[tuple[str, Headers_, Handled]]) -> None:
        listed = list(results)
        for _, _, handled in listed:
            self.written += len(handled.records)
            self.audits += sum(1 for r in handled.records if r.topic == self.audit_topic)
        super().committed(listed)


class CountingStore(AuditStore):
    """The audit store, ticking a clock with each batch it has committed."""

    clock: Clock | None = None

    def add_batch(
        self, records: Sequence[Ready], *, also: Callable[[Session], None] | None = None
    ) -> int:
        added = super().add_batch(records, also=also)
        if self.clock is not None:
            self.clock.tick(len(records))
        return added


def main(job: Job, results: Any, stop: Flag, expected: Count) -> None:
    """The process's entry point: put a ``Measured`` (or the error, as text) on
    ``results``."""
    from services.backbone.quiet import run_quietly

    try:
        results.put(run_quietly(_run(job, stop, expected)))
    except BaseException:  # the parent reports it and stops the benchmark
        results.put(traceback.format_exc())


async def _run(job: Job, stop: Flag, expected: Count) -> Measured:
    clock = Clock(job.total or sys.maxsize)
    if job.variant == IDLE:
        return Measured.of(IDLE, clock)
    if job.variant == AUDIT:
        return await _audit(job, clock, stop, expected)
    if job.variant == "D":
        return await _processor(job, clock, stop)
    return await _bare(job, clock, stop)


async def _until(clock: Clock, stop: Flag, done: Callable[[], bool] = lambda: False) -> None:
    """Set ``clock.finished`` when the parent says stop or ``done()`` holds."""
    while not clock.finished.is_set():
        if stop.is_set() or done():
            clock.finished.set()
        await asyncio.sleep(0.02)


async def _bare(job: Job, clock: Clock, stop: Flag) -> Measured:
    from deploy.bench.fastpath.bare import Passthrough, at_least_once, transactional

    watch = asyncio.create_task(_until(clock, stop))
    run = Passthrough(job.access, job.sources, job.sink, f"{job.sink}.group", clock, job.batch_max)
    if job.variant == "A":
        await at_least_once(run)
    else:
        await transactional(run, fanout=job.fanout)
    await watch
    return Measured.of(job.variant, clock)


async def _processor(job: Job, clock: Clock, stop: Flag) -> Measured:
    from consent.processor.main import bootstrap
    from consent.processor.settings import ProcessorSettings
    from services.backbone import telemetry
    from services.backbone.metering import Metrics
    from services.backbone.schemas import SchemaRegistry

    telemetry.setup_tracing("infoshare-processor")  # as by default: no exporter unless set
    settings = ProcessorSettings(
        **job.access.settings(),
        topic_namespace=job.namespace,
        topic_partitions=job.partitions,
        keyring_file=job.keyring_file,
        protocols_dir=job.protocols_dir,
        agencies_file=job.agencies_file,
        batch_max=job.batch_max,
        port=0,
    )
    topics = Topics(namespace=job.namespace, partitions=job.partitions)
    metrics = CountingMetrics(
        Metrics("infoshare-bench"),
        group=topics.processor_group,
        known_types=SchemaRegistry.load().event_types,
    )
    metrics.audit_topic = topics.audit
    running = bootstrap(settings, metrics=metrics)
    halt = asyncio.Event()
    task = asyncio.create_task(running.run(halt))
    watch = asyncio.create_task(_until(clock, stop))
    seen = 0
    while not clock.finished.is_set():
        if task.done():
            task.result()
            raise RuntimeError("the processor stopped before the end")
        if running.processed != seen:
            clock.tick(running.processed - seen)
            seen = running.processed
        await asyncio.sleep(0.005)
    halt.set()
    await task
    await watch
    return Measured.of("D", clock, metrics.written, metrics.audits)


async def _audit(job: Job, clock: Clock, stop: Flag, expected: Count) -> Measured:
    from services.audit.ingest import ingest
    from services.audit.sealing import sealing_from
    from services.backbone.keyring import load_keyring

    store = CountingStore(job.database_url, sealing_from(load_keyring(job.keyring_file), None))
    store.create_schema()
    store.clock = clock
    topics = Topics(namespace=job.namespace, partitions=job.partitions)
    halt = asyncio.Event()
    task = asyncio.create_task(
        ingest(
            store,
            topic=topics.audit,
            access=job.access,
            group_id=topics.audit_group,
            dlq_topic=topics.dlq("audit"),
            stop=halt,
        )
    )
    await _until(clock, stop, lambda: 0 < expected.value <= clock.done or task.done())
    halt.set()
    await task  # raises what stopped it
    return Measured.of(AUDIT, clock)
