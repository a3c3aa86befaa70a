"""The JSON Schema 2020-12 registry: loading, lookup, and violations that name the path and
rule but never the offending value."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.processor.access_back import ACCESS_BACK
from deploy.devstack.demo import scenario
from services.backbone.errors import ConfigurationError, SchemaViolation, UnknownEventType
from services.backbone.schemas import SchemaRegistry
from tests.unit.factories import (
    ATTENDANCE,
    PLAN_ENDED,
    PLAN_STARTED,
    attendance_data,
    plan_ended_data,
    plan_started_data,
)


def test_loads_every_shipped_event_type(schemas: SchemaRegistry) -> None:
    assert schemas.event_types == sorted(
        [
            "education.attendance.concern",
            "education.exclusion.recorded",
            "education.missing_education.reported",
            "education.safeguarding.concern",
            "health.appointment.was_not_brought",
            "health.safeguarding.concern",
            ATTENDANCE,
            ACCESS_BACK,
            "infoshare.recall.requested",
            "infoshare.record.recalled",
            "socialcare.assessment.completed",
            "socialcare.case.closed",
            PLAN_ENDED,
            PLAN_STARTED,
            "socialcare.looked_after.ended",
            "socialcare.looked_after.started",
            "socialcare.referral.received",
        ]
    )


@pytest.mark.parametrize("event_type", [ATTENDANCE, PLAN_ENDED, PLAN_STARTED])
def test_looks_up_by_type_and_by_id(schemas: SchemaRegistry, event_type: str) -> None:
    schema = schemas.get(event_type)
    assert schema.version == 1
    assert schema.uri.endswith(f"/{event_type}/v1.json")
    assert schemas.by_uri(schema.uri) is schema


def test_unknown_types_and_ids_are_refused(schemas: SchemaRegistry) -> None:
    with pytest.raises(UnknownEventType):
        schemas.get("education.exclusion")
    with pytest.raises(UnknownEventType):
        schemas.get(ATTENDANCE, 2)
    with pytest.raises(UnknownEventType):
        schemas.by_uri("https://infoshare.example/schemas/nothing/v1.json")


def test_scenario_data_conforms(schemas: SchemaRegistry, authority_name: str) -> None:
    for child in (scenario.ON_PLAN, scenario.NOT_ON_PLAN):
        schemas.get(ATTENDANCE).validate(attendance_data(child))
        schemas.get(PLAN_STARTED).validate(plan_started_data(child, authority_name=authority_name))
        schemas.get(PLAN_ENDED).validate(plan_ended_data(child, authority_name=authority_name))


def violation(schemas: SchemaRegistry, data: Any, event_type: str = ATTENDANCE) -> SchemaViolation:
    with pytest.raises(SchemaViolation) as info:
        schemas.get(event_type).validate(data)
    return info.value


def with_(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(attendance_data(scenario.ON_PLAN))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[last] = value
    return data


def without(path: str) -> dict[str, Any]:
    data = copy.deepcopy(attendance_data(scenario.ON_PLAN))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    del node[last]
    return data


@pytest.mark.parametrize(
    ("data", "path", "rule", "says"),
    [
        (with_("subject.nhs_number", "99900001234"), "subject.nhs_number", "pattern", "pattern"),
        (with_("subject.nhs_number", 9990000123), "subject.nhs_number", "type", "'string'"),
        (with_("subject.date_of_birth", "2016-02-30"), "subject.date_of_birth", "format", "date"),
        (with_("subject.postcode", "ns1 4ap"), "subject.postcode", "pattern", "pattern"),
        (
            with_("attendance.setting_type", "pharmacy-in-leeds"),
            "attendance.setting_type",
            "enum",
            "emergency_department",
        ),
        (
            with_("attendance.arrival_time", "20/11/2026 21:14"),
            "attendance.arrival_time",
            "format",
            "date-time",
        ),
        (without("subject.nhs_number"), "subject", "required", "'nhs_number' is a required"),
        (with_("subject.shoe_size", "5"), "subject", "additionalProperties", "'shoe_size'"),
        ([1, 2], "(root)", "type", "'object'"),
    ],
)
def test_a_violation_names_path_and_rule_never_the_value(
    schemas: SchemaRegistry, data: Any, path: str, rule: str, says: str
) -> None:
    error = violation(schemas, data)
    assert (error.path, error.rule) == (path, rule)
    message = str(error)
    assert message.startswith(f"{ATTENDANCE} v1: {path}: ")
    assert says in message
    for value in ("99900001234", "9990000123", "2016-02-30", "ns1 4ap", "pharmacy", "20/11"):
        assert value not in message


def test_the_shallowest_problem_is_reported_first(schemas: SchemaRegistry) -> None:
    data = without("attendance")
    data["subject"]["nhs_number"] = "1"
    assert violation(schemas, data).path == "(root)"


@given(st.from_regex(r"\A[0-9]{11,16}\Z") | st.from_regex(r"\A[A-Za-z]{6,12}[0-9]\Z"))
def test_no_bad_nhs_number_reaches_the_message(schemas: SchemaRegistry, bad: str) -> None:
    error = violation(schemas, with_("subject.nhs_number", bad))
    assert error.path == "subject.nhs_number"
    assert bad not in str(error)


def write_schema(root: Path, event_type: str, doc: Any) -> None:
    (root / event_type).mkdir(parents=True, exist_ok=True)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (root / event_type / "v1.json").write_text(text, encoding="utf-8")


def minimal(event_type: str) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://infoshare.example/schemas/{event_type}/v1.json",
        "type": "object",
    }


def test_loads_a_directory_of_its_own(tmp_path: Path) -> None:
    write_schema(tmp_path, "education.attendance", minimal("education.attendance"))
    (tmp_path / "education.attendance" / "notes.json").write_text("{}", encoding="utf-8")
    assert SchemaRegistry.load(tmp_path).event_types == ["education.attendance"]


def test_refuses_a_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        SchemaRegistry.load(tmp_path / "absent")
    with pytest.raises(ConfigurationError, match="no schemas found"):
        SchemaRegistry.load(tmp_path)


@pytest.mark.parametrize(
    "doc",
    ["{not json", {"type": "no-such-type"}, {"type": "object", "minProperties": -1}],
    ids=["not-json", "bad-type", "bad-keyword"],
)
def test_refuses_an_invalid_schema(tmp_path: Path, doc: Any) -> None:
    write_schema(tmp_path, "x.y", doc)
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema 2020-12"):
        SchemaRegistry.load(tmp_path)


def test_refuses_an_id_that_does_not_match_the_file(tmp_path: Path) -> None:
    write_schema(tmp_path, "x.y", minimal("x.z"))
    with pytest.raises(ConfigurationError, match=r"\$id must end with /x.y/v1.json"):
        SchemaRegistry.load(tmp_path)


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10**12),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(
        ["2026-11-20T21:14:00Z", "2026-11-20", "2026-13-01", "RVR01", "9990000123", "injury", ""]
    ),
    st.just({}),
    st.just([]),
)


def _paths(node: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    return found


@given(data=st.data())
def test_the_fast_validator_agrees_with_the_reference_one(
    schemas: SchemaRegistry, authority_name: str, data: st.DataObject
) -> None:
    """Valid events and events broken at any field (replaced, removed, or a stranger
    added) get the same verdict from jsonschema-rs as from the reference validator."""
    event_type, doc = data.draw(
        st.sampled_from(
            [
                (ATTENDANCE, attendance_data(scenario.ON_PLAN)),
                (PLAN_STARTED, plan_started_data(scenario.ON_PLAN, authority_name=authority_name)),
                (PLAN_ENDED, plan_ended_data(scenario.ON_PLAN, authority_name=authority_name)),
            ]
        )
    )
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(0, 3))):
        if not _paths(doc):
            break
        *parents, last = data.draw(st.sampled_from(_paths(doc)))
        node = doc
        for part in parents:
            node = node[part] if isinstance(node, dict) else {}
        if not isinstance(node, dict):
            continue
        action = data.draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            node[last] = data.draw(_LEAVES)
        elif action == "remove":
            node.pop(last, None)
        else:
            node[data.draw(st.text(min_size=1, max_size=8))] = data.draw(_LEAVES)
    schema = schemas.get(event_type)
    reference = not any(True for _ in schema.validator.iter_errors(doc))
    assert schema.fast.is_valid(doc) == reference
