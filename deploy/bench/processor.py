"""Benchmark of the consent-and-policy processor on a real broker: attendances already on
the source topic, decided exactly once (one transaction per input partition and batch),
timed until every input is processed, for batch sizes side by side. Run by
``infoshare bench processor``; a script that measures and reports, never a test."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from consent.processor.main import bootstrap
from consent.processor.settings import ProcessorSettings
from deploy.bench.broker import bench_broker
from deploy.bench.loadgen import LA, Workload, publish
from services.backbone import kafka
from services.backbone.directory import load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import generate_keyring, load_keyring
from services.backbone.quiet import run_quietly
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics

PARTITIONS = 6
DEFAULT_BATCH = 500


@dataclass(frozen=True)
class Result:
    batch_max: int
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


async def measure(
    access: KafkaAccess,
    keyring_file: Path,
    events: int,
    batch_max: int,
    namespace: str,
    *,
    replication: int = 1,
    run_as: Callable[[Topics], KafkaAccess] | None = None,
) -> Result:
    """Publish ``events`` attendances as ``access`` (an administrator), then time one
    processor deciding them all; it runs as ``run_as(topics)`` (a principal of its own,
    under its ACLs) if given, else as ``access``."""
    directory = load_directory(None)
    topics = Topics(namespace=namespace, partitions=PARTITIONS, replication=replication)
    await kafka.ensure_topics(access, topics.all_specs(directory))
    processor_access = access if run_as is None else run_as(topics)
    workload = Workload.make(events=events, children=1000, authority_name=directory.get(LA).name)
    await publish(
        workload.attendance_events(),
        access=access,
        topics=topics,
        keyring=load_keyring(keyring_file),
        schemas=SchemaRegistry.load(),
    )
    settings = ProcessorSettings(
        **processor_access.settings(),
        topic_namespace=namespace,
        topic_replication=replication,
        topic_partitions=PARTITIONS,
        keyring_file=keyring_file,
        batch_max=batch_max,
    )
    processor = bootstrap(settings)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(processor.run(stop))
    while processor.processed < workload.attendances:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the processor stopped before the end")
        await asyncio.sleep(0.05)
    seconds = time.perf_counter() - started
    stop.set()
    await task
    return Result(batch_max, workload.attendances, seconds)


def run(
    cache_dir: Path,
    events: int = 20000,
    batch_sizes: Sequence[int] = (100, DEFAULT_BATCH),
    say: Callable[[str], None] = print,
) -> list[Result]:
    """Start a broker of its own, measure each batch size on topics of its own, stop."""
    with bench_broker(cache_dir, say) as (root, node):
        directory = load_directory(None)
        keyring_file = generate_keyring(root / "keyring.yaml", [a.id for a in directory])
        results = []
        for size in batch_sizes:
            say(f"batch_max {size}: publishing {events} attendances, then processing")
            result = run_quietly(
                measure(node.admin_access(), keyring_file, events, size, f"bench{size}.")
            )
            say(f"batch_max {size}: {result.per_second:.0f} events/s")
            results.append(result)
        return results


def report(results: Sequence[Result]) -> str:
    base = next((r for r in results if r.batch_max == DEFAULT_BATCH), results[-1])
    cpus = os.cpu_count()
    lines = [
        "## Processor throughput (real broker, exactly once)",
        "",
        f"`infoshare bench processor --events {base.events}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {cpus} CPUs, one "
        f"processor, {PARTITIONS} partitions, 1,000 children. The attendances wait on the source "
        "topic; each is decided under the three protocols that cover it (one delivery, to "
        "public health; three audit records) and written with its duplicate-memory record in "
        "one transaction per input partition and batch, consumer offsets included.",
        "",
        "| batch_max | events | seconds | events/s | vs default |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r.batch_max} | {r.events} | {r.seconds:.1f} | {r.per_second:.0f} | "
            f"{r.per_second / base.per_second:.2f}x |"
        )
    return "\n".join(lines) + "\n"
