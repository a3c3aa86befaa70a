"""FHIR R4 Bundle (Encounter of class EMER + Patient) to the canonical attendance event."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from deploy.devstack.demo import scenario
from services.backbone.errors import InputRejected
from services.backbone.schemas import SchemaRegistry
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle

Change = Callable[[dict[str, Any]], Any]


def bundle(
    change: Change | None = None, child: scenario.Child = scenario.ON_PLAN
) -> dict[str, Any]:
    doc = copy.deepcopy(scenario.attendance_bundle(child))
    if change:
        change(doc)
    return doc


def patient(doc: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = doc["entry"][0]["resource"]
    return resource


def encounter(doc: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = doc["entry"][1]["resource"]
    return resource


def rejected(doc: Any) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        attendance_from_bundle(doc)
    return info.value


def test_maps_the_scenario_bundle(schemas: SchemaRegistry) -> None:
    data = attendance_from_bundle(bundle())
    assert data == {
        "subject": {
            "nhs_number": "9990000123",
            "given_name": "Maisie",
            "family_name": "Testchild",
            "date_of_birth": "2016-04-09",
            "postcode": "NS1 4AP",
        },
        "attendance": {
            "encounter_id": "ED-77812",
            "arrival_time": "2026-11-20T21:14:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
            "presenting_complaint_category": "injury",
            "clinical_notes": "Bruising to left forearm, history inconsistent",
        },
    }
    schemas.get(ATTENDANCE).validate(data)


def test_normalises_what_people_type() -> None:
    def typed(doc: dict[str, Any]) -> None:
        patient(doc)["identifier"][0]["value"] = "999 000 0123"
        patient(doc)["address"][0]["postalCode"] = " ns1 4ap "
        encounter(doc)["serviceProvider"]["identifier"]["value"] = "rvr01"

    data = attendance_from_bundle(bundle(typed))
    assert data["subject"]["nhs_number"] == "9990000123"
    assert data["subject"]["postcode"] == "NS1 4AP"
    assert data["attendance"]["site"]["ods_code"] == "RVR01"


def test_optional_elements_may_be_absent(schemas: SchemaRegistry) -> None:
    def bare(doc: dict[str, Any]) -> None:
        for key in ("name", "birthDate", "address"):
            del patient(doc)[key]
        for key in ("type", "reasonCode", "id"):
            del encounter(doc)[key]
        del encounter(doc)["serviceProvider"]["display"]

    data = attendance_from_bundle(bundle(bare))
    assert data["subject"] == {"nhs_number": "9990000123"}
    assert data["attendance"] == {
        "encounter_id": "encounter-ed-77812",
        "arrival_time": "2026-11-20T21:14:00Z",
        "setting_type": "emergency_department",
        "site": {"ods_code": "RVR01", "name": "RVR01"},
        "presenting_complaint_category": "other",
    }
    schemas.get(ATTENDANCE).validate(data)


def test_an_arrival_in_another_offset_keeps_its_offset() -> None:
    data = attendance_from_bundle(
        scenario.attendance_bundle(scenario.ON_PLAN, arrival="2026-07-01T09:30:00+01:00")
    )
    assert data["attendance"]["arrival_time"] == "2026-07-01T09:30:00+01:00"


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("75478009", "poisoning"),
        ("248062006", "self_harm"),
        ("74732009", "mental_health"),
        ("1", "other"),
    ],
)
def test_presenting_complaint_category(code: str, category: str) -> None:
    doc = bundle(lambda d: encounter(d)["reasonCode"][0]["coding"][0].update(code=code))
    assert attendance_from_bundle(doc)["attendance"]["presenting_complaint_category"] == category


def test_a_bad_check_digit_points_at_the_identifier_value() -> None:
    error = rejected(bundle(lambda d: patient(d)["identifier"][0].update(value="9990000124")))
    assert error.loc == ["body", "entry", 0, "resource", "identifier", 0, "value"]
    assert error.rule == "nhs_number.check_digit"
    assert "9990000124" not in error.msg


def test_the_nhs_number_is_found_among_other_identifiers() -> None:
    def other_first(doc: dict[str, Any]) -> None:
        patient(doc)["identifier"].insert(0, {"system": "https://example.org/mrn", "value": "M1"})
        patient(doc)["identifier"][1]["value"] = "9990000124"

    assert rejected(bundle(other_first)).loc[-2:] == [1, "value"]


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (
            lambda d: encounter(d)["class"].update(code="AMB"),
            ["body", "entry", 1, "resource", "class"],
            "encounter.class",
        ),
        (
            lambda d: encounter(d)["class"].update(system="http://example.org/classes"),
            ["body", "entry", 1, "resource", "class"],
            "encounter.class",
        ),
        (
            lambda d: d["entry"].pop(0),
            ["body", "entry"],
            "bundle.cardinality",
        ),
        (
            lambda d: d["entry"].append(copy.deepcopy(d["entry"][0])),
            ["body", "entry"],
            "bundle.cardinality",
        ),
        (
            lambda d: d["entry"].pop(1),
            ["body", "entry"],
            "bundle.cardinality",
        ),
        (
            lambda d: patient(d).update(identifier=[]),
            ["body", "entry", 0, "resource", "identifier"],
            "nhs_number.missing",
        ),
        (
            lambda d: encounter(d).update(status="planned"),
            ["body", "entry", 1, "resource", "status"],
            "encounter.status",
        ),
        (
            lambda d: encounter(d)["period"].pop("start"),
            ["body", "entry", 1, "resource", "period", "start"],
            "encounter.period",
        ),
        (
            lambda d: encounter(d).pop("serviceProvider"),
            ["body", "entry", 1, "resource", "serviceProvider", "identifier"],
            "encounter.site",
        ),
        (
            lambda d: encounter(d)["subject"].update(reference="Patient/someone-else"),
            ["body", "entry", 1, "resource", "subject"],
            "encounter.subject",
        ),
        (
            lambda d: d.update(resourceType="Patient"),
            ["body", "resourceType"],
            "fhir.resource_type",
        ),
        (
            lambda d: patient(d).update(birthDate="2016-13-45"),
            ["body", "entry", 0, "resource", "birthDate"],
            "fhir.invalid",
        ),
        (
            lambda d: encounter(d)["period"].update(start="20/11/2026 21:14"),
            ["body", "entry", 1, "resource", "period", "start"],
            "fhir.invalid",
        ),
        (
            # FHIR requires a time zone on a dateTime that has a time.
            lambda d: encounter(d)["period"].update(start="2026-11-20T21:14:00"),
            ["body", "entry", 1, "resource", "period", "start"],
            "fhir.invalid",
        ),
    ],
    ids=[
        "class-not-emer",
        "class-other-system",
        "no-patient",
        "two-patients",
        "no-encounter",
        "no-nhs-number",
        "not-arrived",
        "no-arrival-time",
        "no-ods-site",
        "subject-not-the-patient",
        "not-a-bundle",
        "invalid-birth-date",
        "invalid-arrival-time",
        "arrival-time-without-zone",
    ],
)
def test_rejections_name_the_element_and_rule(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(bundle(change))
    assert (error.loc, error.rule) == (loc, rule)
    assert "9990000123" not in error.msg


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    assert rejected(["Bundle"]).rule == "fhir.resource_type"


def test_a_fhir_validation_message_says_what_is_wrong() -> None:
    error = rejected(bundle(lambda d: patient(d).update(birthDate="2016-13-45")))
    assert error.msg.startswith("FHIR R4 validation: ")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: patient(d).update(birthDate="2016"),
        lambda d: patient(d).update(birthDate="2016-04"),
        lambda d: encounter(d)["period"].update(start="2026-11"),
    ],
    ids=["birth-year", "birth-month", "arrival-month"],
)
def test_a_partial_fhir_date_is_rejected_not_a_crash(change: Change) -> None:
    error = rejected(bundle(change))
    assert error.loc[:2] == ["body", "entry"]
