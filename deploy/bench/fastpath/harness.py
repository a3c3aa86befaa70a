"""``infoshare bench fastpath`` (``make bench``): the processor (D) beside the bare baselines
(A, B, C: bare.py) and with the audit service storing its decisions (E, on SQLite and on
PostgreSQL), on one broker of its own; every measured run in a fresh process (child.py).

The input is seeded: 1,000 children, half of them on a protection plan (their plans are
published first), attending the emergency department round-robin, every attendance padded
with seeded clinical notes to about ``payload`` bytes of data, with seeded event ids, on 6
partitions. Under the shipped protocols each attendance goes to three recipients with
different rules: the authority holding a plan (identified, on a condition), public health
(pseudonymised, generalised, tokenised), and one more withheld by its condition.

Three parts, in this order:

1. **Saturation**, in rounds: each round seeds fresh namespaces, then runs every variant in
   turn (the order rotating), each on its own consumer group and output topics. C writes as
   many records per input as D did in a warm-up run.
2. **Latency** under open-loop load (latency.py) at 50% and 80% of B's median saturation
   throughput, for B, C and D, and for D at half of its own.
3. **Scaling** (scaling.py): D, and C beside it, with 1, 3 and 10 recipients, 1, 4 and
   16 KB payloads, and 10 and 1,000 protocols.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deploy.bench.fastpath import latency, scaling, spawn
from deploy.bench.fastpath.child import AUDIT, BATCH_MAX, IDLE, Job, Measured
from deploy.bench.loadgen import (
    ED_SOURCE,
    LA,
    Child,
    Sent,
    Workload,
    encoded,
    publish_again,
)
from services.backbone import kafka
from services.backbone.directory import load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import load_keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics, TopicSpec

PARTITIONS = 6
CHILDREN = 1000
SEED = 20261205
WORDS = ["seen", "triage", "observed", "reported", "discharged", "referred", "review", "advice"]
BACKENDS = {"E-sqlite": "sqlite", "E-pg": "postgresql"}
VARIANTS = ("A", "B", "C", "D", *BACKENDS)
LOADS = ((0.5, "B"), (0.8, "B"))  # open-loop rates, as shares of a variant's saturation
LATENCY_VARIANTS = ("B", "C", "D")


@dataclass(frozen=True)
class Bench:
    access: KafkaAccess
    keyring_file: Path
    root: Path
    events: int
    payload: int
    database: Callable[[str, str], str]  # (backend, name) -> a new database's URL


@dataclass(frozen=True)
class Run:
    variant: str
    round: int
    events: int
    per_second: float
    cpu_per_1000: float  # CPU seconds per 1,000 inputs, every process of the variant
    peak_rss_mb: float  # peak resident memory, every process of the variant together


@dataclass(frozen=True)
class ScalePoint:
    config: scaling.Config
    d: Run
    c: Run


@dataclass(frozen=True)
class Results:
    runs: list[Run]
    fanout: float
    latencies: list[latency.Latency]
    scaling: list[ScalePoint]
    events: int
    payload: int
    idle_rss_mb: float = 0.0  # a child that does nothing: its imports alone

    def median(self, variant: str) -> float:
        return statistics.median(r.per_second for r in self.runs if r.variant == variant)


def padded(workload: Workload, payload: int, seed: int) -> Iterator[tuple[Child, str, Any]]:
    """The workload's plans, then its attendances, each attendance's data padded with
    seeded notes to about ``payload`` bytes."""
    rng = random.Random(seed)  # noqa: S311  (seeded filler, not a secret)
    yield from workload.plan_events()
    for child, event_type, data in workload.attendance_events():
        notes: list[str] = []
        room = max(0, payload - 430)  # the attendance without notes is about 430 bytes
        written = 0
        while written < room:
            word = rng.choice(WORDS)
            notes.append(word)
            written += len(word) + 1
        data["attendance"]["clinical_notes"] = " ".join(notes)[:room]
        yield child, event_type, data


def _workload(events: int) -> Workload:
    name = load_directory(None).get(LA).name
    return Workload.make(events=events, children=CHILDREN, authority_name=name)


def _ids() -> Callable[[], str]:
    rng = random.Random(SEED)  # noqa: S311  (seeded event ids, not secrets)
    return lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))


def prepare(bench: Bench, events: int, payload: int) -> list[Sent]:
    """The seeded input, encoded once (as the agency services publish it) for every run
    that reads it, on topics without a namespace."""
    return list(
        encoded(
            padded(_workload(events), payload, SEED),
            topics=Topics(namespace="", partitions=PARTITIONS),
            keyring=load_keyring(bench.keyring_file),
            schemas=SchemaRegistry.load(),
            ids=_ids(),
        )
    )


async def seed(
    bench: Bench, topics: Topics, records: list[Sent], *, agencies: Path | None = None
) -> int:
    """Create the namespace's topics and publish ``records`` there; how many."""
    await kafka.ensure_topics(bench.access, topics.all_specs(load_directory(agencies)))
    return await publish_again(_in(topics, records), access=bench.access)


