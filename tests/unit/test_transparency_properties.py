"""Properties of the transparency report that must hold for every trail: no subject key,
audit id, person or free-text reason reaches any output; every published count is 0, at
least the minimum, or suppressed; and no suppressed count can be worked out from what is
published (the output does not change when a suppressed count does)."""

from __future__ import annotations

import csv
import io
import re
import string
from collections.abc import Mapping
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.audit.transparency import Period, Report, Section, build, count, section_of
from services.audit.transparency_render import as_csv, as_html, as_markdown

PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
MADE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

# What the report may name: a small vocabulary, so cells fill up and collide.


def _optional(values: list[object]) -> st.SearchStrategy[object]:
    return st.none() | st.sampled_from(values)


published = st.fixed_dictionaries(
    {
        "decision": st.sampled_from(
            [
                "shared",
                "withheld",
                "suppressed",
                "re_identified",
                "accessed",
                "recorded",
                "dead_lettered",
                "undeliverable",
                "recalled",
            ]
        ),
        "action": st.sampled_from(
            [
                "disclose",
                "replay",
                "suppress_duplicate",
                "re_identify",
                "audit_access",
                "override_review",
                "recall",
                "consent_record",
                "dead_letter",
            ]
        ),
        "reason_code": st.sampled_from(
            [
                "shared.protocol_allows",
                "shared.safeguarding_override",
                "withheld.no_consent",
                "override.reviewed.justified",
                "re_identify.refused",
                "dead_letter.unprocessable",
            ]
        ),
        "protocol_id": _optional(["cpis-attendance-notification", "ph-analytics"]),
        "protocol_version": _optional([1, 2, 10]),
        "purpose": _optional(["safeguarding", "planning"]),
        "source_agency": _optional(["nhs-riverside-ed", "la-northshire", "school-1"]),
        "recipient": _optional(["la-northshire", "ph-northshire", "nhs-riverside-ed"]),
        "review": _optional(
            [
                "override.reviewed.justified",
                "override.reviewed.not_justified",
                "override.reviewed.follow_up",
                "override.reviewed",
            ]
        ),
    }
)

# What it must never name: long enough that only a leak puts one in the output, and of
# characters no renderer escapes, so that a leak shows as it was.
_hex = "0123456789abcdef"
PERSONAL: dict[str, st.SearchStrategy[object]] = {
    "subject_key": st.text(_hex, min_size=64, max_size=64),
    "subject_aliases": st.lists(st.text(_hex, min_size=64, max_size=64), max_size=2),
    "audit_id": st.uuids().map(str),
    "refers_to": st.uuids().map(str),
    "event_id": st.uuids().map(str),
    "trace_id": st.text(_hex, min_size=32, max_size=32),
    "actor": st.from_regex(r"[a-z]{7,10}\.[a-z]{7,12}[0-9]{2}", fullmatch=True),
    "reason": st.text(string.ascii_letters + string.digits, min_size=16, max_size=40),
    "override_justification": st.text(string.ascii_letters, min_size=16, max_size=40),
    "consent_record_id": st.uuids().map(str),
}
personal = st.fixed_dictionaries(PERSONAL)
records = st.lists(st.tuples(published, personal).map(lambda p: {**p[0], **p[1]}), max_size=40)
min_counts = st.integers(min_value=2, max_value=10)


def _outputs(report: Report) -> dict[str, str]:
    return {"markdown": as_markdown(report), "html": as_html(report), "csv": as_csv(report)}


@given(rows=records, min_count=min_counts)
def test_nothing_personal_reaches_any_output(rows: list[dict[str, object]], min_count: int) -> None:
    report = build(rows, period=PERIOD, made_at=MADE, min_count=min_count)
    secrets = {str(row[k]) for row in rows for k in PERSONAL if k != "subject_aliases"}
    secrets |= {str(alias) for row in rows for alias in _listed(row["subject_aliases"])}
    for name, text in _outputs(report).items():
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{name} names {leaked}"
    # And the test sees a value when one is there: the recipients are published.
    named = (Section.DECISIONS, Section.RE_IDENTIFICATIONS, Section.RECALLS)
    for row in rows:
        if section_of(row) in named and row["recipient"]:
            assert f",{row['recipient']}," in as_csv(report)


def _listed(value: object) -> list[object]:
    assert isinstance(value, list)
    return value


def _published_counts(outputs: Mapping[str, str]) -> list[str]:
    in_csv = [r["count"] for r in csv.DictReader(io.StringIO(outputs["csv"], newline=""))]
    in_html = re.findall(r'<td class="n">([^<]*)</td>', outputs["html"])
    return in_csv + [cell.replace("&lt;", "<") for cell in in_html]


@given(rows=records, min_count=min_counts)
def test_every_published_count_is_zero_large_or_suppressed(
    rows: list[dict[str, object]], min_count: int
) -> None:
    report = build(rows, period=PERIOD, made_at=MADE, min_count=min_count)
    for figure in report.figures():
        assert figure.kind != "exact" or figure.value == 0 or figure.value >= min_count
    for text in _published_counts(_outputs(report)):
        assert text in (f"<{min_count}", "*") or int(text) == 0 or int(text) >= min_count


@given(rows=records, min_count=min_counts)
def test_a_total_is_exact_only_when_every_part_is(
    rows: list[dict[str, object]], min_count: int
) -> None:
    report = build(rows, period=PERIOD, made_at=MADE, min_count=min_count)
    for table in report.tables:
        for t in table.totals:
            at = table.columns.index(table.total_by) if table.total_by else None
            parts = [
                line.figure
                for line in table.lines
                if t.labels[0] == "all" or (at is not None and line.labels[at] == t.labels[0])
            ]
            if all(p.kind == "exact" for p in parts):
                assert t.figure.kind == "exact" and t.figure.value == sum(p.value for p in parts)
            else:
                assert t.figure.kind == "hidden"


@st.composite
def cells_and_changed(
    draw: st.DrawFn,
) -> tuple[list[dict[str, object]], list[dict[str, object]], int]:
    """One row per cell of the report with its count, and the same rows with every count
    the report suppresses changed to another it would suppress as well."""
    min_count = draw(min_counts)
    rows = draw(st.lists(published, max_size=40))
    cells: dict[object, dict[str, object]] = {}
    for row in rows:
        for section, counter in count([row]).items():
            for key in counter:
                cells.setdefault((section, key), row)
    before, after = [], []
    for row in cells.values():
        n = draw(st.integers(min_value=1, max_value=3 * min_count))
        small = n < min_count
        changed = draw(st.integers(min_value=1, max_value=min_count - 1)) if small else n
        before.append({**row, "n": n})
        after.append({**row, "n": changed})
    return before, after, min_count


@given(cells_and_changed())
def test_a_suppressed_count_cannot_be_worked_out(
    case: tuple[list[dict[str, object]], list[dict[str, object]], int],
) -> None:
    before, after, min_count = case
    first = _outputs(build(before, period=PERIOD, made_at=MADE, min_count=min_count))
    second = _outputs(build(after, period=PERIOD, made_at=MADE, min_count=min_count))
    assert first == second
