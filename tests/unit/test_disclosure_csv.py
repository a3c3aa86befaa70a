"""The disclosure report as CSV: a cell that a spreadsheet would run as a formula comes out
as text (OWASP CSV injection: a leading ``'``), other cells as they were, and a cell
holding a line break stays one cell of one row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest

from services.audit.disclosures import COLUMNS, as_csv

PAYLOADS = ['=HYPERLINK("http://x")', "+1", "-1", "@SUM(1)", "\t=1", "\r=1"]


def _entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {c: None for c in COLUMNS}
    base |= {
        "recorded_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        "decision": "shared",
        "recipient": "la-northshire",
        "protocol_version": 3,
        "fields_disclosed": ["subject.nhs_number", "plan.category"],
        "reason": "the protocol allows it",
        "audit_id": "6f0b1c1e-8d3a-4b8e-9b1a-0c5e2f7d9a11",
    }
    return base | fields


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize(
    "column", ["reason", "override_role", "lawful_basis", "event_type", "fields_withheld"]
)
def test_a_formula_comes_out_as_text(column: str, payload: str) -> None:
    value: Any = [payload, "x"] if column == "fields_withheld" else payload
    (row,) = _rows(as_csv([_entry(**{column: value})]))
    assert row[column].startswith("'" + payload)
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


def test_other_cells_are_as_they_were() -> None:
    (row,) = _rows(as_csv([_entry(override_role="ED consultant", reason="a - b = c")]))
    assert row["recorded_at"] == "2026-11-20T09:00:00Z"
    assert row["recipient"] == "la-northshire" and row["protocol_version"] == "3"
    assert row["fields_disclosed"] == "subject.nhs_number; plan.category"
    assert row["override_role"] == "ED consultant" and row["reason"] == "a - b = c"
    assert row["occurred_at"] == ""


def test_a_line_break_in_a_cell_keeps_to_its_row() -> None:
    text = as_csv([_entry(reason="one\rtwo"), _entry(reason="three\nfour")])
    assert [r["reason"] for r in _rows(text)] == ["one\rtwo", "three\nfour"]