def _in(topics: Topics, records: list[Sent]) -> list[Sent]:
    """``records`` (made on topics without a namespace) addressed to ``topics``'."""
    return [replace(r, topic=topics.namespace + r.topic) for r in records]


def _namespace(prefix: str) -> Topics:
    return Topics(namespace=f"{prefix}{uuid.uuid4().hex[:6]}.", partitions=PARTITIONS)


def _job(bench: Bench, variant: str, topics: Topics, **more: Any) -> Job:
    return Job(
        variant,
        bench.access,
        bench.keyring_file,
        topics.namespace,
        PARTITIONS,
        batch_max=BATCH_MAX,
        **more,
    )


async def _sink(bench: Bench, topics: Topics, variant: str) -> str:
    sink = f"{topics.namespace}bare.{variant}.{uuid.uuid4().hex[:8]}"
    await kafka.ensure_topics(bench.access, [TopicSpec(name=sink, partitions=PARTITIONS)])
    return sink


def _run(measured: Measured, round_: int) -> Run:
    return Run(
        measured.variant,
        round_,
        measured.done,
        measured.per_second,
        measured.cpu_per_1000,
        measured.peak_rss_kb / 1024,
    )


async def _bare_job(
    bench: Bench, variant: str, topics: Topics, fanout: float, total: int = 0
) -> Job:
    """Variant A, B or C, reading every input of ``topics``' namespace as D does (the
    plans and the attendances), writing to a sink of its own."""
    return _job(
        bench,
        variant,
        topics,
        total=total,
        sources=(topics.source(LA), topics.source(ED_SOURCE)),
        sink=await _sink(bench, topics, variant),
        fanout=fanout if variant == "C" else 1.0,
    )


async def bare(
    bench: Bench, variant: str, topics: Topics, total: int, fanout: float, round_: int
) -> Run:
    """Variant A, B or C until it has copied ``total`` inputs."""
    return _run(spawn.run(await _bare_job(bench, variant, topics, fanout, total)), round_)


def processor(bench: Bench, topics: Topics, total: int, **more: Any) -> Measured:
    """Variant D on ``topics``."""
    return spawn.run(_job(bench, "D", topics, total=total, **more))


def with_audit(bench: Bench, variant: str, topics: Topics, total: int, round_: int) -> Run:
    """Variant E: the processor and the audit service's ingester, each in a process of its
    own, timed from the processor's first batch to the ingester's last commit; the CPU and
    memory of both (not the PostgreSQL server's)."""
    url = bench.database(BACKENDS[variant], f"e{round_}{uuid.uuid4().hex[:6]}")
    storing = spawn.Running(_job(bench, AUDIT, topics, database_url=url))
    try:
        d = processor(bench, topics, total)
        if not d.audits:
            raise RuntimeError("the processor wrote no audit records")
    except BaseException:
        storing.abandon()
        raise
    storing.expect(d.audits)
    stored = storing.result()
    counted = d.done - d.first_done
    seconds = stored.last_wall - d.first_wall
    return Run(
        variant,
        round_,
        d.done,
        counted / seconds if seconds > 0 else 0.0,
        (d.cpu_s + stored.cpu_s) * 1000 / max(1, counted),
        (d.peak_rss_kb + stored.peak_rss_kb) / 1024,
    )


async def saturation(
    bench: Bench, rounds: int, say: Callable[[str], None]
) -> tuple[list[Run], float]:
    """A warm-up run of D (which also gives C's fan-out), then ``rounds`` rounds of every
    variant; the runs, and the records D writes per input."""
    records = prepare(bench, bench.events, bench.payload)
    warm = _namespace("warm")
    d = processor(bench, warm, await seed(bench, warm, records))  # the same mix as measured
    fanout = d.written / max(1, d.done)
    say(f"warm-up: the processor writes {fanout:.2f} records per input")
    runs: list[Run] = []
    for n in range(rounds):
        spaces = {v: _namespace(f"r{n}") for v in ("main", *BACKENDS)}
        totals = {name: await seed(bench, t, records) for name, t in spaces.items()}
        order = VARIANTS[n % len(VARIANTS) :] + VARIANTS[: n % len(VARIANTS)]
        for variant in order:
            if variant == "D":
                run = _run(processor(bench, spaces["main"], totals["main"]), n + 1)
            elif variant in BACKENDS:
                run = with_audit(bench, variant, spaces[variant], totals[variant], n + 1)
            else:
                run = await bare(bench, variant, spaces["main"], totals["main"], fanout, n + 1)
            runs.append(run)
            say(
                f"round {n + 1}, {variant}: {run.per_second:,.0f} events/s, "
                f"{run.cpu_per_1000:.2f} CPU s per 1,000, {run.peak_rss_mb:.0f} MB"
            )
    return runs, fanout


