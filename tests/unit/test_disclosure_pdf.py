"""The PDF disclosure report, read back with pypdf: what an IG officer prints must say who
received what, when and why, on numbered pages, and must name no child."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from services.audit.disclosures_pdf import as_pdf, latin1_safe
from tests.unit.test_pure_core import edge_libraries_loaded

SUBJECT_KEY = "3f1c9a2e" * 8
PRODUCED = datetime(2026, 11, 21, 14, 5, 9, 123456, tzinfo=UTC)
START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

# Values that are in an audit entry but must never reach the printed report.
NHS_NUMBER = "9434765919"
SECRETS = {
    "actor": "Dr Fakename Notshown",
    "override_justification": f"child {NHS_NUMBER}, Fakename Notshown, 4 Example Row",
    "event_id": "evt-SECRET-7731",
    "trace_id": "trace0SECRET0fa",
    "delivery_id": "dlv-SECRET-0042",
    "topic_in": "health.SECRET.topic",
    "subject_key": "subject-key-SECRET",
    "consent_version": 424242,
}


def entry(i: int = 0, **changes: Any) -> dict[str, Any]:
    """An audit entry as ``AuditEntry.model_dump()`` gives it."""
    base: dict[str, Any] = {
        "audit_id": f"00000000-0000-4000-8000-{i:012d}",
        "recorded_at": START + timedelta(minutes=i, microseconds=777),
        "occurred_at": START,
        "action": "disclose",
        "decision": "shared",
        "reason_code": "shared.protocol",
        "reason": "cpis-attendance-notification v2 (direct_safeguarding) allows identified",
        "event_type": "health.unscheduled_care.attendance",
        "source_agency": "nhs-riverside-ed",
        "recipient": "la-northshire",
        "purpose": "direct_safeguarding",
        "protocol_id": "cpis-attendance-notification",
        "protocol_version": 2,
        "lawful_basis": "UK GDPR 6(1)(e); 9(2)(g)",
        "identity_level": "identified",
        "fields_disclosed": ["attendance.arrival_time", "attendance.site"],
        "fields_pseudonymised": [],
        "fields_withheld": ["attendance.presenting_complaint_detail"],
        "fields_tokenised": [],
        "fields_encrypted": [],
        "consent_record_id": None,
        "override_role": None,
        **SECRETS,
    }
    return base | changes


def report(entries: list[dict[str, Any]], produced_for: str = "Ifeoma Officer") -> PdfReader:
    pdf = as_pdf(entries, subject_key=SUBJECT_KEY, produced_at=PRODUCED, produced_for=produced_for)
    assert pdf.startswith(b"%PDF-")
    return PdfReader(io.BytesIO(pdf))


def squashed(text: str) -> str:
    """Text without whitespace: a cell's words wrap onto as many lines as its column needs."""
    return "".join(text.split())


def text_of(reader: PdfReader) -> str:
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_report_says_who_received_what_when_and_why() -> None:
    entries = [
        entry(0),
        entry(
            1,
            decision="withheld",
            recipient="ph-northshire",
            reason="early-help-attendance v1: no consent on record for early help",
            protocol_id="early-help-attendance",
            protocol_version=1,
            identity_level=None,
            fields_disclosed=[],
            fields_withheld=["attendance.arrival_time", "attendance.site"],
        ),
        entry(
            2,
            recipient="nhs-riverside-ed",
            identity_level="pseudonymised",
            fields_pseudonymised=["subject.nhs_number"],
            override_role="Designated Safeguarding Lead",
        ),
        entry(3, decision="dead_lettered", recipient=None, reason="schema validation failed"),
    ]
    reader = report(entries)
    text = text_of(reader)
    flat = squashed(text)

    assert "Disclosure report" in text
    assert f"Audit subject key: {SUBJECT_KEY}" in text
    assert "Produced at 2026-11-21 14:05:09Z for Ifeoma Officer" in text
    assert "Decisions: 4 (shared 2, withheld 1, other 1: dead_lettered 1)" in text
    for e in entries:
        assert squashed(e["reason"]) in flat
        assert e["decision"] in text
        for field in e["fields_disclosed"] + e["fields_pseudonymised"] + e["fields_withheld"]:
            assert field in flat
    for expected in (
        "early-help-attendance(v1)",
        "cpis-attendance-notification(v2)",
        "UKGDPR6(1)(e);9(2)(g)",
        "[overridebyDesignatedSafeguardingLead]",
        "nhs-riverside-ed",
        "health.unscheduled_care.attendance",
    ):
        assert expected in flat
    # One row per decision, in the order given (the store gives oldest first).
    times = [flat.index(f"2026-11-2009:3{i}:00Z") for i in range(4)]
    assert times == sorted(times)
    assert "page 1 of 1" in text


