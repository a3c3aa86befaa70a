"""load_protocols / check_directory: the shipped protocols load; a bad set never does, and
every problem names its file, line and rule."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from consent.core.model import ConsentRequirement, IdentityLevel, Purpose, RuleKind
from consent.policy.load import DEFAULT_DIR, ProtocolError, check_directory, load_protocols
from consent.policy.parse import Problem
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_ENDED, PLAN_STARTED

Mutation = Callable[[dict[str, Any]], Any]
TODAY = date(2026, 11, 26)


def shipped(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEFAULT_DIR / f"{name}.yaml").read_text("utf-8"))
    return doc


def write(root: Path, name: str, doc: Any) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    (root / f"{name}.yaml").write_text(text, encoding="utf-8")


def problems_of(root: Path, directory: Directory, schemas: SchemaRegistry) -> list[Problem]:
    with pytest.raises(ProtocolError) as info:
        load_protocols(root, directory=directory, schemas=schemas, today=TODAY)
    assert str(info.value).startswith("invalid protocol set:\n  ")
    return info.value.problems


def analytics_with(change: Mutation) -> dict[str, Any]:
    doc = shipped("public-health-attendance-analytics")
    change(doc)
    return doc


def field(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    rule: dict[str, Any] = doc["recipients"][0]["fields"][i]
    return rule


def test_the_shipped_protocols_load(protocols: tuple[Any, ...]) -> None:
    by_id = {p.id: p for p in protocols}
    assert sorted(by_id) == [
        "cpis-attendance-notification",
        "cpis-protection-plan-flag",
        "public-health-attendance-analytics",
    ]
    flag = by_id["cpis-protection-plan-flag"]
    assert flag.purpose is Purpose.DIRECT_SAFEGUARDING
    assert flag.consent is ConsentRequirement.NOT_REQUIRED
    assert flag.covers(LA, PLAN_STARTED) and flag.covers(LA, PLAN_ENDED)
    assert not flag.covers(ED, PLAN_STARTED)
    assert flag.in_force(TODAY) and not flag.in_force(date(2030, 1, 1))
    assert (
        flag.lawful_basis.describe()
        == "UK GDPR Art 6(1)(e); Art 9(2)(g); DPA 2018 Sch 1 part 2 para 18"
    )
    (to_ed,) = flag.recipients  # the group unscheduled-care has one member
    assert to_ed.agency == ED and to_ed.retention == "P1Y"
    (notice,) = by_id["cpis-attendance-notification"].recipients
    assert (notice.agency, notice.identity) == (LA, IdentityLevel.IDENTIFIED)
    assert notice.condition is not None and "authority == recipient" in notice.condition.source
    analytics = by_id["public-health-attendance-analytics"]
    assert analytics.covers(ED, ATTENDANCE)
    (ph,) = analytics.recipients
    assert (ph.agency, ph.identity, ph.condition) == (PH, IdentityLevel.PSEUDONYMISED, None)
    assert [(f.kind, f.path, f.target) for f in ph.fields][:1] == [
        (RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym")
    ]


@pytest.mark.parametrize(
    ("change", "rule", "message"),
    [
        (lambda d: d.pop("owner"), "required", "missing owner"),
        (lambda d: d.update(purpose="marketing"), "purpose", "purpose: must be one of"),
        (lambda d: d.update(consent="maybe"), "consent", "consent: must be one of"),
        (lambda d: d["lawful_basis"].update(article6="z"), "lawful-basis", "Art 6(1) basis"),
        (lambda d: d["lawful_basis"].update(article9="k"), "lawful-basis", "Art 9(2) condition"),
        (
            lambda d: d["sources"].update(agencies=["nhs-elsewhere"]),
            "unknown-agency",
            "sources.agencies[0]: unknown agency 'nhs-elsewhere'",
        ),
        (
            lambda d: d["sources"].update(event_types=["education.exclusion"]),
            "unknown-event-type",
            "unknown event type 'education.exclusion'",
        ),
        (
            lambda d: d["recipients"][0].update(agency="ph-elsewhere"),
            "unknown-agency",
            "unknown agency 'ph-elsewhere'",
        ),
        (
            lambda d: (d["recipients"][0].pop("agency"), d["recipients"][0].update(group="x")),
            "unknown-agency",
            "unknown group 'x'",
        ),
        (lambda d: d["recipients"][0].update(identity="anonymous"), "identity", "must be one of"),
        (lambda d: d["recipients"][0].update(when="state.plan =="), "condition", "CEL: "),
        (lambda d: d["recipients"][0].update(when="1 + 2"), "condition", "not a boolean"),
        (lambda d: d["recipients"][0].update(retention="two years"), "retention", "ISO 8601"),
        (lambda d: d["recipients"][0].update(fields=[]), "field-rule", "no field rules"),
        (lambda d: d["recipients"].append("ph-northshire"), "type", "a recipient is a mapping"),
        (
            lambda d: field(d).update(allow="subject.nhs_number"),
            "field-rule",
            "name exactly one of allow, mask, generalise, pseudonymise, tokenise",
        ),
        (lambda d: field(d).pop("as"), "field-rule", "pseudonymise needs 'as'"),
        (lambda d: field(d, 1).update(to="decade"), "field-rule", "to: must be one of"),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "attendance.triage_score"}),
            "unknown-field",
            "attendance.triage_score is not defined",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "subject.postcode"}),
            "identifying-field",
            "a pseudonymised recipient cannot get subject.postcode",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append({"mask": "attendance.encounter_id"}),
            "identifying-field",
            "cannot get attendance.encounter_id",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "subject.nhs_number"}),
            "contradiction",
            "subject.nhs_number is also handled by another rule (pseudonymise",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append(
                {"allow": "attendance.setting_type", "as": "subject.pseudonym"}
            ),
            "contradiction",
            "two rules write subject.pseudonym",
        ),
        (lambda d: d["lawful_basis"].pop("article9"), "special-category", "needs an article9"),
        (
            lambda d: d["lawful_basis"].pop("dpa2018_schedule1"),
            "special-category",
            "Art 9(2)(i) needs its DPA 2018 Schedule 1 condition",
        ),
        (lambda d: d.update(valid_until=date(2026, 1, 31)), "expired", "expired on 2026-01-31"),
        (lambda d: d.update(version="one"), "type", "version: must be a whole number"),
        (lambda d: d.update(sources=["nhs-riverside-ed"]), "type", "sources: must be a mapping"),
        (lambda d: d.update(lawful_basis="e"), "type", "lawful_basis: must be a mapping"),
        (lambda d: d.update(recipients=[]), "recipient", "at least one recipient"),
        (lambda d: d["recipients"][0].update(wen="true"), "unknown-key", "unknown key 'wen'"),
        (lambda d: d.update(consents="required"), "unknown-key", "unknown key 'consents'"),
        (lambda d: d.pop("consent"), "required", "missing consent"),
        (lambda d: field(d, 3).update(to="year"), "unknown-key", "unknown key 'to'"),
        (
            lambda d: d["recipients"].append(copy.deepcopy(d["recipients"][0])),
            "contradiction",
            "ph-northshire is a recipient twice",
        ),
        (lambda d: d["lawful_basis"].update(article6="f"), "lawful-basis", "Art 6(1)(f)"),
        (lambda d: d["lawful_basis"].update(article9="a"), "lawful-basis", "needs consent"),
        (
            lambda d: d.update(valid_from=date(2028, 1, 1), valid_until=date(2027, 1, 1)),
            "validity",
            "valid_from is after valid_until",
        ),
    ],
)
def test_a_bad_protocol_is_refused_naming_the_rule(
    tmp_path: Path,
    directory: Directory,
    schemas: SchemaRegistry,
    change: Mutation,
    rule: str,
    message: str,
) -> None:
    write(tmp_path, "x", analytics_with(change))
    problems = problems_of(tmp_path, directory, schemas)
    assert any(p.rule == rule and message in p.message for p in problems), problems
    assert all(p.file == "x.yaml" and p.line >= 1 for p in problems)


def test_a_problem_names_the_line_it_is_on(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    text = (DEFAULT_DIR / "public-health-attendance-analytics.yaml").read_text("utf-8")
    lines = text.splitlines()
    bad = next(i for i, line in enumerate(lines) if "allow: attendance.setting_type" in line)
    lines[bad] = lines[bad].replace("attendance.setting_type", "attendance.triage_score")
    write(tmp_path, "x", "\n".join(lines) + "\n")
    (problem,) = problems_of(tmp_path, directory, schemas)
    assert (problem.file, problem.line, problem.rule) == ("x.yaml", bad + 1, "unknown-field")
    assert str(problem).startswith(f"x.yaml:{bad + 1}: error [unknown-field] ph-northshire: ")


def test_a_review_date_passed_is_a_warning_not_an_error(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    write(tmp_path, "x", analytics_with(lambda d: d.update(review_date=date(2026, 6, 1))))
    checked, problems = check_directory(tmp_path, directory=directory, schemas=schemas, today=TODAY)
    assert checked is not None and len(checked.protocols) == 1
    (warning,) = checked.warnings
    assert warning.warning and warning.rule == "review" and problems == [warning]


def test_every_problem_of_every_file_is_reported_at_once(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    def many(doc: dict[str, Any]) -> None:
        doc["lawful_basis"]["article6"] = "z"
        doc["sources"]["agencies"] = ["nhs-elsewhere"]

    write(tmp_path, "a-good", shipped("cpis-protection-plan-flag"))
    write(tmp_path, "b-bad", analytics_with(many))
    write(tmp_path, "c-broken", "id: [unclosed")
    write(tmp_path, "d-list", ["not", "a", "mapping"])
    problems = problems_of(tmp_path, directory, schemas)
    assert [(p.file, p.rule) for p in problems] == [
        ("b-bad.yaml", "unknown-agency"),
        ("b-bad.yaml", "lawful-basis"),
        ("c-broken.yaml", "yaml"),
        ("d-list.yaml", "type"),
    ]


def test_two_protocols_must_not_disagree_on_a_recipients_identity_level(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    doc = shipped("cpis-attendance-notification")
    doc["id"] = "attendance-pseudonymised-to-la"
    doc["recipients"] = [
        {
            "agency": LA,
            "identity": "pseudonymised",
            "fields": [{"pseudonymise": "subject.nhs_number", "as": "subject.pseudonym"}],
        }
    ]
    write(tmp_path, "a", shipped("cpis-attendance-notification"))
    write(tmp_path, "b", doc)
    (problem,) = problems_of(tmp_path, directory, schemas)
    assert problem.rule == "contradiction" and problem.file == "b.yaml"
    assert "identified under cpis-attendance-notification@2 (a.yaml)" in problem.message


def test_a_protocol_id_may_be_defined_once(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    write(tmp_path, "one", shipped("cpis-protection-plan-flag"))
    write(tmp_path, "two", shipped("cpis-protection-plan-flag"))
    problems = problems_of(tmp_path, directory, schemas)
    assert [(p.file, p.rule) for p in problems if p.rule == "duplicate-id"] == [
        ("two.yaml", "duplicate-id")
    ]


def test_an_empty_directory_is_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    (problem,) = problems_of(tmp_path, directory, schemas)
    assert problem.rule == "empty"


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            {"generalise": "attendance.site.ods_code", "to": "year", "as": "x.y"},
            "attendance.site.ods_code cannot be generalised to year",
        ),
        (
            {"generalise": "attendance.arrival_time", "to": "postcode_district", "as": "x.y"},
            "attendance.arrival_time cannot be generalised to postcode_district",
        ),
    ],
)
def test_a_generalisation_the_field_cannot_take_is_refused(
    tmp_path: Path,
    directory: Directory,
    schemas: SchemaRegistry,
    rule: dict[str, str],
    problem: str,
) -> None:
    write(tmp_path, "x", analytics_with(lambda d: d["recipients"][0]["fields"].append(rule)))
    problems = problems_of(tmp_path, directory, schemas)
    assert any(p.rule == "generalise" and p.message.endswith(problem) for p in problems)


@pytest.mark.parametrize("path", ["attendance.encounter_id", "attendance", "subject"])
def test_a_pseudonymised_recipient_gets_no_field_the_schema_marks_identifying(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, path: str
) -> None:
    write(
        tmp_path,
        "x",
        analytics_with(lambda d: d["recipients"][0]["fields"].append({"allow": path})),
    )
    problems = problems_of(tmp_path, directory, schemas)
    assert any(
        p.rule == "identifying-field" and p.message.endswith(f"cannot get {path}") for p in problems
    ) or (
        # The whole subject holds indexed_as, which no one may get: refused before that.
        path == "subject" and any(p.rule == "never-shared" and not p.warning for p in problems)
    ), problems


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: a\nid: b\n", "key 'id' appears twice"),
        ("a: &x [1]\nb: *x\n", "anchors and aliases are not allowed"),
        ("a: &x [*x]\n", "anchors and aliases are not allowed"),
        ("? [a, b]\n: 1\n", "a key must be a plain value"),
    ],
)
def test_yaml_that_could_hide_a_rule_is_refused_with_its_line(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, text: str, message: str
) -> None:
    write(tmp_path, "x", text)
    (problem,) = problems_of(tmp_path, directory, schemas)
    assert problem.rule == "yaml" and message in problem.message and problem.line >= 1
