"""The fast-path benchmark's section of docs/benchmarks.md: every variant's events/s over
the rounds, and the processor's ratios to each baseline taken round by round (side by side
in one round, so the machine's mood that round is in both)."""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence

import aiokafka

from deploy.bench.fastpath.harness import BATCH_MAX, CHILDREN, PARTITIONS, VARIANTS, Run
from services.backbone import sampling

HEADING = "## Fast path: the processor beside bare Kafka (issue 18)"
NAMES = {
    "A": "bare at-least-once passthrough",
    "B": "bare transactional passthrough, one producer per input partition",
    "C": "B writing as many records per input as D",
    "D": "the processor (`bootstrap`), deciding",
}


def ratios(runs: Sequence[Run], of: str, to: str) -> list[float]:
    """``of``/``to`` events/s within each round."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.variant] = r.per_second
    return [v[of] / v[to] for v in by_round.values() if v.get(to) and of in v]


def report(runs: Sequence[Run], *, events: int, payload: int, fanout: float) -> str:
    rounds = max(r.round for r in runs)
    lines = [
        HEADING,
        "",
        f"`infoshare bench fastpath --events {events} --rounds {rounds} --payload {payload}` "
        f"on {platform.python_implementation()} {platform.python_version()}, aiokafka "
        f"{aiokafka.__version__}, {os.cpu_count()} CPUs, one broker of the benchmark's own. "
        f"{events:,} attendances of about {payload:,} bytes of data (seeded), {CHILDREN:,} "
        f"children, {PARTITIONS} partitions, batches of up to {BATCH_MAX}. The variants run "
        "in turn in each round, the order rotating, each on a fresh consumer group and fresh "
        f"output topics. D writes {fanout:.2f} records per input (deliveries, audit records, "
        "state) in a warm-up run; C writes that many on average. D is traced as by default: "
        f"the OpenTelemetry SDK with {sampling.describe()}, no exporter. Events/s counts from "
        "the first batch done to the last.",
        "",
        "| variant | what | median events/s | min | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for v in VARIANTS:
        rates = [r.per_second for r in runs if r.variant == v]
        if rates:
            lines.append(
                f"| {v} | {NAMES[v]} | {statistics.median(rates):,.0f} | {min(rates):,.0f} | "
                f"{max(rates):,.0f} |"
            )
    lines += ["", "| ratio, round by round | median | min | max |", "| --- | --- | --- | --- |"]
    for of, to in (("D", "C"), ("D", "B"), ("D", "A"), ("C", "B"), ("B", "A")):
        found = ratios(runs, of, to)
        if found:
            lines.append(
                f"| {of}/{to} | {statistics.median(found):.3f} | {min(found):.3f} | "
                f"{max(found):.3f} |"
            )
    return "\n".join(lines) + "\n"
