"""The audit benchmark's shortcuts hold to what they stand for: rows copied from a template
are the records it claims, and its children's NHS numbers are valid and distinct."""

from __future__ import annotations

from datetime import UTC, datetime

from deploy.bench.audit_record import bench_record
from deploy.bench.audit_report import _row, nhs_number
from services.backbone.identifiers import is_valid_nhs_number


def test_a_copied_row_is_the_record_it_stands_for() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    template = bench_record(0, now, "").model_dump()
    for i in (0, 1, 2, 3, 12345):
        assert _row(template, i, f"key-{i}") == bench_record(i, now, f"key-{i}").model_dump()
    first = _row(template, 1, "k")
    first["fields_disclosed"].append("x")  # rows never share a list
    assert _row(template, 1, "k")["fields_disclosed"] == template["fields_disclosed"]


def test_the_benchmarks_children_have_valid_distinct_nhs_numbers() -> None:
    numbers = [nhs_number(n) for n in range(5000)]
    assert all(is_valid_nhs_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)
