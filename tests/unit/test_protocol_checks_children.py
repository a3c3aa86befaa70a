"""Protocol checks that protect children: free text never reaches a pseudonymised or
anonymised recipient, and a covered event type that cannot show its subject is a child is
flagged. Each protocol is written as someone in a hurry would, and checked the way
`infoshare protocols check` checks it (check_directory), or through the command itself."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from consent.policy.load import DEFAULT_DIR, check_directory
from consent.policy.parse import Problem
from deploy.cli.main import app
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

TODAY = date(2026, 11, 26)
ANALYTICS = "public-health-attendance-analytics.yaml"
NEW_RULES = frozenset({"free-text", "condition-field", "scope"})


def check(root: Path, directory: Directory, schemas: SchemaRegistry) -> list[Problem]:
    checked, problems = check_directory(root, directory=directory, schemas=schemas, today=TODAY)
    assert (checked is None) == any(not p.warning for p in problems)
    return problems


def analytics_plus(root: Path, *extra: str) -> int:
    """The shipped public health protocol with rule lines appended to its recipient's
    fields; the 1-based line of the first one."""
    text = (DEFAULT_DIR / ANALYTICS).read_text("utf-8").rstrip("\n").splitlines()
    root.mkdir(exist_ok=True)
    (root / ANALYTICS).write_text("\n".join([*text, *extra]) + "\n", encoding="utf-8")
    return len(text) + 1


def test_clinical_notes_to_the_pseudonymised_public_health_recipient_are_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    line = analytics_plus(tmp_path, "      - allow: attendance.clinical_notes   # for context")
    problems = check(tmp_path, directory, schemas)
    assert [str(p) for p in problems] == [
        f"{ANALYTICS}:{line}: error [free-text] ph-northshire: a pseudonymised recipient "
        "cannot allow attendance.clinical_notes: it is free text, which can name or describe "
        "the child whatever the identity level (mask shows only that it is there)"
    ]


@pytest.mark.parametrize(
    ("rules", "shown"),
    [
        (["      - encrypt: attendance.clinical_notes", "        as: attendance.notes"], ""),
        # The whole object, notes and all: named in the message.
        (["      - allow: attendance"], "holds free text (attendance.clinical_notes)"),
    ],
)
def test_free_text_is_refused_however_its_content_would_be_shown(
    tmp_path: Path,
    directory: Directory,
    schemas: SchemaRegistry,
    rules: list[str],
    shown: str,
) -> None:
    line = analytics_plus(tmp_path, *rules)
    problems = [p for p in check(tmp_path, directory, schemas) if p.rule == "free-text"]
    assert [(p.file, p.line, p.warning) for p in problems] == [(ANALYTICS, line, False)]
    assert shown in problems[0].message


@pytest.mark.parametrize(
    "rules",
    [
        ["      - mask: attendance.clinical_notes"],
        ["      - pseudonymise: attendance.clinical_notes", "        as: attendance.notes_id"],
        ["      - tokenise: attendance.clinical_notes", "        as: attendance.notes_token"],
    ],
)
def test_free_text_may_go_where_its_content_does_not(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, rules: list[str]
) -> None:
    analytics_plus(tmp_path, *rules)
    assert check(tmp_path, directory, schemas) == []


HURRIED_ANONYMISED = """\
# quick one for the JSNA
id: jsna-safeguarding-concerns
version: 1
title: Safeguarding concerns for the needs assessment
owner: ph team
purpose: planning
lawful_basis: {article6: e, article9: i, dpa2018_schedule1: part 1 para 3}
consent: not_required
sources: {agencies: [nhs-riverside-ed], event_types: [health.safeguarding.concern]}
recipients:
  - agency: ph-northshire
    identity: anonymised
    fields:
      - generalise: subject.date_of_birth
        to: age_band
        as: subject.age_band
      - allow: concern.category
      - allow: concern.summary