def test_the_report_prints_only_its_own_columns_never_an_identifier() -> None:
    text = text_of(report([entry(i) for i in range(3)]))
    flat = squashed(text)
    for secret in [NHS_NUMBER, "Fakename", "SECRET", "424242"]:
        assert secret not in flat, secret
    assert "la-northshire" in text  # the check above would pass on an empty page too


def test_a_child_with_no_decisions_gets_a_report_that_says_so() -> None:
    reader = report([])
    text = text_of(reader)
    assert len(reader.pages) == 1
    assert "Decisions: 0 (shared 0, withheld 0, other 0)" in text
    assert "No disclosure decisions were found about this child." in text
    assert "page 1 of 1" in text
    assert "Recipient" not in text


def test_thousands_of_decisions_run_over_numbered_pages_each_with_the_headings() -> None:
    entries = [entry(i, recipient=f"recipient-{i:04d}") for i in range(2000)]
    reader = report(entries)
    pages = len(reader.pages)
    assert pages > 50
    first, last = reader.pages[0].extract_text(), reader.pages[-1].extract_text()
    assert "recipient-0000" in first and "recipient-1999" in last
    assert f"page 1 of {pages}" in first and f"page {pages} of {pages}" in last
    middle = reader.pages[pages // 2].extract_text()
    assert f"page {pages // 2 + 1} of {pages}" in middle
    for page in (first, middle, last):
        assert "FieldswithheldReason" in squashed(page)
    assert "Decisions: 2000 (shared 2000, withheld 0, other 0)" in first


def test_a_row_taller_than_a_page_goes_on_over_the_next_without_losing_a_field() -> None:
    withheld = [f"education.record.item_{n:03d}" for n in range(160)]
    reader = report([entry(0), entry(1, fields_withheld=withheld), entry(2)])
    flat = squashed(text_of(reader))
    assert len(reader.pages) >= 2
    # A field name may break after its last dot, and that may fall at the foot of a page.
    positions = [flat.index(f"item_{n:03d},") for n in range(159)]
    assert positions == sorted(positions) and "item_159" in flat


def test_text_outside_latin_1_is_printed_in_its_plain_form() -> None:
    reason = "Shared \u2013 under \u201csection 47\u201d, the school\u2019s DSL \U0001f600 \u2713"
    text = text_of(report([entry(0, reason=reason)], produced_for="\u0141ucja W\u0175n"))
    assert squashed('Shared - under "section 47", the school\'s DSL ? ?') in squashed(text)
    assert "for Lucja Wwn" in text


def test_a_page_count_alias_in_the_data_is_printed_as_it_is() -> None:
    text = text_of(report([entry(0, reason="see {nb}")], produced_for="{nb}"))
    assert "for {nb}" in text and "see {nb}" in text


@pytest.mark.parametrize(
    ("given_text", "printed"),
    [
        ("plain ASCII, caf\u00e9 and \u00a3 stay", "plain ASCII, caf\u00e9 and \u00a3 stay"),
        ("en \u2013 em \u2014 dash", "en - em - dash"),
        ("\u2018single\u2019 \u201cdouble\u201d \u2026", "'single' \"double\" ..."),
        ("Cymraeg: \u0175 \u0177, Polski: \u0141\u00f3d\u017a", "Cymraeg: w y, Polski: L\u00f3dz"),
        ("emoji \U0001f600 and \u2603", "emoji ? and ?"),
        ("tab\there, bell\x07, line\nbreak", "tab here, bell , line\nbreak"),
        ("", ""),
    ],
)
def test_latin1_safe(given_text: str, printed: str) -> None:
    assert latin1_safe(given_text) == printed


@given(st.text())
def test_latin1_safe_always_gives_text_a_core_font_can_draw(text: str) -> None:
    safe = latin1_safe(text)
    safe.encode("latin-1")  # raises if not
    if text.isprintable() and all(ord(c) < 256 for c in text):
        assert safe == text


def test_the_pdf_module_imports_no_edge_library() -> None:
    program = (
        "import importlib, sys\n"
        "importlib.import_module('services.audit.disclosures_pdf')\n"
        "print(','.join(sorted(m for m in ('fastapi', 'sqlmodel', 'sqlalchemy', 'aiokafka')"
        " if m in sys.modules)))\n"
    )
    assert edge_libraries_loaded(program) == []
