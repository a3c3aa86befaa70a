"""The transparency report on a trail small enough to count by hand: which section each
record is counted in, what is suppressed, the period's bounds, and each format's escaping."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
from datetime import UTC, date, datetime

import pytest

from services.audit import transparency
from services.audit.models import OVERRIDE_CODE, ReviewOutcome
from services.audit.reviews import REVIEW_ACTION, REVIEW_CODE
from services.audit.transparency import Period, Section, build, parse_period, section_of
from services.audit.transparency_render import CSP, STYLE, as_csv, as_html, as_markdown
from tests.unit.test_pure_core import edge_libraries_loaded

PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30))
MADE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ED, LA, PH = "nhs-riverside-ed", "la-northshire", "ph-northshire"


def _shared(n: int, **fields: object) -> dict[str, object]:
    return {
        "decision": "shared",
        "action": "disclose",
        "reason_code": "shared.protocol_allows",
        "protocol_id": "cpis-attendance-notification",
        "protocol_version": 2,
        "purpose": "safeguarding",
        "source_agency": ED,
        "recipient": LA,
        "n": n,
        **fields,
    }


TRAIL = [
    _shared(12),
    _shared(3, recipient=PH, protocol_id="ph-analytics", purpose="planning"),
    _shared(7, decision="withheld", reason_code="withheld.no_consent"),
    _shared(6, reason_code=OVERRIDE_CODE, review="override.reviewed.justified"),
    _shared(2, reason_code=OVERRIDE_CODE, review=None),
    _shared(9, decision="recorded", action=REVIEW_ACTION, reason_code="override.reviewed.x"),
    _shared(1, decision="re_identified", action="re_identify", protocol_id=None),
    _shared(40, decision="accessed", action="audit_access"),
    _shared(5, decision="recorded", action="consent_record", reason_code="consent.given"),
]


def test_each_record_is_counted_in_one_section_or_none() -> None:
    assert section_of({"decision": "accessed", "action": "consent_search"}) == "trail_reads"
    assert section_of({"decision": "recalled", "action": "disclose"}) == "recalls"
    assert section_of({"decision": "shared", "action": "recall"}) == "recalls"
    assert section_of({"decision": "withheld", "action": "re_identify"}) == "re_identifications"
    assert section_of({"decision": "recorded", "action": REVIEW_ACTION}) is None
    assert section_of({"decision": "recorded", "action": "consent_record"}) is None
    assert section_of({"decision": "shared", "reason_code": OVERRIDE_CODE}) == "overrides"
    assert section_of({"decision": "undeliverable", "action": "deliver"}) == "decisions"


def test_the_hand_counted_trail() -> None:
    report = build(TRAIL, period=PERIOD, made_at=MADE)
    decisions, overrides, reids, recalls = report.tables
    assert [(line.labels, line.figure.text(5)) for line in decisions.lines] == [
        (("cpis-attendance-notification", "2", "safeguarding", ED, LA, "shared",
          "shared.protocol_allows"), "12"),
        (("cpis-attendance-notification", "2", "safeguarding", ED, LA, "withheld",
          "withheld.no_consent"), "7"),
        (("ph-analytics", "2", "planning", ED, PH, "shared", "shared.protocol_allows"), "<5"),
    ]  # fmt: skip
    # Shared includes a small count: not published, nor the total of all; withheld is.
    assert [(t.labels[0], t.figure.text(5)) for t in decisions.totals] == [
        ("shared", "*"),
        ("withheld", "7"),
        ("suppressed", "0"),
        ("all", "*"),
    ]
    assert [(x.labels[0], x.figure.text(5)) for x in overrides.lines] == [
        ("justified", "6"),
        ("not_justified", "0"),
        ("follow_up", "0"),
        ("pending", "<5"),
    ]
    assert [t.figure.text(5) for t in overrides.totals] == ["*"]
    assert [(x.labels, x.figure.text(5)) for x in reids.lines] == [
        ((LA, "", "re_identified"), "<5")
    ]
    assert recalls.lines == () and [t.figure.text(5) for t in recalls.totals] == ["0"]
    assert report.trail_reads.text(5) == "40"


def test_a_higher_minimum_suppresses_more() -> None:
    report = build(TRAIL, period=PERIOD, made_at=MADE, min_count=10)
    decisions = report.tables[0]
    assert [line.figure.text(10) for line in decisions.lines] == ["12", "<10", "<10"]
    with pytest.raises(ValueError, match="suppress nothing"):
        build(TRAIL, period=PERIOD, made_at=MADE, min_count=1)


def test_the_period_is_whole_utc_days_both_included() -> None:
    period = parse_period("2026-11-01", "2026-11-30")
    assert period.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert period.until == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_period("2026-11-05", "2026-11-05").until == datetime(2026, 11, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2026-02-30", "2026-03-01", "--from '2026-02-30' is not a date"),
        ("2026-11-01", "next week", "--to 'next week' is not a date"),
        ("20261101", "2026-11-02", "--from '20261101' is not a date"),
        ("2026-11-02", "2026-11-01", "--from 2026-11-02 is after --to 2026-11-01"),
    ],
)
def test_a_bad_period_is_named(first: str, last: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_period(first, last)


def test_the_codes_are_the_stores() -> None:
    assert transparency.OVERRIDE_CODE == OVERRIDE_CODE
    assert (transparency.REVIEW_ACTION, transparency.REVIEW_CODE) == (REVIEW_ACTION, REVIEW_CODE)
    assert set(transparency.REVIEW_OUTCOMES) == {o.value for o in ReviewOutcome}


HOSTILE = "<script>alert(1)</script>|x](http://e.x)*y*&amp;\n# heading"


def test_markdown_shows_a_hostile_agency_id_as_text() -> None:
    text = as_markdown(build([_shared(8, recipient=HOSTILE)], period=PERIOD, made_at=MADE))
    (row,) = [line for line in text.splitlines() if "alert" in line]
    assert row.count(" | ") == 7  # the id's pipe did not add a cell, nor its newline a line
    # Nothing in the document is markup: every such character is escaped.
    assert not re.search(r"(?<!\\)[<>\[\]&*_`]", text)
    assert r"\<script\>alert(1)\</script\>\|x\](http://e.x)\*y\*\&amp; # heading" in row


def test_html_is_escaped_self_contained_and_runs_nothing() -> None:
    page = as_html(build([_shared(8, recipient=HOSTILE)], period=PERIOD, made_at=MADE))
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r"(src|href)=", page)
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CSP and f'content="{CSP}"' in page
    assert f"<style>{STYLE}</style>" in page and "default-src 'none'" in CSP


def test_csv_cells_are_inert_and_counts_are_strings_of_the_report() -> None:
    text = as_csv(build([_shared(8, recipient="=HYPERLINK(1)")], period=PERIOD, made_at=MADE))
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows[0]["recipient"] == "'=HYPERLINK(1)" and rows[0]["count"] == "8"
    assert rows[0]["section"] == "decisions" and rows[0]["period_last"] == "2026-11-30"
    assert [r["section"] for r in rows][-1] == Section.TRAIL_READS
    assert text.endswith("\r\n")


def test_the_report_core_imports_no_edge_library() -> None:
    program = (
        "import sys\nimport services.audit.transparency, services.audit.transparency_render\n"
        "print(','.join(sorted(m for m in ('aiokafka', 'fastapi', 'sqlmodel', 'sqlalchemy', "
        "'starlette') if m in sys.modules)))"
    )
    assert edge_libraries_loaded(program) == []
