"""The fast-path benchmark's own pieces hold to what they stand for: its padded attendances
are valid events of about the size asked, the same every time (seeded); its clock leaves the
first batch out of the rate and of the CPU time; ratios are taken within a round; latency
quantiles count an output never seen as slower than all; the scaling series' protocols pass
the same checks as anyone's; the report and the plot show every figure."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord

from consent.policy.load import load_protocols
from deploy.bench.fastpath import latency, scaling
from deploy.bench.fastpath.bare import Fanout
from deploy.bench.fastpath.clock import Clock
from deploy.bench.fastpath.harness import Results, Run, ScalePoint, padded
from deploy.bench.fastpath.report import ratios, report
from deploy.bench.loadgen import ED_SOURCE, Workload
from services.backbone.directory import load_directory
from services.backbone.schemas import SchemaRegistry
from services.health.fhir_mapping import ATTENDANCE


@pytest.mark.parametrize("payload", [1024, 4096, 16384])
def test_padded_attendances_are_valid_seeded_and_about_the_size_asked(payload: int) -> None:
    workload = Workload.make(events=20, children=10, authority_name="Northshire")
    first = [(t, orjson.dumps(d)) for _, t, d in padded(workload, payload, seed=7)]
    again = [(t, orjson.dumps(d)) for _, t, d in padded(workload, payload, seed=7)]
    assert first == again
    attendances = [raw for t, raw in first if t == ATTENDANCE]
    assert len(attendances) == 20 and len(first) == 25  # plans (half the children) first
    schema = SchemaRegistry.load().get(ATTENDANCE)
    for raw in attendances:
        schema.validate(orjson.loads(raw))
        assert 0.9 * payload <= len(raw) <= 1.1 * payload


def test_the_clock_counts_from_the_first_batch_done() -> None:
    clock = Clock(total=300)
    clock.tick(100)  # the first batch: when it started is not known, so it is not counted
    clock.tick(100)
    clock.tick(100)
    assert clock.finished.is_set() and clock.done == 300
    clock.first_at, clock.last_at = 10.0, 12.0
    assert clock.per_second == 100.0  # (300 - 100) / 2 s
    clock.first_cpu, clock.last_cpu = 1.0, 1.5
    assert clock.cpu_per_1000 == 2.5  # 0.5 s over 200 events


def _run(variant: str, round_: int, per_second: float) -> Run:
    return Run(variant, round_, 10, per_second, 0.5, 150.0)


def test_ratios_are_taken_within_each_round() -> None:
    runs = [_run("D", 1, 100.0), _run("C", 1, 400.0), _run("D", 2, 50.0)]
    runs += [_run("C", 2, 100.0), _run("D", 3, 70.0)]  # round 3 has no C
    assert ratios(runs, "D", "C") == [0.25, 0.5]


@pytest.mark.parametrize("mean", [1.0, 5.14, 5.5, 0.25])
def test_variant_c_writes_the_processors_fanout_on_average(mean: float) -> None:
    copies = Fanout(mean)
    counts = [copies.next() for _ in range(10_000)]
    assert set(counts) <= {int(mean), int(mean) + 1}
    assert sum(counts) == pytest.approx(mean * 10_000, abs=1)


def test_latency_quantiles_count_what_was_never_seen_as_slowest() -> None:
    seen = [i / 1000 for i in range(1, 991)]  # 990 outputs seen, 1 ms to 990 ms
    found = latency.summarise("D", "50% of B", 1000.0, seen, 10, 990.0)
    p50, p99, p999 = found.quantiles
    assert p50 == 0.5 and p99 == 0.99  # the 990th of 1,000 is the last seen
    assert math.isinf(p999)  # the 999th of 1,000 was never seen
    assert latency.shown_ms(p999) == ">10,000" and latency.shown_ms(p99) == "990.0"
    assert (found.events, found.seen) == (1000, 990)


def test_latency_finds_the_event_in_a_copy_and_in_an_audit_record() -> None:
    copy = ConsumerRecord(
        "t", 0, 0, 0, 0, b"k", b"v", None, 1, 1, [("ce_type", b"x"), ("ce_id", b"e-1")]
    )
    audit = ConsumerRecord("t", 0, 0, 0, 0, None, b'{"event_id":"e-2"}', None, 1, 1, [])
    assert latency.copied_id(copy) == "e-1" and latency.decided_id(audit) == "e-2"
    assert latency.copied_id(audit) is None


def test_every_scaling_configuration_loads_through_the_protocol_checks(tmp_path: Path) -> None:
    directory = load_directory(scaling.agencies_file(tmp_path))
    schemas = SchemaRegistry.load()
    for config in scaling.configs():
        loaded = load_protocols(
            scaling.protocols_dir(tmp_path, config), directory=directory, schemas=schemas
        )
        assert len(loaded.protocols) == config.protocols
        covering = loaded.covering(ED_SOURCE, ATTENDANCE)
        assert {r.agency for p in covering for r in p.recipients} == {
            scaling.recipient(i) for i in range(config.recipients)
        }


def _results() -> Results:
    runs = [
        Run(v, n, 10, rate * n, 0.5, 150.0)
        for n in (1, 2)
        for v, rate in (("A", 9000.0), ("B", 8000.0), ("C", 4000.0), ("D", 1000.0))
    ] + [Run("E-sqlite", 1, 10, 800.0, 1.0, 300.0), Run("E-pg", 1, 10, 700.0, 1.0, 300.0)]
    lat = [
        latency.summarise("B", "50% of B", 4000.0, [0.01] * 100, 0, 4000.0),
        latency.summarise("D", "50% of B", 4000.0, [0.5] * 50, 50, 4000.0),
    ]
    points = [
        ScalePoint(c, Run("D", 1, 10, 1000.0, 0.5, 150.0), Run("C", 1, 10, 4000.0, 0.2, 150.0))
        for c in scaling.configs()
    ]
    return Results(runs, 5.2, lat, points, 10000, 1024)


def test_the_report_shows_every_variant_ratio_latency_and_series() -> None:
    text = report(_results(), plot="plot.png")
    for variant in ("| A |", "| B |", "| C |", "| D |", "| E-sqlite |", "| E-pg |"):
        assert variant in text
    assert "| D/C | 0.250 | 0.250 | 0.250 |" in text
    assert "| E-pg/D | 0.700 |" in text
    assert "**D cannot hold 50% of B**: 4,000 events/s is 2.7 times its saturation" in text
    assert "| D | 50% of B (overloaded) |" in text and "| B | 50% of B |" in text
    assert "| recipients | 10 |" in text and "| payload | 16 KB |" in text
    assert "| protocols | 1,000 |" in text and "![" in text


def test_the_latency_goal_is_read_only_where_d_keeps_up() -> None:
    results = _results()
    held = [
        latency.summarise("B", "50% of B", 1000.0, [0.010] * 100, 0, 1000.0),
        latency.summarise("D", "50% of B", 1000.0, [0.025] * 100, 0, 1000.0),
    ]
    text = report(dataclasses.replace(results, latencies=held), plot=None)
    assert "D adds **15.0 ms** to B's p99 at 50% of B" in text and "![" not in text


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from deploy.bench.fastpath import plot

    written = plot.write(_results(), tmp_path / "plot.png")
    assert written.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
