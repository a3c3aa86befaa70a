"""The school's native JSON (and CSV rows) mapped to canonical education events that
conform to their schemas; native input checked, naming the field and never the value."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from services.backbone.errors import InputRejected
from services.backbone.schemas import SchemaRegistry
from services.education import mapping, native
from services.education.attendance_csv import parse_attendance
from services.education.codes import ATTENDANCE_CODES, EXCLUSION_REASONS, ExclusionReasonCategory
from services.education.exclusions_csv import parse_exclusions
from tests.unit.education_samples import AUTUMN, SCHOOL, SCHOOL_NAME, sample, sample_json

SCHOOL_DATA = {
    "name": SCHOOL_NAME,
    "urn": "999001",
    "dsl": {
        "name": "Alex Teacher",
        "role": "designated safeguarding lead",
        "phone": "01632 960123",
        "email": "dsl@oakfield.example",
    },
}
MAISIE = {
    "upn": "H999400116001",
    "nhs_number": "9990000123",
    "given_name": "Maisie",
    "family_name": "Testchild",
    "date_of_birth": "2016-04-09",
}


def test_maps_an_attendance_concern(schemas: SchemaRegistry) -> None:
    body = native.AttendanceConcern.model_validate(sample_json("attendance-concern.json"))
    data = mapping.attendance_concern(body, school_name=SCHOOL_NAME)
    assert data == {
        "subject": MAISIE,
        "school": SCHOOL_DATA,
        "attendance": {
            "period": {"start": "2026-09-03", "end": "2026-12-18"},
            "attendance_percentage": 88.5,
            "possible_sessions": 148,
            "sessions_missed": 17,
            "authorised_absence_sessions": 9,
            "unauthorised_absence_sessions": 8,
            "absence_level": "persistent",
            "absence_codes": [
                {"code": "I", "sessions": 7, "category": "authorised_absence"},
                {"code": "M", "sessions": 2, "category": "authorised_absence"},
                {"code": "G", "sessions": 3, "category": "unauthorised_absence"},
                {"code": "O", "sessions": 5, "category": "unauthorised_absence"},
            ],
        },
    }
    schemas.get(mapping.ATTENDANCE_CONCERN).validate(data)
    assert mapping.attendance_native_id(body) == "attendance|H999400116001|2026-09-03|2026-12-18"


def test_maps_a_suspension(schemas: SchemaRegistry) -> None:
    body = native.ExclusionRecorded.model_validate(sample_json("exclusion.json"))
    data = mapping.exclusion_recorded(body, school_name=SCHOOL_NAME)
    assert data == {
        "subject": {
            "upn": "X999400114027",
            "given_name": "Zoë",
            "family_name": "Démopupil",
            "date_of_birth": "2015-02-14",
        },
        "school": SCHOOL_DATA,
        "exclusion": {
            "kind": "suspension",
            "start_date": "2026-11-24",
            "sessions": 2,
            "days": 1.0,
            "reasons": [
                {"code": "PP", "category": "physical_assault"},
                {"code": "BU", "category": "bullying"},
            ],
        },
    }
    schemas.get(mapping.EXCLUSION_RECORDED).validate(data)
    assert mapping.exclusion_native_id(body) == "exclusion|X999400114027|2026-11-24|suspension"


def test_maps_a_permanent_exclusion_without_sessions(schemas: SchemaRegistry) -> None:
    doc = sample_json("exclusion.json")
    doc["exclusion"] = {"category": "permanent", "startDate": "2026-12-01", "reasons": ["ow"]}
    data = mapping.exclusion_recorded(
        native.ExclusionRecorded.model_validate(doc), school_name=SCHOOL_NAME
    )
    assert data["exclusion"] == {
        "kind": "permanent_exclusion",
        "start_date": "2026-12-01",
        "reasons": [{"code": "OW", "category": "offensive_weapon"}],
    }
    schemas.get(mapping.EXCLUSION_RECORDED).validate(data)


def test_maps_a_child_missing_education(schemas: SchemaRegistry) -> None:
    body = native.ChildMissingEducation.model_validate(sample_json("child-missing-education.json"))
    data = mapping.missing_education_reported(body, school_name=SCHOOL_NAME)
    assert data["subject"]["upn"] == "X999400116002"
    assert data["missing_education"] == {
        "last_seen_date": "2026-10-16",
        "reason": "unknown_destination",
        "reported_by": {"role": "school_staff", "name": "Alex Teacher"},
        "reported_date": "2026-11-06",
    }
    schemas.get(mapping.MISSING_EDUCATION).validate(data)
    assert mapping.missing_education_native_id(body) == "missing|X999400116002|2026-10-16"


def test_maps_a_safeguarding_concern(schemas: SchemaRegistry) -> None:
    doc = sample_json("safeguarding-concern.json")
    body = native.SafeguardingConcern.model_validate(doc)
    data = mapping.safeguarding_concern(body, school_name=SCHOOL_NAME)
    assert data == {
        "subject": MAISIE,
        "school": SCHOOL_DATA,
        "concern": {
            "concern_id": "CONCERN-2026-0412",
            "category": "physical",
            "summary": doc["concern"]["summary"],
            "date": "2026-11-19",
            "referred_to_childrens_social_care": True,
            "referral_date": "2026-11-19",
        },
    }
    schemas.get(mapping.SAFEGUARDING_CONCERN).validate(data)
    assert mapping.safeguarding_concern_native_id(body) == "CONCERN-2026-0412"


def test_a_concern_kept_in_school_maps_without_a_referral(schemas: SchemaRegistry) -> None:
    doc = sample_json("safeguarding-concern.json")
    doc["concern"] |= {"referredToChildrensSocialCare": False, "category": "neglect"}
    del doc["concern"]["referralDate"]
    del doc["pupil"]["nhsNumber"]
    data = mapping.safeguarding_concern(
        native.SafeguardingConcern.model_validate(doc), school_name=SCHOOL_NAME
    )
    assert data["concern"]["referred_to_childrens_social_care"] is False
    assert "referral_date" not in data["concern"] and "nhs_number" not in data["subject"]
    schemas.get(mapping.SAFEGUARDING_CONCERN).validate(data)


def test_every_sample_csv_row_maps_to_a_valid_event(schemas: SchemaRegistry) -> None:
    for row in parse_attendance(sample("attendance.csv"), school=SCHOOL, period=AUTUMN):
        if row.concern.possible_sessions:
            data = mapping.attendance_concern(row.concern, school_name=SCHOOL_NAME)
            schemas.get(mapping.ATTENDANCE_CONCERN).validate(data)
    for ex in parse_exclusions(sample("exclusions.csv"), school=SCHOOL):
        data = mapping.exclusion_recorded(ex.record, school_name=SCHOOL_NAME)
        schemas.get(mapping.EXCLUSION_RECORDED).validate(data)


def test_an_attendance_concern_needs_a_possible_session() -> None:
    doc = sample_json("attendance-concern.json")
    doc |= {"possibleSessions": 0, "authorisedAbsences": 0, "unauthorisedAbsences": 0}
    doc["absenceCodes"] = []
    del doc["attendancePercentage"]
    with pytest.raises(InputRejected) as info:
        mapping.attendance_concern(
            native.AttendanceConcern.model_validate(doc), school_name=SCHOOL_NAME
        )
    assert (info.value.loc, info.value.rule) == (
        ["body", "possibleSessions"],
        "attendance.no_sessions",
    )


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("/", "attendance_code.not_absence"),
        ("ZZ", "attendance_code.unknown"),
        ("H", "attendance_code.withdrawn"),
    ],
)
def test_json_absence_codes_are_checked(code: str, rule: str) -> None:
    doc = sample_json("attendance-concern.json")
    doc["absenceCodes"][1]["code"] = code
    with pytest.raises(InputRejected) as info:
        mapping.attendance_concern(
            native.AttendanceConcern.model_validate(doc), school_name=SCHOOL_NAME
        )
    assert (info.value.loc, info.value.rule) == (["body", "absenceCodes", 1, "code"], rule)


Change = Callable[[dict[str, Any]], Any]
CASES: list[tuple[type[BaseModel], str, Change, tuple[str | int, ...], str]] = [
    (
        native.AttendanceConcern,
        "attendance-concern.json",
        lambda d: d["pupil"].update(upn="A999400116001"),
        ("pupil", "upn"),
        "upn.check_letter",
    ),
    (
        native.AttendanceConcern,
        "attendance-concern.json",
        lambda d: d["period"].update(end="2026-09-01"),
        ("period",),
        "period.order",
    ),
    (
        native.AttendanceConcern,
        "attendance-concern.json",
        lambda d: d["school"].update(urn="99900"),
        ("school", "urn"),
        "string_pattern_mismatch",
    ),
    (
        native.ExclusionRecorded,
        "exclusion.json",
        lambda d: d["exclusion"].update(reasons=["PP", "OT"]),
        ("exclusion", "reasons", 1),
        "exclusion_reason.unknown",
    ),
    (
        native.ExclusionRecorded,
        "exclusion.json",
        lambda d: d["exclusion"].pop("sessions"),
        ("exclusion",),
        "exclusion.sessions",
    ),
    (
        native.ChildMissingEducation,
        "child-missing-education.json",
        lambda d: d["report"].update(reportedDate="2026-10-01"),
        ("report",),
        "report.order",
    ),
    (
        native.ChildMissingEducation,
        "child-missing-education.json",
        lambda d: d["report"].update(reason="gone"),
        ("report", "reason"),
        "literal_error",
    ),
    (
        native.SafeguardingConcern,
        "safeguarding-concern.json",
        lambda d: d["concern"].update(summary="Maisie said " * 200),
        ("concern", "summary"),
        "string_too_long",
    ),
    (
        native.SafeguardingConcern,
        "safeguarding-concern.json",
        lambda d: d["concern"].update(referredToChildrensSocialCare=False),
        ("concern",),
        "concern.referral",
    ),
    (
        native.SafeguardingConcern,
        "safeguarding-concern.json",
        lambda d: d["concern"].update(category="domestic abuse at home"),
        ("concern", "category"),
        "literal_error",
    ),
    (
        native.SafeguardingConcern,
        "safeguarding-concern.json",
        lambda d: d["pupil"].update(nhsNumber="9990000124"),
        ("pupil", "nhsNumber"),
        "nhs_number.check_digit",
    ),
    (
        native.SafeguardingConcern,
        "safeguarding-concern.json",
        lambda d: d["pupil"].update(shoeSize="3"),
        ("pupil", "shoeSize"),
        "extra_forbidden",
    ),
]


@pytest.mark.parametrize(("model", "name", "change", "loc", "rule"), CASES)
def test_native_json_is_checked_without_echoing_values(
    model: type[BaseModel], name: str, change: Change, loc: tuple[str | int, ...], rule: str
) -> None:
    doc = copy.deepcopy(sample_json(name))
    change(doc)
    with pytest.raises(ValidationError) as info:
        model.model_validate(doc)
    (error,) = info.value.errors(include_input=False)
    assert (error["loc"], error["type"]) == (loc, rule)
    for value in ("A999400116001", "9990000124", "Maisie said", "domestic", "gone", "OT"):
        assert value not in error["msg"]


def test_the_schemas_list_the_codes_the_service_knows(schemas: SchemaRegistry) -> None:
    def enum(event_type: str, *path: str) -> list[Any]:
        node: Any = schemas.get(event_type).document
        for part in path:
            node = node["items"] if part == "[*]" else node["properties"][part]
        return list(node["enum"])

    absence = [c.code for c in ATTENDANCE_CODES.values() if c.category.is_absence]
    codes = ("attendance", "absence_codes", "[*]")
    assert enum(mapping.ATTENDANCE_CONCERN, *codes, "code") == absence
    reasons = ("exclusion", "reasons", "[*]")
    assert enum(mapping.EXCLUSION_RECORDED, *reasons, "code") == list(EXCLUSION_REASONS)
    assert enum(mapping.EXCLUSION_RECORDED, *reasons, "category") == list(ExclusionReasonCategory)
    assert enum(mapping.MISSING_EDUCATION, "missing_education", "reason") == list(
        get_args(native.MissingReason)
    )
    assert enum(mapping.SAFEGUARDING_CONCERN, "concern", "category") == list(
        get_args(native.Concern.model_fields["category"].annotation)
    )


def test_identifying_and_free_text_fields_are_marked(schemas: SchemaRegistry) -> None:
    """Protocols can only hide what the schemas mark: the pupil's identifiers, the concern's
    summary (it may name people; special category, as it may hold health information)."""
    for event_type in (
        mapping.ATTENDANCE_CONCERN,
        mapping.EXCLUSION_RECORDED,
        mapping.MISSING_EDUCATION,
        mapping.SAFEGUARDING_CONCERN,
    ):
        subject = schemas.get(event_type).document["properties"]["subject"]
        assert subject["required"] == ["upn"]
        assert all(p["x-identifying"] for p in subject["properties"].values())
    concern = schemas.get(mapping.SAFEGUARDING_CONCERN).document["properties"]["concern"]
    summary = concern["properties"]["summary"]
    assert summary["x-identifying"] and summary["x-special-category"]
    assert summary["maxLength"] == native.SUMMARY_MAX
