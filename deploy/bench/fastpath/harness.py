"""``infoshare bench fastpath`` (``make bench``): the processor (D) beside the bare baselines
(A, B, C: bare.py) on one broker, interleaved, on fresh groups and topics each time.

The input is seeded: 1,000 children, half of them on a protection plan (their plans are
published first), attending the emergency department round-robin, every attendance padded
with seeded clinical notes to about ``payload`` bytes of data, with seeded event ids, on 6
partitions. Under the shipped protocols each attendance goes to three recipients with
different rules: the authority holding a plan (identified, on a condition), public health
(pseudonymised, generalised, tokenised), and one more withheld by its condition.

A round seeds a new namespace, then runs A, B, C and D on it in turn (the order rotates each
round), each with its own consumer group and output topics. D is the real processor
(``bootstrap``), writing its deliveries, audit records and state, traced as it is by default
(the OpenTelemetry SDK, a tenth of traces recorded, no exporter); C writes as many records
per input as D was seen to write in a warm-up run.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consent.processor.handle import Handled
from consent.processor.main import bootstrap
from consent.processor.observe import Headers_, ProcessorMetrics
from consent.processor.settings import ProcessorSettings
from deploy.bench.fastpath.bare import Clock, at_least_once, transactional
from deploy.bench.loadgen import ED_SOURCE, LA, Child, Workload, publish
from services.backbone import kafka
from services.backbone.directory import load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import load_keyring
from services.backbone.metering import Metrics
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics, TopicSpec

PARTITIONS = 6
BATCH_MAX = 500  # the processor's default
CHILDREN = 1000
SEED = 20261205
WORDS = [
    "seen",
    "triage",
    "observed",
    "reported",
    "discharged",
    "referred",
    "review",
    "follow-up",
    "advice",
]
VARIANTS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Bench:
    access: KafkaAccess
    keyring_file: Path
    events: int
    payload: int = 1024


@dataclass(frozen=True)
class Run:
    variant: str
    round: int
    events: int
    per_second: float


def padded(workload: Workload, payload: int, seed: int) -> Iterator[tuple[Child, str, Any]]:
    """The workload's plans, then its attendances, each attendance's data padded with
    seeded notes to about ``payload`` bytes."""
    rng = random.Random(seed)  # noqa: S311  (seeded filler, not a secret)
    yield from workload.plan_events()
    for child, event_type, data in workload.attendance_events():
        notes: list[str] = []
        room = max(0, payload - 430)  # the attendance without notes is about 430 bytes
        while sum(len(w) + 1 for w in notes) < room:
            notes.append(rng.choice(WORDS))
        data["attendance"]["clinical_notes"] = " ".join(notes)[:room]
        yield child, event_type, data


async def seed(bench: Bench, topics: Topics, workload: Workload) -> int:
    """Create the namespace's topics and publish the seeded input; how many records."""
    directory = load_directory(None)
    await kafka.ensure_topics(bench.access, topics.all_specs(directory))
    rng = random.Random(SEED)  # noqa: S311  (seeded event ids, not secrets)
    return await publish(
        padded(workload, bench.payload, SEED),
        access=bench.access,
        topics=topics,
        keyring=load_keyring(bench.keyring_file),
        schemas=SchemaRegistry.load(),
        ids=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    )


class CountingMetrics(ProcessorMetrics):
    """The processor's metrics, counting the records it commits too."""

    written = 0

    def committed(self, results: Iterable[tuple[str, Headers_, Handled]]) -> None:
        listed = list(results)
        self.written += sum(len(h.records) for _, _, h in listed)
        super().committed(listed)


