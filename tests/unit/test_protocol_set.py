"""Loading the protocol set: the shipped protocols, and every problem of a bad set reported
at once, named by file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from consent.core.model import Condition, IdentityLevel, Purpose, RuleKind
from consent.protocol_set import DEFAULT_DIR, ProtocolError, load_protocols
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import ATTENDANCE, ED, LA, PH, PLAN_ENDED, PLAN_STARTED

Mutation = Callable[[dict[str, Any]], None]


def shipped(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEFAULT_DIR / f"{name}.yaml").read_text("utf-8"))
    return doc


def write(root: Path, name: str, doc: Any) -> None:
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc)
    (root / f"{name}.yaml").write_text(text, encoding="utf-8")


def problems_of(root: Path, directory: Directory, schemas: SchemaRegistry) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        load_protocols(root, directory=directory, schemas=schemas)
    assert str(info.value).startswith("invalid protocol set:\n  ")
    return info.value.problems


def test_the_shipped_protocols_load(protocols: tuple[Any, ...]) -> None:
    by_id = {p.id: p for p in protocols}
    assert sorted(by_id) == [
        "cpis-attendance-notification",
        "cpis-protection-plan-flag",
        "public-health-attendance-analytics",
    ]
    flag = by_id["cpis-protection-plan-flag"]
    assert flag.purpose is Purpose.DIRECT_SAFEGUARDING
    assert flag.covers(LA, PLAN_STARTED) and flag.covers(LA, PLAN_ENDED)
    assert not flag.covers(ED, PLAN_STARTED)
    assert (
        flag.lawful_basis.describe()
        == "UK GDPR Art 6(1)(e); Art 9(2)(g); DPA 2018 Sch 1 part 2 para 18"
    )
    notice = by_id["cpis-attendance-notification"].recipients[0]
    assert (notice.agency, notice.identity, notice.condition) == (
        LA,
        IdentityLevel.IDENTIFIED,
        Condition.ACTIVE_PROTECTION_PLAN_HELD_BY_RECIPIENT,
    )
    analytics = by_id["public-health-attendance-analytics"]
    assert analytics.covers(ED, ATTENDANCE)
    (ph,) = analytics.recipients
    assert (ph.agency, ph.identity, ph.condition) == (
        PH,
        IdentityLevel.PSEUDONYMISED,
        Condition.ALWAYS,
    )
    assert [(f.kind, f.path, f.target) for f in ph.fields][:1] == [
        (RuleKind.PSEUDONYMISE, "subject.nhs_number", "subject.pseudonym")
    ]


def test_no_pseudonymised_recipient_is_allowed_an_identifying_field(
    protocols: tuple[Any, ...],
) -> None:
    for protocol in protocols:
        for rule in protocol.recipients:
            if rule.identity is IdentityLevel.PSEUDONYMISED:
                assert all(
                    not f.path.startswith("subject")
                    for f in rule.fields
                    if f.kind is RuleKind.ALLOW
                )


def analytics_with(change: Mutation) -> dict[str, Any]:
    doc = shipped("public-health-attendance-analytics")
    change(doc)
    return doc


def field(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    rule: dict[str, Any] = doc["recipients"][0]["fields"][i]
    return rule


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.pop("owner"), "x.yaml: missing owner"),
        (lambda d: d.update(purpose="marketing"), "x.yaml: purpose must be one of"),
        (
            lambda d: d["lawful_basis"].update(article6="z"),
            "lawful_basis.article6 must be one of a-f",
        ),
        (
            lambda d: d["lawful_basis"].update(article9="k"),
            "lawful_basis.article9 must be one of a-j",
        ),
        (
            lambda d: d["sources"].update(agencies=["nhs-elsewhere"]),
            "sources.agencies: unknown agency 'nhs-elsewhere'",
        ),
        (
            lambda d: d["sources"].update(event_types=["education.exclusion"]),
            "sources.event_types: unknown event type 'education.exclusion'",
        ),
        (
            lambda d: d["recipients"][0].update(agency="ph-elsewhere"),
            "recipients[0]: unknown agency 'ph-elsewhere'",
        ),
        (lambda d: d["recipients"][0].update(identity="anonymous"), "recipients[0]: 'anonymous'"),
        (lambda d: d["recipients"][0].update(when="sometimes"), "recipients[0]: 'sometimes'"),
        (lambda d: d["recipients"][0].update(fields=[]), "recipients[0]: no field rules"),
        (
            lambda d: d["recipients"].append("ph-northshire"),
            "recipients[1]: a recipient is a mapping",
        ),
        (
            lambda d: field(d).update(allow="subject.nhs_number"),
            "recipients[0].fields[0]: name exactly one of allow, generalise, pseudonymise",
        ),
        (lambda d: field(d).pop("as"), "recipients[0].fields[0]: pseudonymise needs 'as'"),
        (lambda d: field(d, 1).update(to="decade"), "fields[1]: generalise needs to: year"),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "attendance.triage_score"}),
            "fields[7]: attendance.triage_score is not defined by the events' schemas",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "subject.postcode"}),
            "fields[7]: a pseudonymised recipient cannot get subject.postcode",
        ),
        (
            lambda d: d["recipients"][0]["fields"].append({"allow": "subject"}),
            "fields[7]: a pseudonymised recipient cannot get subject",
        ),
    ],
)
def test_a_bad_protocol_is_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, change: Mutation, problem: str
) -> None:
    write(tmp_path, "x", analytics_with(change))
    problems = problems_of(tmp_path, directory, schemas)
    assert any(problem in p for p in problems), problems


def test_every_problem_of_every_file_is_reported_at_once(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    def many(doc: dict[str, Any]) -> None:
        doc["lawful_basis"]["article6"] = "z"
        doc["sources"]["agencies"] = ["nhs-elsewhere"]
        doc["recipients"][0]["fields"].append({"allow": "subject.given_name"})

    write(tmp_path, "a-good", shipped("cpis-protection-plan-flag"))
    write(tmp_path, "b-bad", analytics_with(many))
    write(tmp_path, "c-broken", "id: [unclosed")
    write(tmp_path, "d-list", ["not", "a", "mapping"])
    problems = problems_of(tmp_path, directory, schemas)
    assert problems == [
        "b-bad.yaml: sources.agencies: unknown agency 'nhs-elsewhere'",
        "b-bad.yaml: lawful_basis.article6 must be one of a-f",
        "b-bad.yaml: recipients[0].fields[7]: a pseudonymised recipient cannot get "
        "subject.given_name",
        problems[3],
        "d-list.yaml: not a YAML mapping",
    ]
    assert problems[3].startswith("c-broken.yaml: cannot be read as YAML")


def test_a_protocol_id_may_be_defined_once(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    write(tmp_path, "one", shipped("cpis-protection-plan-flag"))
    write(tmp_path, "two", shipped("cpis-protection-plan-flag"))
    assert problems_of(tmp_path, directory, schemas) == [
        "protocol id 'cpis-protection-plan-flag' is defined twice"
    ]


def test_an_empty_directory_is_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    assert problems_of(tmp_path, directory, schemas) == [f"{tmp_path}: no protocol files (*.yaml)"]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(version="one"),
        lambda d: d.update(sources=["nhs-riverside-ed"]),
        lambda d: d.update(lawful_basis="e"),
    ],
    ids=["version-not-int", "sources-a-list", "lawful-basis-a-string"],
)
def test_a_malformed_value_is_a_reported_problem(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, change: Mutation
) -> None:
    write(tmp_path, "x", analytics_with(change))
    assert problems_of(tmp_path, directory, schemas)


def test_a_protocol_without_recipients_is_refused(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry
) -> None:
    write(tmp_path, "x", analytics_with(lambda d: d.update(recipients=[])))
    assert problems_of(tmp_path, directory, schemas)


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
def test_a_generalisation_the_field_cannot_take_is_refused_at_load(
    tmp_path: Path,
    directory: Directory,
    schemas: SchemaRegistry,
    rule: dict[str, str],
    problem: str,
) -> None:
    write(tmp_path, "x", analytics_with(lambda d: d["recipients"][0]["fields"].append(rule)))
    (found,) = problems_of(tmp_path, directory, schemas)
    assert found.endswith(problem) and found.startswith("x.yaml: recipients[0].fields[")


@pytest.mark.parametrize("path", ["attendance.encounter_id", "attendance", "subject"])
def test_a_pseudonymised_recipient_gets_no_field_the_schema_marks_identifying(
    tmp_path: Path, directory: Directory, schemas: SchemaRegistry, path: str
) -> None:
    write(
        tmp_path,
        "x",
        analytics_with(lambda d: d["recipients"][0]["fields"].append({"allow": path})),
    )
    (found,) = problems_of(tmp_path, directory, schemas)
    assert found.endswith(f"a pseudonymised recipient cannot get {path}")
