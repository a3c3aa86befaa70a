"""What tracing costs the processor: the same workload decided with no trace exporter and
with every span sent to a real Zipkin, side by side in one run, and whether Zipkin got them
all. Run by ``infoshare bench telemetry``; a script that measures and reports, never a test.

Tracing can be switched on in a process only once (the OpenTelemetry API lets a tracer
provider be set once), so the run without an exporter goes first.
"""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from opentelemetry import trace
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client.parser import text_string_to_metric_families

from deploy.bench.processor import DEFAULT_BATCH, PARTITIONS, measure
from deploy.devstack.broker import BrokerNode
from deploy.devstack.observe import ZipkinServer
from deploy.devstack.observe.zipkin import VERSION as ZIPKIN_VERSION
from deploy.devstack.ports import free_listen_port
from services.backbone.directory import load_directory
from services.backbone.keyring import generate_keyring
from services.backbone.metering import service_resource
from services.backbone.quiet import run_quietly

# As `infoshare up` sets it; the queue holds what a busy second makes, so nothing is dropped.
SCHEDULE_DELAY_MS = 500
MAX_QUEUE = 20000


@dataclass(frozen=True)
class Run:
    name: str
    events: int
    seconds: float
    spans_received: int | None = None

    @property
    def per_second(self) -> float:
        return self.events / self.seconds


def run(cache_dir: Path, events: int = 20000, say: Callable[[str], None] = print) -> list[Run]:
    with tempfile.TemporaryDirectory(prefix="infoshare-bench-") as tmp:
        root = Path(tmp)
        keyring = generate_keyring(root / "keyring.yaml", [a.id for a in load_directory(None)])
        port = free_listen_port(3)
        node = BrokerNode(
            state_dir=root / "kafka", cache_dir=cache_dir, port=port, controller_port=port + 1
        )
        zipkin = ZipkinServer(
            state_dir=root / "zipkin", cache_dir=cache_dir, port=free_listen_port()
        )
        say("starting a Kafka broker and Zipkin for the benchmark")
        node.start()
        try:
            zipkin.start()
            say(f"no trace exporter: deciding {events} attendances")
            off = run_quietly(measure(node.admin_access(), keyring, events, DEFAULT_BATCH, "off."))
            runs = [Run("no exporter (spans not recorded)", off.events, off.seconds)]
            say(f"{runs[0].per_second:.0f} events/s; now every span to Zipkin")
            provider = TracerProvider(resource=service_resource("infoshare-processor"))
            provider.add_span_processor(
                BatchSpanProcessor(
                    ZipkinExporter(endpoint=zipkin.spans_url),
                    max_queue_size=MAX_QUEUE,
                    schedule_delay_millis=SCHEDULE_DELAY_MS,
                )
            )
            trace.set_tracer_provider(provider)
            before = _spans_received(zipkin)
            on = run_quietly(measure(node.admin_access(), keyring, events, DEFAULT_BATCH, "on."))
            provider.shutdown()  # flushes what is queued
            received = _spans_received(zipkin) - before
            runs.append(Run("every span to Zipkin", on.events, on.seconds, received))
            say(f"{runs[1].per_second:.0f} events/s, {received} spans received by Zipkin")
            return runs
        finally:
            zipkin.stop()
            node.stop()


def _spans_received(zipkin: ZipkinServer) -> int:
    """Spans Zipkin's collector has accepted (its own Prometheus counter)."""
    text = httpx.get(f"{zipkin.base_url}/prometheus", timeout=10.0).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "zipkin_collector_spans_total"
        )
    )


def report(runs: list[Run]) -> str:
    base = runs[0]
    lines = [
        "## What tracing costs the processor",
        "",
        f"`infoshare bench telemetry --events {base.events}` on "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, batch_max {DEFAULT_BATCH}, {PARTITIONS} partitions, a real broker and Zipkin "
        f"{ZIPKIN_VERSION}'s server. Each attendance makes a "
        "`process` span with its decision events, a `create deliver.*` span and the "
        "recipient's own linked `deliver` span; metrics are counted in both runs. Spans are "
        f"batched every {SCHEDULE_DELAY_MS} ms (queue {MAX_QUEUE}).",
        "",
        "| tracing | events | seconds | events/s | vs no exporter | spans Zipkin received |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        received = "-" if r.spans_received is None else f"{r.spans_received}"
        lines.append(
            f"| {r.name} | {r.events} | {r.seconds:.1f} | {r.per_second:.0f} | "
            f"{r.per_second / base.per_second:.2f}x | {received} |"
        )
    return "\n".join(lines) + "\n"
