"""`infoshare protocols explain`: the sharing map says who gets what, and what never."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from consent.policy.explain import explain
from consent.policy.load import DEFAULT_DIR, load_protocols
from deploy.cli.main import app
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

MAP = Path(__file__).resolve().parents[2] / "docs" / "sharing-map.md"


def test_the_map_names_every_flow_its_law_and_what_is_never_shared(
    directory: Directory, schemas: SchemaRegistry
) -> None:
    text = explain(load_protocols(None, directory=directory, schemas=schemas), directory, schemas)
    assert (
        'nhs_riverside_ed -- "public-health-attendance-analytics: pseudonymised" --> '
        "ph_northshire" in text
    )
    assert (
        'nhs_riverside_ed -- "early-help-attendance: identified, consent" --> la_northshire' in text
    )
    assert "Art 9(2)(i) public health; DPA 2018 Schedule 1 part 1 para 3" in text
    assert "a pseudonym instead of `subject.nhs_number` (`subject.pseudonym`)" in text
    assert "`subject.date_of_birth` as year (`subject.year_of_birth`)" in text
    assert "may keep it for 5 years" in text
    assert (
        "Access back (`deploy/agencies.yaml`): **Northshire County Council, children's social "
        "care** is told, for each of its events shared with another recipient, who received it"
    ) in text
    analytics = text.split("## Children's unscheduled-care attendances")[1].split("## ")[0]
    assert "never: `attendance.clinical_notes`, `attendance.site.name`" in analytics
    assert "a reversible token instead of `attendance.encounter_id`" in analytics


def test_the_committed_map_is_what_the_protocols_say(tmp_path: Path) -> None:
    out = tmp_path / "map.md"
    result = CliRunner().invoke(app, ["protocols", "explain", str(DEFAULT_DIR), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == MAP.read_text(), (
        "docs/sharing-map.md is stale: run `infoshare protocols explain consent/protocols "
        "--out docs/sharing-map.md`"
    )
