"""The results of ``infoshare bench delivery`` and the section of docs/benchmarks.md they
make: each path beside its bare baseline from the same run, as ratios."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

from services.delivery.dispatcher import LANES

HEADING = "## Delivery"
WEBHOOK_GOAL = 2000  # deliveries/s
INBOX_GOAL = 5000  # items/s


def quantile_ms(sorted_seconds: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of sorted durations in seconds, in milliseconds."""
    if not sorted_seconds:
        return float("nan")
    rank = min(len(sorted_seconds) - 1, max(0, round(q * len(sorted_seconds)) - 1))
    return sorted_seconds[rank] * 1000


@dataclass(frozen=True)
class Webhook:
    deliveries: int
    subscriptions: int
    seconds: float  # the service: first delivery received to the last
    bare_seconds: float  # the bare httpx loop, the same bodies, the same way
    paced_rate: float  # deliveries/s of the latency run
    p50_ms: float
    p99_ms: float
    cpu_s: float  # the service's process, over the throughput run

    @property
    def per_s(self) -> float:
        return self.deliveries / self.seconds

    @property
    def bare_per_s(self) -> float:
        return self.deliveries / self.bare_seconds


@dataclass(frozen=True)
class Inbox:
    items: int
    page: int
    pages: int
    ingest_seconds: float  # published to numbered for the subscription
    seconds: float  # read and acknowledged, page by page
    bare_seconds: float
    page_bytes: int
    cpu_s: float  # the service's process, over the timed reads

    @property
    def per_s(self) -> float:
        return self.items / self.seconds

    @property
    def bare_per_s(self) -> float:
        return self.items / self.bare_seconds

    @property
    def ingest_per_s(self) -> float:
        return self.items / self.ingest_seconds


@dataclass(frozen=True)
class Results:
    webhook: Webhook
    inbox: Inbox
    answer_ms: float = 0.0  # how long the receiver took to answer each webhook


def report(r: Results) -> str:
    w, i = r.webhook, r.inbox
    lines = [
        f"{HEADING} (webhook push and pull inbox, real broker)",
        "",
        f"`infoshare bench delivery --deliveries {w.deliveries} --subscriptions "
        f"{w.subscriptions} --page {i.page}"
        + (f" --answer-ms {r.answer_ms:g}" if r.answer_ms else "")
        + f"` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs. The delivery service runs as "
        "`infoshare up` runs it (its own uvicorn process, its notification log on SQLite) "
        "against a Kafka broker of the benchmark's own, with "
        "`INFOSHARE_DELIVERY_WEBHOOK_ALLOW_HTTP_LOOPBACK=true`. Deliveries are written to "
        "`deliver.<agency>` as the processor writes them (CloudEvents by the one envelope, in "
        "transactions of 500), after a warm-up of 200 through each path not counted. The "
        "receiver is a process of its own (asyncio and h11) that checks every request's "
        "Standard Webhooks signature with the `standardwebhooks` library and parses its "
        "notification; the bare baseline sends it the same bodies, signed afresh with the "
        "same headers, from one keep-alive httpx client with as many in flight as the service "
        "has webhook subscriptions (the service pushes up to "
        f"{LANES} children's notifications at once per subscription, each child's in order; "
        f"the 1,000 children here give it all {LANES})."
        + (
            f" The receiver answers each webhook {r.answer_ms:g} ms after it has it, as a "
            "remote endpoint would, to the service and the bare loop alike."
            if r.answer_ms
            else ""
        ),
        "",
        "| path | items | service items/s | bare items/s | service / bare | goal |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| webhook push, {w.subscriptions} subscriptions (content full) | {w.deliveries} | "
        f"{w.per_s:,.0f} | {w.bare_per_s:,.0f} | {w.per_s / w.bare_per_s:.3f} | "
        f"{WEBHOOK_GOAL:,}/s: {w.per_s / WEBHOOK_GOAL:.2f} of it |",
        f"| pull inbox, pages of {i.page} (content full) | {i.items} | {i.per_s:,.0f} | "
        f"{i.bare_per_s:,.0f} | {i.per_s / i.bare_per_s:.3f} | "
        f"{INBOX_GOAL:,}/s: {i.per_s / INBOX_GOAL:.2f} of it |",
        "",
        f"- **Webhook**: {w.deliveries} deliveries from the first received to the last in "
        f"{w.seconds:.1f} s; the bare loop took {w.bare_seconds:.2f} s. Latency at "
        f"{w.paced_rate:,.0f} deliveries/s (half the throughput) for a few seconds, from the "
        f"commit of its transaction to the receiver: p50 {w.p50_ms:.0f} ms, p99 "
        f"{w.p99_ms:.0f} ms. The service's process used {w.cpu_s:.1f} CPU seconds over "
        f"the throughput run: {1000 * w.cpu_s / w.seconds:.0f} ms a second, "
        f"{1000 * w.cpu_s / w.deliveries:.2f} ms a delivery.",
        f"- **Inbox**: the recipient reads a page after its last acknowledged "
        f"(`GET /subscriptions/{{id}}/notifications?limit={i.page}`), acknowledges it "
        f"(`POST .../ack`), and so on: {i.pages} pages of about {i.page_bytes:,} bytes in "
        f"{i.seconds:.1f} s, using {i.cpu_s:.1f} CPU seconds of the service "
        f"({1000 * i.cpu_s / i.items:.3f} ms an item). The bare loop reads the same page's "
        "bytes from the receiver and acknowledges to it, doing no work. Before that, the "
        "service read and numbered "
        f"the {i.items} deliveries in {i.ingest_seconds:.1f} s ({i.ingest_per_s:,.0f}/s; "
        "polled every 50 ms through the subscription's status).",
    ]
    return "\n".join(lines) + "\n"
