"""The fast-path benchmark's section of docs/benchmarks.md: saturation throughput, CPU and
memory of every variant, the processor's ratios to each baseline taken round by round (side
by side in one round, so the machine's mood that round is in both), latency under
open-loop load, and the scaling series; with the machine, versions and settings."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence

import aiokafka

from deploy.bench.fastpath import latency
from deploy.bench.fastpath.child import BATCH_MAX
from deploy.bench.fastpath.harness import (
    CHILDREN,
    PARTITIONS,
    VARIANTS,
    Results,
    Run,
)
from deploy.bench.fastpath.scaling import BASE, SERIES
from deploy.devstack.broker.fetch import pinned_version
from services.backbone import sampling

HEADING = "## Fast path: the processor beside bare Kafka (issue 18)"
PLOT = "benchmarks-fastpath.png"  # beside the Markdown file
LATENCY_GOAL_MS = 20.0
NAMES = {
    "A": "bare at-least-once passthrough",
    "B": "bare transactional passthrough, one producer per input partition",
    "C": "B writing as many records per input as D",
    "D": "the processor (`bootstrap`), deciding",
    "E-sqlite": "D with the audit service storing its decisions in SQLite",
    "E-pg": "D with the audit service storing its decisions in PostgreSQL",
}
RATIOS = (("D", "C"), ("D", "B"), ("D", "A"), ("C", "B"), ("B", "A"))
RATIOS_E = (("E-sqlite", "D"), ("E-pg", "D"))


def ratios(runs: Sequence[Run], of: str, to: str) -> list[float]:
    """``of``/``to`` events/s within each round."""
    by_round: dict[int, dict[str, float]] = {}
    for r in runs:
        by_round.setdefault(r.round, {})[r.variant] = r.per_second
    return [v[of] / v[to] for v in by_round.values() if v.get(to) and of in v]


def _spread(values: Sequence[float], form: str) -> str:
    return " | ".join(
        format(x, form) for x in (statistics.median(values), min(values), max(values))
    )


def report(results: Results, *, plot: str | None = PLOT) -> str:
    runs = results.runs
    rounds = max(r.round for r in runs)
    lines = [
        HEADING,
        "",
        f"`infoshare bench fastpath --events {results.events} --rounds {rounds} "
        f"--payload {results.payload}` (`make bench`) on {platform.platform(terse=True)}, "
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, aiokafka {aiokafka.__version__}, one Kafka "
        f"{pinned_version()} broker of the benchmark's own (PLAINTEXT on loopback), SQLite "
        f"{sqlite3.sqlite_version} and a PostgreSQL of its own. {results.events:,} "
        f"attendances of about {results.payload:,} bytes of data (seeded), {CHILDREN:,} "
        f"children, {PARTITIONS} partitions, batches of up to {BATCH_MAX}. Every variant "
        "reads every input (the children's plans first, then their attendances) and is "
        "counted per input. Every measured run is a fresh process; the variants run in turn "
        "in each round, the order rotating, each with a fresh consumer group and fresh "
        "output topics (A to D read the round's input topics; each E its own copy). "
        f"D writes {results.fanout:.2f} records per input (deliveries, audit records, "
        "state) in a warm-up run over the same input; C writes that many on average. D is "
        f"traced as by default: the OpenTelemetry SDK with {sampling.describe()}, no "
        "exporter. Events/s and CPU count from the first batch done to the last; E is timed "
        "from D's first batch to the audit service's last commit. CPU and peak RSS are the "
        "variant's own processes (both of E's), not the broker's or the PostgreSQL "
        f"server's; a child that does nothing peaks at {results.idle_rss_mb:.0f} MB (its "
        "imports).",
        "",
        "### Saturation",
        "",
        "| variant | what | median events/s | min | max | CPU s per 1,000 events "
        "(median) | peak RSS MB (median) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in VARIANTS:
        mine = [r for r in runs if r.variant == v]
        if mine:
            lines.append(
                f"| {v} | {NAMES[v]} | {_spread([r.per_second for r in mine], ',.0f')} | "
                f"{statistics.median(r.cpu_per_1000 for r in mine):.2f} | "
                f"{statistics.median(r.peak_rss_mb for r in mine):.0f} |"
            )
    lines += ["", "| ratio, round by round | median | min | max |", "| --- | --- | --- | --- |"]
    for of, to in RATIOS + RATIOS_E:
        found = ratios(runs, of, to)
        if found:
            lines.append(f"| {of}/{to} | {_spread(found, '.3f')} |")
    lines += _latency(results)
    lines += _scaling(results)
    if plot:
        lines += ["", f"![the fast-path benchmark's figures]({plot})"]
    return "\n".join(lines) + "\n"


def _latency(results: Results) -> list[str]:
    if not results.latencies:
        return []
    lines = [
        "",
        "### Latency under open-loop load",
        "",
        f"Events sent on a fixed schedule for {latency.LOAD_S:g} s (at least "
        f"{latency.MIN_EVENTS:,} events) after {latency.WARM} "
        "warm-up events, each timed from its scheduled send to the moment its output is "
        "visible to a read_committed consumer (the bare variants' copy; the first of D's "
        "audit records, committed with its deliveries). An output not seen within "
        f"{latency.DRAIN_S:g} s of the last send's acknowledgement shows as more than that. "
        "Each row is one run. A load above the variant's median saturation throughput is "
        "marked overloaded: its queue grows for as long as the load lasts, so its "
        "latencies measure the run's length, not the variant. The generator and "
        "the watcher share one process, beside the variant's and the broker on the same "
        "CPUs: where `sent` falls short of the rate asked, the generator could not keep up "
        "and its lag is in every latency (measured from the schedule, not from the send).",
        "",
        "| variant | load | events/s asked | sent | p50 ms | p99 ms | p99.9 ms | seen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for found in results.latencies:
        p50, p99, p999 = (latency.shown_ms(q) for q in found.quantiles)
        over = " (overloaded)" if _overloaded(results, found) else ""
        lines.append(
            f"| {found.variant} | {found.load}{over} | {found.rate:,.0f} | "
            f"{found.sent_rate:,.0f} | {p50} | {p99} | {p999} | {found.seen:,}/{found.events:,} |"
        )
    lines += ["", _latency_goal(results)]
    return lines


def _overloaded(results: Results, found: latency.Latency) -> bool:
    return found.rate > results.median(found.variant)


def _latency_goal(results: Results) -> str:
    """What D adds to B's p99 at 50% of B, or why that cannot be said."""
    by = {(f.variant, f.load): f for f in results.latencies}
    d, b = by.get(("D", "50% of B")), by.get(("B", "50% of B"))
    goal = f"(goal: D adds at most {LATENCY_GOAL_MS:g} ms to B's p99 at 50% of B)"
    if d is None or b is None:
        return f"Not measured {goal}."
    if _overloaded(results, d):
        return (
            f"**D cannot hold 50% of B**: {d.rate:,.0f} events/s is "
            f"{d.rate / results.median('D'):.1f} times its saturation throughput, so it adds "
            f"no bounded latency there {goal}."
        )
    if math.isinf(d.quantiles[1]) or math.isinf(b.quantiles[1]):
        return f"A p99 lies beyond the window, so the difference is unknown {goal}."
    added = (d.quantiles[1] - b.quantiles[1]) * 1000
    return f"D adds **{added:,.1f} ms** to B's p99 at 50% of B {goal}."


def _scaling(results: Results) -> list[str]:
    if not results.scaling:
        return []
    lines = [
        "",
        "### Scaling",
        "",
        "Each configuration changes one thing from the base "
        f"({BASE.label}; generated protocols, scaling.py), one run of D then C with D's "
        "fan-out, on the same input. One run each (the base configuration's run appears in "
        "each series): read them against the spread of D in the saturation table.",
        "",
        "| series | value | D events/s | C events/s | D/C | D CPU s per 1,000 | D RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    by = {p.config: p for p in results.scaling}
    for name, configs in SERIES.items():
        for config in configs:
            p = by.get(config)
            if p is None:
                continue
            value = getattr(config, name)
            shown = f"{value // 1024} KB" if name == "payload" else f"{value:,}"
            lines.append(
                f"| {name} | {shown} | {p.d.per_second:,.0f} | {p.c.per_second:,.0f} | "
                f"{p.d.per_second / p.c.per_second:.3f} | {p.d.cpu_per_1000:.2f} | "
                f"{p.d.peak_rss_mb:.0f} |"
            )
    return lines