"""


def test_free_text_to_an_anonymised_recipient_is_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    (tmp_path / "jsna.yaml").write_text(HURRIED_ANONYMISED, encoding="utf-8")
    (problem,) = check(tmp_path, directory, schemas)
    assert (problem.file, problem.line, problem.rule) == ("jsna.yaml", 18, "free-text")
    assert "an anonymised recipient cannot allow concern.summary" in problem.message


def test_an_identified_recipient_may_get_free_text(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    text = HURRIED_ANONYMISED.replace("identity: anonymised", "identity: identified")
    (tmp_path / "jsna.yaml").write_text(text, encoding="utf-8")
    assert [p.rule for p in check(tmp_path, directory, schemas)] == []


def test_an_event_type_that_cannot_show_a_child_is_a_warning_on_its_line(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    (tmp_path / "closed.yaml").write_text(
        """\
id: case-closed-to-ed
version: 1
title: Closed cases, so ED stops flagging
owner: la ig
purpose: direct_safeguarding
lawful_basis: {article6: e}
consent: not_required
sources:
  agencies: [la-northshire]
  event_types:
    - socialcare.referral.received
    - socialcare.case.closed
recipients:
  - agency: nhs-riverside-ed
    identity: identified
    fields:
      - allow: subject.nhs_number
""",
        encoding="utf-8",
    )
    checked, problems = check_directory(tmp_path, directory=directory, schemas=schemas, today=TODAY)
    assert checked is not None and len(checked.protocols) == 1  # a warning never stops a set
    (warning,) = problems
    assert (warning.file, warning.line, warning.rule, warning.warning) == (
        "closed.yaml",
        12,
        "scope",
        True,
    )
    assert warning.message.startswith("socialcare.case.closed has no subject.date_of_birth")


def test_the_shipped_set_passes_and_warns_only_of_events_that_end_a_childs_episode(
    directory: Directory, schemas: SchemaRegistry
) -> None:
    checked, problems = check_directory(
        DEFAULT_DIR, directory=directory, schemas=schemas, today=TODAY
    )
    assert checked is not None
    assert [p for p in problems if not p.warning] == []
    assert sorted((p.file, p.message.split()[0]) for p in problems if p.rule in NEW_RULES) == [
        ("cpis-protection-plan-flag.yaml", "socialcare.child_protection_plan.ended"),
        (
            "socialcare-looked-after-flag-and-referral-feedback.yaml",
            "socialcare.looked_after.ended",
        ),
    ]


def test_the_command_refuses_clinical_notes_to_public_health(tmp_path: Path) -> None:
    line = analytics_plus(tmp_path / "p", "      - allow: attendance.clinical_notes")
    result = CliRunner().invoke(
        app, ["protocols", "check", str(tmp_path / "p"), "--on", "2026-11-26"]
    )
    assert result.exit_code == 1, result.output
    assert f"{ANALYTICS}:{line}: error [free-text] ph-northshire: " in result.output
    assert "1 error(s), 0 warning(s): this set would not load" in result.output


@pytest.mark.parametrize(("retention", "warned"), [("P7D", True), ("P2W", True), ("P2M", False)])
def test_a_retention_shorter_than_the_topics_keep_deliveries_is_a_warning(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, retention: str, warned: bool
) -> None:
    """The stores purge on time, but Kafka keeps a topic's records 35 days: a rule keeping
    less is told so, on its retention's line."""
    text = (DEFAULT_DIR / ANALYTICS).read_text("utf-8")
    assert "    retention: P5Y\n" in text
    (tmp_path / ANALYTICS).write_text(text.replace("P5Y", retention), encoding="utf-8")
    line = text.splitlines().index("    retention: P5Y") + 1
    found = [p for p in check(tmp_path, directory, schemas) if p.rule == "retention"]
    if not warned:
        assert found == []
        return
    (warning,) = found
    assert (warning.file, warning.line, warning.warning) == (ANALYTICS, line, True)
    assert warning.message.startswith(f"ph-northshire may keep what it gets for {retention}")
    assert "35 days" in warning.message
