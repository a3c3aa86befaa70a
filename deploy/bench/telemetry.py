"""What tracing costs the processor: the same workload decided with no tracing at all, with
the default sampling (a tenth of traces recorded, sampling.py) and with every span recorded,
each exporting to a real Zipkin; side by side, interleaved over rounds, each run in a fresh
process (a process can set its tracer provider once). Run by ``infoshare bench telemetry``;
a script that measures and reports, never a test.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.bench.processor import DEFAULT_BATCH, PARTITIONS, measure
from deploy.devstack.broker import BrokerNode
from deploy.devstack.observe import ZipkinServer
from deploy.devstack.observe.zipkin import VERSION as ZIPKIN_VERSION
from deploy.devstack.ports import free_listen_port
from services.backbone import sampling, telemetry
from services.backbone.directory import load_directory
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import generate_keyring
from services.backbone.quiet import run_quietly

# As `infoshare up` sets it; the queue holds what a busy second makes, so nothing is dropped.
SCHEDULE_DELAY_MS = 500
MAX_QUEUE = 20000
GOAL = 0.10  # the default sampling costs at most a tenth of the throughput (issue 18)
NONE, DEFAULT, EVERY = "no tracing", f"default sampling ({sampling.DEFAULT_RATIO:g})", "every span"
VARIANTS = {
    NONE: {"OTEL_SDK_DISABLED": "true"},
    DEFAULT: {},
    EVERY: {"OTEL_TRACES_SAMPLER": "always_on"},  # the parent's decision overruled
}


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float
    spans_received: int | None = None

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def _one(
    name: str, access: KafkaAccess, keyring: Path, events: int, namespace: str, spans_url: str
) -> tuple[int, float]:
    """In a fresh process: tracing as ``name`` says, then the processor deciding."""
    os.environ.update(
        {
            "OTEL_TRACES_EXPORTER": "zipkin",
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": spans_url,
            "OTEL_BSP_SCHEDULE_DELAY": str(SCHEDULE_DELAY_MS),
            "OTEL_BSP_MAX_QUEUE_SIZE": str(MAX_QUEUE),
            **VARIANTS[name],
        }
    )
    provider = telemetry.setup_tracing("infoshare-processor")
    result = run_quietly(measure(access, keyring, events, DEFAULT_BATCH, namespace))
    provider.shutdown()  # flushes what is queued
    return result.events, result.seconds


def run(
    cache_dir: Path, events: int = 20000, say: Callable[[str], None] = print, rounds: int = 3
) -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-") as tmp:
        root = Path(tmp)
        keyring = generate_keyring(root / "keyring.yaml", [a.id for a in load_directory(None)])
        port = free_listen_port(3)
        node = BrokerNode(
            state_dir=root / "kafka", cache_dir=cache_dir, port=port, controller_port=port + 1
        )
        # Spans are counted by Zipkin's collector; kept, they would fill its heap by the
        # third round (a JVM in garbage collection answers nothing).
        zipkin = ZipkinServer(
            state_dir=root / "zipkin",
            cache_dir=cache_dir,
            port=free_listen_port(),
            max_spans=20_000,
        )
        say("starting a Kafka broker and Zipkin for the benchmark")
        node.start()
        try:
            zipkin.start()
            context = multiprocessing.get_context("spawn")
            runs: list[Run] = []
            for round_ in range(rounds):
                names = list(VARIANTS)
                names = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in names:
                    before = _spans_received(zipkin)
                    with context.Pool(1) as pool:
                        done, seconds = pool.apply(
                            _one,
                            (
                                name,
                                node.admin_access(),
                                keyring,
                                events,
                                f"t{round_}{len(runs)}.",
                                zipkin.spans_url,
                            ),
                        )
                    received = _wait_spans(zipkin, before)
                    runs.append(Run(name, done, seconds, received))
                    say(f"round {round_ + 1}, {name}: {done / seconds:,.0f} events/s")
            return runs
        finally:
            zipkin.stop()
            node.stop()


def _wait_spans(zipkin: ZipkinServer, before: int) -> int:
    """Spans Zipkin received since ``before``, once its count has stopped growing."""
    last = -1
    now = _spans_received(zipkin)
    while now != last:
        last = now
        time.sleep(1.0)  # a benchmark polling Zipkin, not a test
        now = _spans_received(zipkin)
    return now - before


def _spans_received(zipkin: ZipkinServer) -> int:
    """Spans Zipkin's collector has accepted (its own Prometheus counter). A Zipkin busy
    taking in a flood of spans may be slow to answer: asked again, a few times."""
    for attempt in range(5):
        try:
            text = httpx.get(f"{zipkin.base_url}/prometheus", timeout=30.0).text
            break
        except httpx.TimeoutException:
            if attempt == 4:
                raise
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "zipkin_collector_spans_total"
        )
    )


def report(runs: list[Run]) -> str:
    by: dict[str, list[Run]] = {}
    for r in runs:
        by.setdefault(r.name, []).append(r)
    median = {name: statistics.median(r.per_second for r in rs) for name, rs in by.items()}
    cost = 1 - median[DEFAULT] / median[NONE]
    events = runs[0].events
    lines = [
        "## What tracing costs the processor",
        "",
        f"`infoshare bench telemetry --events {events}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, batch_max {DEFAULT_BATCH}, {PARTITIONS} partitions, a real broker and Zipkin "
        f"{ZIPKIN_VERSION}'s server; {len(by[NONE])} rounds, the variants in turn, each in a"
        " fresh process. A recorded attendance makes a `process` span with its decision"
        " events, a `create deliver.*` span and the recipient's own linked `deliver` span."
        f" Spans are batched every {SCHEDULE_DELAY_MS} ms (queue {MAX_QUEUE}).",
        "",
        "| tracing | median events/s | min | max | vs no tracing | spans Zipkin received |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, rs in by.items():
        rates = [r.per_second for r in rs]
        spans = "/".join(str(r.spans_received) for r in rs)
        lines.append(
            f"| {name} | {median[name]:,.0f} | {min(rates):,.0f} | {max(rates):,.0f} | "
            f"{median[name] / median[NONE]:.2f}x | {spans} |"
        )
    lines += [
        "",
        f"The default sampling costs **{cost:.1%}** of the throughput with no tracing (goal: at"
        f" most {GOAL:.0%}). Every decision's audit record keeps its trace id either way.",
    ]
    return "\n".join(lines) + "\n"
