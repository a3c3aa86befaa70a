"""The fast-path benchmark's figures as one PNG (matplotlib, from the ``bench`` extra):
saturation throughput per variant, latency percentiles under open-loop load, and the three
scaling series."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING

from deploy.bench.fastpath import latency
from deploy.bench.fastpath.harness import VARIANTS, Results
from deploy.bench.fastpath.scaling import SERIES

if TYPE_CHECKING:
    from matplotlib.axes import Axes


COLOURS = ("#55a868", "#c44e52", "#8172b2")  # p50, p99, p99.9


def write(results: Results, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), constrained_layout=True)
    _saturation(axes[0][0], results)
    _cpu(axes[0][1], results)
    _latency(axes[0][2], results)
    for ax, name in zip(axes[1], SERIES, strict=True):
        _series(ax, results, name)
    fig.suptitle("infoshare fast path: the processor (D) beside bare Kafka (A, B, C)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _by_variant(results: Results) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for r in results.runs:
        found.setdefault(r.variant, []).append(r.per_second)
    return {v: found[v] for v in VARIANTS if v in found}


def _saturation(ax: Axes, results: Results) -> None:
    rates = _by_variant(results)
    names = list(rates)
    medians = [statistics.median(rates[v]) for v in names]
    low = [m - min(rates[v]) for m, v in zip(medians, names, strict=True)]
    high = [max(rates[v]) - m for m, v in zip(medians, names, strict=True)]
    ax.bar(names, medians, yerr=[low, high], capsize=4, color="#4c72b0")
    ax.set_title("saturation: events/s (median, min to max)")
    ax.set_ylabel("events/s")


def _cpu(ax: Axes, results: Results) -> None:
    per: dict[str, list[float]] = {}
    for r in results.runs:
        per.setdefault(r.variant, []).append(r.cpu_per_1000)
    names = [v for v in VARIANTS if v in per]
    ax.bar(names, [statistics.median(per[v]) for v in names], color="#dd8452")
    ax.set_title("CPU seconds per 1,000 events (median)")


def _latency(ax: Axes, results: Results) -> None:
    labels = [f"{f.variant}\n{f.load}" for f in results.latencies]
    finite = [q * 1000 for f in results.latencies for q in f.quantiles if not math.isinf(q)]
    cap = 1.2 * max([*finite, latency.DRAIN_S * 1000])  # where "beyond the window" is drawn
    for i, (q, colour) in enumerate(zip(latency.QUANTILES, COLOURS, strict=True)):
        values = [
            cap if math.isinf(f.quantiles[i]) else f.quantiles[i] * 1000 for f in results.latencies
        ]
        offsets = [n + (i - 1) * 0.27 for n in range(len(labels))]
        ax.bar(offsets, values, width=0.27, label=f"p{q * 100:g}", color=colour)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_title("latency, open loop (ms; top: beyond the window)")
    ax.legend(fontsize=8)


def _series(ax: Axes, results: Results, name: str) -> None:
    by = {p.config: p for p in results.scaling}
    points = [(getattr(c, name), by[c]) for c in SERIES[name] if c in by]
    xs = [x // 1024 if name == "payload" else x for x, _ in points]
    ax.plot(xs, [p.d.per_second for _, p in points], "o-", label="D")
    ax.plot(xs, [p.c.per_second for _, p in points], "s--", label="C")
    ax.set_xscale("log")
    ax.set_xticks(xs, [str(x) for x in xs])
    unit = " (KB)" if name == "payload" else ""
    ax.set_title(f"events/s by {name}{unit}")
    ax.legend(fontsize=8)
