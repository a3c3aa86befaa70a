"""A misspelt field in a `when` condition is refused on the `when` line: a condition that
names a field no covered event (or the subject state) has would silently never hold, and
the child it was written for would go unprotected or be shared about wrongly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from consent.core.conditions import Condition
from consent.policy.condition_refs import referenced_paths
from consent.policy.load import check_directory
from consent.policy.parse import Problem
from deploy.cli.main import app
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

TODAY = date(2026, 11, 26)

HURRIED = """\
id: ed-attendance-to-plan-la
version: 1
title: ED attendances to the LA holding the plan
owner: someone <ig@riverside.example>
purpose: direct_safeguarding
lawful_basis: {{article6: e, article9: g, dpa2018_schedule1: part 2 para 18}}
consent: not_required
sources:
  agencies: [nhs-riverside-ed]
  event_types: [health.unscheduled_care.attendance]
recipients:
- group: local-authorities
  identity: identified
  when: {when}
  fields:
  - allow: subject.nhs_number
  - allow: attendance.arrival_time
"""
WHEN_LINE = 14


def check(root: Path, directory: Directory, schemas: SchemaRegistry, when: str) -> list[Problem]:
    (root / "ed.yaml").write_text(HURRIED.format(when=when), encoding="utf-8")
    checked, problems = check_directory(root, directory=directory, schemas=schemas, today=TODAY)
    assert (checked is None) == any(not p.warning for p in problems)
    return problems


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (
            "event.data.subject.foo == 'x'",
            "local-authorities: when names event.data.subject.foo, which no schema of "
            "health.unscheduled_care.attendance has",
        ),
        (
            "has(state.protection_plan) && state.protection_plan.authorty == recipient",
            "local-authorities: when names state.protection_plan.authorty, which the subject "
            "state does not have (did you mean state.protection_plan.authority?)",
        ),
        (
            "has(event.data.subject.nhs_numbr)",  # has()'s argument is a field name too
            "local-authorities: when names event.data.subject.nhs_numbr, which no schema of "
            "health.unscheduled_care.attendance has "
            "(did you mean event.data.subject.nhs_number?)",
        ),
        (
            # Outside the subset compiled to Python: still read from CEL's own syntax tree.
            "['injury', 'self_harm'].exists(c, c == event.data.attendance.complaint)",
            "local-authorities: when names event.data.attendance.complaint, which no schema of "
            "health.unscheduled_care.attendance has",
        ),
        (
            "event.data['attendance']['setting'] == 'emergency_department'",
            "local-authorities: when names event.data.attendance.setting, which no schema of "
            "health.unscheduled_care.attendance has "
            "(did you mean event.data.attendance.setting_type?)",
        ),
        (
            "event.agency == recipient",
            "local-authorities: when names event.agency, but event has only type, source and data",
        ),
    ],
)
def test_a_misspelt_field_in_a_condition_is_refused_on_the_when_line(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, when: str, message: str
) -> None:
    problems = check(tmp_path, directory, schemas, f'"{when}"')
    assert [str(p) for p in problems] == [f"ed.yaml:{WHEN_LINE}: error [condition-field] {message}"]


def test_a_folded_condition_is_reported_on_its_when_line(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    when = ">-\n    has(state.protection_plan)\n    && state.protection_plan.plan == 'x'"
    (problem,) = check(tmp_path, directory, schemas, when)
    assert (problem.line, problem.rule) == (WHEN_LINE, "condition-field")


@pytest.mark.parametrize(
    "when",
    [
        "has(state.protection_plan) && state.protection_plan.authority == recipient",
        "event.type == 'health.unscheduled_care.attendance' && event.source == 'nhs-riverside-ed'",
        "event.data.attendance.site.ods_code.startsWith('RVR')",
        "has(event.data.attendance.clinical_notes)",
    ],
)
def test_a_condition_over_real_fields_passes(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, when: str
) -> None:
    assert check(tmp_path, directory, schemas, f'"{when}"') == []


def test_a_field_only_some_covered_types_have_is_allowed(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    # How conditions tell event types apart (school-notifications-to-local-authority).
    text = HURRIED.format(
        when="\"event.type != 'health.safeguarding.concern' || event.data.concern.unborn\""
    ).replace(
        "event_types: [health.unscheduled_care.attendance]",
        "event_types: [health.unscheduled_care.attendance, health.safeguarding.concern]",
    )
    (tmp_path / "ed.yaml").write_text(text.replace("  - allow: attendance.arrival_time\n", ""))
    _, problems = check_directory(tmp_path, directory=directory, schemas=schemas, today=TODAY)
    assert problems == []


def test_the_command_names_file_line_and_rule(tmp_path: Path) -> None:
    (tmp_path / "ed.yaml").write_text(
        HURRIED.format(when='"event.data.subject.foo == recipient"'), encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["protocols", "check", str(tmp_path), "--on", "2026-11-26"])
    assert result.exit_code == 1, result.output
    assert (
        f"ed.yaml:{WHEN_LINE}: error [condition-field] local-authorities: when names "
        "event.data.subject.foo, which no schema of health.unscheduled_care.attendance has"
    ) in result.output


_RESERVED = {
    "in", "as", "break", "const", "continue", "else", "for", "function", "if", "import",
    "let", "loop", "package", "namespace", "return", "var", "void", "while", "true",
    "false", "null", "has",
}  # fmt: skip
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: n not in _RESERVED)
paths = st.tuples(
    st.sampled_from(["event.data", "state"]), st.lists(names, min_size=1, max_size=4)
).map(lambda t: ".".join([t[0], *t[1]]))
terms = paths.flatmap(
    lambda p: st.sampled_from(
        [(f"has({p})", p), (f"{p} == 'x'", p), (f"{p}.startsWith('a')", p), (f"!{p}", p)]
    )
)


@given(st.lists(terms, min_size=1, max_size=6), st.lists(st.sampled_from(["&&", "||"])))
def test_every_field_a_condition_names_is_found(
    parts: list[tuple[str, str]], operators: list[str]
) -> None:
    source = parts[0][0]
    for i, (term, _) in enumerate(parts[1:]):
        source = f"({source}) {operators[i % len(operators)] if operators else '&&'} {term}"
    assert referenced_paths(Condition.compile(source)) == list(
        dict.fromkeys(path for _, path in parts)
    )
