"""The fast-path benchmark's own pieces hold to what they stand for: its padded attendances
are valid events of about the size asked, the same every time (seeded); its clock leaves the
first batch out of the rate; ratios are taken within a round."""

from __future__ import annotations

import orjson
import pytest

from deploy.bench.fastpath.bare import Clock, Fanout
from deploy.bench.fastpath.harness import Run, padded
from deploy.bench.fastpath.report import ratios
from deploy.bench.loadgen import Workload
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


def test_ratios_are_taken_within_each_round() -> None:
    runs = [Run("D", 1, 10, 100.0), Run("C", 1, 10, 400.0), Run("D", 2, 10, 50.0)]
    runs += [Run("C", 2, 10, 100.0), Run("D", 3, 10, 70.0)]  # round 3 has no C
    assert ratios(runs, "D", "C") == [0.25, 0.5]


@pytest.mark.parametrize("mean", [1.0, 5.14, 5.5, 0.25])
def test_variant_c_writes_the_processors_fanout_on_average(mean: float) -> None:
    copies = Fanout(mean)
    counts = [copies.next() for _ in range(10_000)]
    assert set(counts) <= {int(mean), int(mean) + 1}
    assert sum(counts) == pytest.approx(mean * 10_000, abs=1)
