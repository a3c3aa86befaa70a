"""`infoshare transparency report` on a real audit store (SQLite and PostgreSQL): a day's
decisions, overrides reviewed after it, a re-identification and looks at the trail, counted
in the database and published with small counts suppressed, naming no child, person or
record; and the clear refusals an operator gets for bad dates or an unreadable store."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli.main import app
from services.audit.models import OVERRIDE_CODE, OverrideReviewIn, ReviewOutcome
from services.audit.reviews import review_override
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.audit.transparency_query import COUNTED_BY, counted
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.keyring import Keyring
from tests.audit_records import decision, subject_key

LA, PH = "la-northshire", "ph-northshire"
CPIS = "cpis-attendance-notification"
DAY = ["--from", "2026-11-20", "--to", "2026-11-20"]
OFFICER, NOTE = "sam.okafor", "Checked with the consultant: the bruising warranted it"
JUSTIFICATION = "Dr Example saw unexplained bruising on the child"
WHY_REIDENTIFIED = "Court order 2026/117 requires the child's identity"


def _trail(store: AuditStore, keyring: Keyring) -> list[AuditRecord]:
    other_child = subject_key(keyring, "nhs:9990000123")
    records = [
        *(decision(keyring, i, protocol_id=CPIS) for i in range(1, 7)),  # 6 shared with LA
        *(decision(keyring, i, recipient=PH, protocol_id="ph-analytics") for i in (7, 8)),
        *(
            decision(
                keyring,
                i,
                decision=AuditOutcome.WITHHELD,
                reason_code="withheld.no_consent",
                subject_key=other_child,
            )
            for i in range(9, 14)
        ),
        *(
            decision(
                keyring,
                i,
                reason_code=OVERRIDE_CODE,
                override_justification=JUSTIFICATION,
                override_role="ED consultant",
            )
            for i in range(14, 20)
        ),
        decision(
            keyring,
            20,
            action="re_identify",
            decision=AuditOutcome.RE_IDENTIFIED,
            reason_code="re_identified.by_ig",
            reason=WHY_REIDENTIFIED,
            actor=OFFICER,
            source_agency=None,
            protocol_id=None,
        ),
        *(
            decision(
                keyring,
                i,
                action="audit_access",
                decision=AuditOutcome.ACCESSED,
                reason_code="accessed.disclosure_report",
                actor=OFFICER,
            )
            for i in range(21, 28)
        ),
        # Either side of the day: not counted.
        decision(keyring, 30, recorded_at=datetime(2026, 11, 19, 23, 59, 59, tzinfo=UTC)),
        *(
            decision(keyring, i, recorded_at=datetime(2026, 11, 21, tzinfo=UTC))
            for i in range(31, 41)
        ),
    ]
    store.add_batch(records)
    overrides = [r for r in records if r.reason_code == OVERRIDE_CODE]
    for override in overrides[:5]:  # reviewed today, after the day: counted with the day's
        review_override(
            store,
            override.audit_id,
            OverrideReviewIn(note=NOTE, outcome=ReviewOutcome.JUSTIFIED),
            reviewer=OFFICER,
        )
    return records


@pytest.fixture
def store(database_url: str, tmp_path: Path, keyring: Keyring) -> AuditStore:
    store = AuditStore(database_url, sealing_from(keyring, tmp_path / "cp.jsonl"))
    store.create_schema()
    return store


def _report(database_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app,
        ["transparency", "report", *args],
        env={"INFOSHARE_AUDIT_DATABASE_URL": database_url, "COLUMNS": "400"},  # one line each
    )
    return result.exit_code, result.stdout, result.stderr


def test_a_days_report_counts_suppresses_and_names_no_one(
    store: AuditStore, database_url: str, keyring: Keyring, tmp_path: Path
) -> None:
    records = _trail(store, keyring)
    code, text, said = _report(database_url, *DAY, "--format", "csv")
    assert code == 0, said
    published = {
        (r["section"], r["recipient"], r["outcome"], r["reason_code"]): r["count"]
        for r in csv.DictReader(io.StringIO(text, newline=""))
    }
    assert published == {
        ("decisions", LA, "shared", "shared.protocol_allows"): "6",
        ("decisions", PH, "shared", "shared.protocol_allows"): "<5",
        ("decisions", LA, "withheld", "withheld.no_consent"): "5",
        ("decisions_total", "", "shared", ""): "*",  # 6 + <5 would give the <5 away
        ("decisions_total", "", "withheld", ""): "5",
        ("decisions_total", "", "suppressed", ""): "0",
        ("decisions_total", "", "all", ""): "*",
        ("overrides", "", "justified", ""): "5",
        ("overrides", "", "not_justified", ""): "0",
        ("overrides", "", "follow_up", ""): "0",
        ("overrides", "", "pending", ""): "<5",
        ("overrides_total", "", "", ""): "*",
        ("re_identifications", LA, "re_identified", ""): "<5",
        ("re_identifications_total", "", "re_identified", ""): "*",
        ("re_identifications_total", "", "withheld", ""): "0",
        ("re_identifications_total", "", "all", ""): "*",
        ("recalls_total", "", "", ""): "0",
        ("trail_reads", "", "", ""): "7",
    }

    markdown, page = tmp_path / "report.md", tmp_path / "report.html"
    assert _report(database_url, *DAY, "--out", str(markdown))[0] == 0
    assert _report(database_url, *DAY, "--format", "html", "--out", str(page))[0] == 0
    outputs = [text, markdown.read_text(encoding="utf-8"), page.read_text(encoding="utf-8")]
    assert f"| {CPIS} |" in outputs[1] and "<td>la-northshire</td>" in outputs[2]
    personal = {OFFICER, NOTE, JUSTIFICATION, WHY_REIDENTIFIED, "ED consultant"}
    personal |= {r.audit_id for r in records} | {r.subject_key or "" for r in records} - {""}
    personal |= {r.actor for r in records} | {r.reason for r in records}
    for output in outputs:
        assert not [p for p in personal if p in output]


def test_the_database_counts_and_hands_back_groups_only(
    store: AuditStore, keyring: Keyring
) -> None:
    _trail(store, keyring)
    rows = counted(
        store.engine,
        since=datetime(2026, 11, 20, tzinfo=UTC),
        until=datetime(2026, 11, 21, tzinfo=UTC),
    )
    assert all(set(row) == {*COUNTED_BY, "review", "n"} for row in rows)
    assert sum(int(str(row["n"])) for row in rows) == 27  # the day's records, none after
    assert len(rows) == 7  # groups, not records
    reviews = {row["review"]: row["n"] for row in rows if row["reason_code"] == OVERRIDE_CODE}
    assert reviews == {"override.reviewed.justified": 5, None: 1}


def test_a_bad_period_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    code, _, said = _report(url, "--from", "2026-11-31", "--to", "2026-12-01")
    assert code == 2 and "--from '2026-11-31' is not a date (YYYY-MM-DD)" in said
    code, _, said = _report(url, "--from", "2026-12-02", "--to", "2026-12-01")
    assert code == 2 and "--from 2026-12-02 is after --to 2026-12-01" in said


def test_an_unreachable_store_is_named_without_its_password() -> None:
    url = "postgresql://infoshare:s3cret-pw@127.0.0.1:1/infoshare_audit"
    code, text, said = _report(url, *DAY)
    assert code == 2 and text == ""
    assert "cannot read the audit store at postgresql://infoshare:***@127.0.0.1:1" in said
    assert "s3cret-pw" not in said


def test_a_missing_or_foreign_sqlite_file_is_refused_not_made(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    code, _, said = _report(f"sqlite:///{missing}", *DAY)
    assert code == 2 and f"no audit store at {missing}" in said and not missing.exists()
    foreign = tmp_path / "other.db"
    foreign.touch()
    code, _, said = _report(f"sqlite:///{foreign}", *DAY)
    assert code == 2 and "no such table: audit_entry" in said and "audit migrate" in said


def test_an_unwritable_out_file_is_refused(
    store: AuditStore, database_url: str, tmp_path: Path
) -> None:
    code, _, said = _report(database_url, *DAY, "--out", str(tmp_path / "no" / "such" / "r.md"))
    assert code == 2 and "cannot write" in said