async def latencies(
    bench: Bench, rates: dict[str, float], fanout: float, say: Callable[[str], None]
) -> list[latency.Latency]:
    """Open-loop runs: every LATENCY_VARIANT at each LOAD of B, and D at half its own."""
    plan = [
        (v, f"{share:.0%} of {of}", share * rates[of])
        for v in LATENCY_VARIANTS
        for share, of in LOADS
    ]
    plan.append(("D", "50% of D", 0.5 * rates["D"]))
    most = max(rate for _, _, rate in plan)
    made = prepare(bench, latency.measured_count(most) + latency.WARM + CHILDREN, bench.payload)
    plans = [r for r in made if r.topic.endswith(LA)]
    attendances = [r for r in made if r.topic.endswith(ED_SOURCE)]
    found: list[latency.Latency] = []
    for variant, load, rate in plan:
        found.append(await _open_loop(bench, variant, load, rate, fanout, plans, attendances))
        got = found[-1]
        shown = " / ".join(latency.shown_ms(q) for q in got.quantiles)
        say(f"latency, {variant} at {load} ({rate:,.0f}/s): p50/p99/p99.9 {shown} ms")
    return found


async def _open_loop(
    bench: Bench,
    variant: str,
    load: str,
    rate: float,
    fanout: float,
    plans: list[Sent],
    attendances: list[Sent],
) -> latency.Latency:
    topics = _namespace("lat")
    await kafka.ensure_topics(bench.access, topics.all_specs(load_directory(None)))
    count = latency.WARM + latency.measured_count(rate)
    here = _in(topics, attendances[:count])
    await publish_again(
        [replace(r, topic=topics.namespace + r.topic) for r in plans], access=bench.access
    )
    if variant == "D":
        job, watch, event_id = _job(bench, "D", topics), topics.audit, latency.decided_id
    else:
        job = await _bare_job(bench, variant, topics, fanout)
        watch, event_id = job.sink, latency.copied_id
    running = spawn.Running(job)
    try:
        seen, missing, sent_rate = await latency.open_loop(
            bench.access,
            here,
            rate=rate,
            watch=watch,
            event_id=event_id,
            group=f"{topics.namespace}watch",
        )
    except BaseException:
        running.abandon()
        raise
    running.stop()
    running.result()
    return latency.summarise(variant, load, rate, seen, missing, sent_rate)


async def scaled(bench: Bench, say: Callable[[str], None]) -> list[ScalePoint]:
    """D, then C with D's fan-out, in every configuration of the scaling series."""
    agencies = scaling.agencies_file(bench.root)
    points: list[ScalePoint] = []
    inputs: dict[int, list[Sent]] = {}
    for config in scaling.configs():
        topics = _namespace("s")
        if config.payload not in inputs:
            inputs[config.payload] = prepare(bench, bench.events, config.payload)
        records = inputs[config.payload]
        total = await seed(bench, topics, records, agencies=agencies)
        protocols = scaling.protocols_dir(bench.root, config)
        d = processor(bench, topics, total, protocols_dir=protocols, agencies_file=agencies)
        c = await bare(bench, "C", topics, total, d.written / max(1, d.done), 1)
        points.append(ScalePoint(config, _run(d, 1), c))
        say(
            f"scaling, {config.label}: D {d.per_second:,.0f} events/s, C {c.per_second:,.0f}"
            f" (D/C {d.per_second / c.per_second:.3f})"
        )
    return points


async def measure(bench: Bench, rounds: int, say: Callable[[str], None]) -> Results:
    idle = spawn.run(_job(bench, IDLE, _namespace("idle")))
    runs, fanout = await saturation(bench, rounds, say)
    results = Results(runs, fanout, [], [], bench.events, bench.payload, idle.peak_rss_kb / 1024)
    rates = {v: results.median(v) for v in ("B", "D")}
    found = await latencies(bench, rates, fanout, say)
    points = await scaled(bench, say)
    return replace(results, latencies=found, scaling=points)


def run(
    cache_dir: Path,
    *,
    events: int = 10000,
    rounds: int = 5,
    payload: int = 1024,
    say: Callable[[str], None] = print,
) -> Results:
    """Start a broker and a PostgreSQL of its own, measure, stop them."""
    from deploy.bench.audit import databases
    from deploy.bench.broker import bench_broker
    from services.backbone.keyring import generate_keyring
    from services.backbone.quiet import run_quietly

    started = time.monotonic()

    def said(message: str) -> None:
        say(f"[{time.monotonic() - started:5.0f} s] {message}")

    with bench_broker(cache_dir, said) as (root, node), databases(root, said) as database:
        every = load_directory(scaling.agencies_file(root))
        keyring_file = generate_keyring(root / "keyring.yaml", [a.id for a in every])
        bench = Bench(node.admin_access(), keyring_file, root, events, payload, database)
        return run_quietly(measure(bench, rounds, said))
