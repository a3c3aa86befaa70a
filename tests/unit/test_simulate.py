"""`infoshare protocols simulate`: a dry run over a file of events, compared with the live
set, writing nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from consent.policy.load import DEFAULT_DIR, load_protocols
from consent.policy.simulate import simulate
from consent.policy.simulate_inputs import events_from_file
from deploy.cli.main import app
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

EVENTS = Path(__file__).resolve().parents[2] / "docs" / "examples" / "simulate-events.jsonl"


def test_each_event_and_recipient_gets_a_row(directory: Directory, schemas: SchemaRegistry) -> None:
    protocols = load_protocols(None, directory=directory, schemas=schemas)
    rows = simulate(events_from_file(EVENTS), protocols)
    by = {(r.index, r.recipient, r.protocol.split("@")[0]): r for r in rows}
    assert by[(1, "la-northshire", "cpis-attendance-notification")].candidate == "shared"
    assert by[(2, "la-northshire", "cpis-attendance-notification")].candidate == (
        "withheld (withheld.condition_not_met)"
    )
    assert by[(2, "la-northshire", "early-help-attendance")].candidate == (
        "withheld (withheld.no_consent)"
    )
    consented = by[(3, "la-northshire", "early-help-attendance")]
    assert consented.candidate == "shared" and "attendance.site.name" in consented.fields
    assert all(r.live is None and not r.changed for r in rows)


def test_a_change_is_compared_with_the_live_set(tmp_path: Path) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(DEFAULT_DIR, candidate)
    early = candidate / "early-help-attendance.yaml"
    early.write_text(
        early.read_text().replace("consent: required_unless_override", "consent: not_required")
    )
    result = CliRunner().invoke(
        app,
        [
            "protocols",
            "simulate",
            str(candidate),
            "--events",
            str(EVENTS),
            "--live",
            str(DEFAULT_DIR),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "1 decision(s) differ from the live set" in result.output
    assert "withheld.no_consent" in result.output  # the live set's answer, shown beside


def test_a_bad_events_file_says_which_line(tmp_path: Path) -> None:
    bad = tmp_path / "events.jsonl"
    bad.write_text(EVENTS.read_text().splitlines()[0] + "\n{not json\n")
    result = CliRunner().invoke(
        app, ["protocols", "simulate", str(DEFAULT_DIR), "--events", str(bad)]
    )
    assert result.exit_code == 1 and "events.jsonl line 2: not JSON" in result.output


def test_events_or_topic_is_required() -> None:
    result = CliRunner().invoke(app, ["protocols", "simulate", str(DEFAULT_DIR)])
    assert result.exit_code == 2