async def processor(bench: Bench, topics: Topics, total: int) -> tuple[Clock, float]:
    """Variant D on ``topics``: its clock, and the records it wrote per input."""
    settings = ProcessorSettings(
        **bench.access.settings(),
        topic_namespace=topics.namespace,
        topic_partitions=PARTITIONS,
        keyring_file=bench.keyring_file,
        batch_max=BATCH_MAX,
        port=0,
    )
    metrics = CountingMetrics(
        Metrics("infoshare-bench"),
        group=topics.processor_group,
        known_types=SchemaRegistry.load().event_types,
    )
    running = bootstrap(settings, metrics=metrics)
    clock, stop = Clock(total), asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    seen = 0
    while not clock.finished.is_set():
        if task.done():
            task.result()
            raise RuntimeError("the processor stopped before the end")
        if running.processed != seen:
            clock.tick(running.processed - seen)
            seen = running.processed
        await asyncio.sleep(0.005)
    stop.set()
    await task
    return clock, metrics.written / max(1, running.processed)


async def bare(
    bench: Bench, variant: str, topics: Topics, attendances: int, fanout: float
) -> Clock:
    """Variant A, B or C, reading the attendances of ``topics``' namespace."""
    tag = uuid.uuid4().hex[:8]
    sink = f"{topics.namespace}bare.{variant}.{tag}"
    await kafka.ensure_topics(bench.access, [TopicSpec(name=sink, partitions=PARTITIONS)])
    clock = Clock(attendances)
    source, group = topics.source(ED_SOURCE), f"{topics.namespace}bare-{variant}-{tag}"
    if variant == "A":
        await at_least_once(
            bench.access, source, sink, group=group, clock=clock, batch_max=BATCH_MAX
        )
    else:
        await transactional(
            bench.access,
            source,
            sink,
            group=group,
            clock=clock,
            batch_max=BATCH_MAX,
            fanout=1.0 if variant == "B" else fanout,
        )
    return clock


async def measure(bench: Bench, rounds: int, say: Callable[[str], None]) -> tuple[list[Run], float]:
    """A warm-up run of D (which also gives C's fan-out), then ``rounds`` rounds of every
    variant; the runs, and the records D writes per input."""
    directory = load_directory(None)
    la_name = directory.get(LA).name
    warm = Workload.make(events=min(bench.events, 3000), children=CHILDREN, authority_name=la_name)
    topics = Topics(namespace=f"warm{uuid.uuid4().hex[:6]}.", partitions=PARTITIONS)
    total = await seed(bench, topics, warm)
    _, fanout = await processor(bench, topics, total)
    say(f"warm-up: the processor writes {fanout:.2f} records per input")
    runs: list[Run] = []
    for n in range(rounds):
        workload = Workload.make(events=bench.events, children=CHILDREN, authority_name=la_name)
        topics = Topics(namespace=f"r{n}{uuid.uuid4().hex[:6]}.", partitions=PARTITIONS)
        total = await seed(bench, topics, workload)
        order = VARIANTS[n % len(VARIANTS) :] + VARIANTS[: n % len(VARIANTS)]
        for variant in order:
            if variant == "D":
                clock, _ = await processor(bench, topics, total)
            else:
                clock = await bare(bench, variant, topics, workload.attendances, fanout)
            runs.append(Run(variant, n + 1, clock.done, clock.per_second))
            say(f"round {n + 1}, {variant}: {clock.per_second:,.0f} events/s")
    return runs, fanout


def run(
    cache_dir: Path,
    *,
    events: int = 20000,
    rounds: int = 5,
    payload: int = 1024,
    say: Callable[[str], None] = print,
) -> tuple[list[Run], float]:
    """Start a broker of its own, measure, stop it."""
    from deploy.bench.broker import bench_broker
    from services.backbone import telemetry
    from services.backbone.keyring import generate_keyring
    from services.backbone.quiet import run_quietly

    # D as the processor runs by default: the SDK's tracer, infoshare's sampler (OTEL_*
    # variables as set), no exporter unless they name one.
    telemetry.setup_tracing("infoshare-processor")
    with bench_broker(cache_dir, say) as (root, node):
        directory = load_directory(None)
        keyring_file = generate_keyring(root / "keyring.yaml", [a.id for a in directory])
        bench = Bench(node.admin_access(), keyring_file, events, payload)
        return run_quietly(measure(bench, rounds, say))
