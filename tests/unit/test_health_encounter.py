"""POST /fhir/Encounter: an unscheduled-care Encounter to health.unscheduled_care.attendance,
from HL7's R4 encounter example (adapted) and a UK Core-shaped urgent treatment centre visit."""

from __future__ import annotations

from typing import Any

import pytest

from services.backbone.schemas import SchemaRegistry
from services.health.fhir_codes import ATTENDANCE
from tests.unit.health_data import Change, mapped, rejected, sample


def test_maps_the_adapted_hl7_emergency_encounter(schemas: SchemaRegistry) -> None:
    event = mapped("encounter-emergency")
    assert (event.event_type, event.native_id) == (ATTENDANCE, "Encounter/ED-78120")
    assert event.data == {
        "subject": {
            "nhs_number": "9990000239",
            "given_name": "Ollie",
            "family_name": "Examplechild",
            "date_of_birth": "2014-11-23",
            "postcode": "NS3 9ZD",
        },
        "attendance": {
            "encounter_id": "ED-78120",
            "arrival_time": "2026-11-22T18:05:00Z",
            "setting_type": "emergency_department",
            "site": {"ods_code": "RVR01", "name": "Riverside General Hospital ED"},
            "presenting_complaint_category": "poisoning",
            "clinical_notes": "Swallowed tablets found at home",
        },
    }
    schemas.get(ATTENDANCE).validate(event.data)


def test_a_uk_core_utc_visit_names_its_patient_by_nhs_number_and_its_site_by_organization(
    schemas: SchemaRegistry,
) -> None:
    event = mapped("ukcore-encounter-utc")
    assert event.data == {
        "subject": {"nhs_number": "9990000123"},
        "attendance": {
            "encounter_id": "UTC-20261123-0031",
            "arrival_time": "2026-11-23T16:20:00Z",
            "setting_type": "urgent_treatment_centre",
            "site": {"ods_code": "RVR02", "name": "Riverside Urgent Treatment Centre"},
            "presenting_complaint_category": "injury",
        },
    }
    schemas.get(ATTENDANCE).validate(event.data)


def _type(code: str) -> Change:
    return lambda d: d["type"][0]["coding"][0].update(code=code)


@pytest.mark.parametrize(
    ("klass", "code", "setting"),
    [
        ("EMER", "4525004", "emergency_department"),
        ("EMER", "185210004", "emergency_department"),
        ("EMER", "1", "emergency_department"),
        ("EMER", "319981000000104", "urgent_treatment_centre"),
        ("EMER", "113091000000109", "minor_injury_unit"),
        ("EMER", "287721000000104", "walk_in_centre"),
        ("AMB", "113091000000109", "minor_injury_unit"),
        ("AMB", "287721000000104", "walk_in_centre"),
        ("AMB", "185511000000107", "out_of_hours_gp"),
    ],
)
def test_the_setting_comes_from_the_encounter_type(klass: str, code: str, setting: str) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["class"]["code"] = klass
        _type(code)(doc)

    assert mapped("encounter-emergency", change).data["attendance"]["setting_type"] == setting


def test_the_unchanged_hl7_example_is_refused_as_not_emergency() -> None:
    error = rejected(sample("hl7-r4/encounter-example"), "Encounter")
    assert (error.loc, error.rule) == (["body", "class"], "encounter.class")


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (lambda d: d["class"].update(code="IMP"), ["body", "class"], "encounter.class"),
        # An ambulatory visit is unscheduled care only at a UTC, MIU, walk-in or OOH setting.
        (
            lambda d: (d["class"].update(code="AMB"), _type("4525004")(d)),
            ["body", "class"],
            "encounter.class",
        ),
        (
            lambda d: (d.pop("type"), d["class"].update(code="AMB")),
            ["body", "class"],
            "encounter.class",
        ),
        (lambda d: d.update(status="cancelled"), ["body", "status"], "encounter.status"),
        (
            lambda d: d["contained"][0]["identifier"][0].update(value="9990000230"),
            ["body", "contained", 0, "identifier", 0, "value"],
            "nhs_number.check_digit",
        ),
        (
            lambda d: d["contained"][0].update(identifier=[]),
            ["body", "contained", 0, "identifier"],
            "nhs_number.missing",
        ),
        (
            # A single resource has no Bundle to find Patient/example in.
            lambda d: d["subject"].update(reference="Patient/example"),
            ["body", "subject"],
            "encounter.subject",
        ),
        (
            lambda d: d["subject"].update(reference="#nobody"),
            ["body", "subject"],
            "encounter.subject",
        ),
        (lambda d: d.pop("subject"), ["body", "subject"], "encounter.subject"),
        (
            lambda d: d["serviceProvider"].pop("identifier"),
            ["body", "serviceProvider", "identifier"],
            "encounter.site",
        ),
        (lambda d: d.pop("id"), ["body", "id"], "resource.id"),
        (
            lambda d: d.update(resourceType="Observation"),
            ["body", "resourceType"],
            "fhir.resource_type",
        ),
        (lambda d: d.update(status=7), ["body", "status"], "fhir.invalid"),
        (lambda d: d.update(colour="red"), ["body", "colour"], "fhir.invalid"),
    ],
    ids=[
        "inpatient",
        "ambulatory-ed",
        "ambulatory-untyped",
        "cancelled",
        "bad-check-digit",
        "no-nhs-number",
        "relative-reference-alone",
        "no-such-contained",
        "no-subject",
        "no-ods-site",
        "no-id",
        "wrong-resource-type",
        "invalid-status-type",
        "unknown-element",
    ],
)
def test_rejections_name_the_element_and_rule(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(sample("encounter-emergency", change), "Encounter")
    assert (error.loc, error.rule) == (loc, rule)
    assert "999000023" not in error.msg


def test_a_logical_reference_with_another_identifier_system_has_no_nhs_number() -> None:
    def local_id(doc: dict[str, Any]) -> None:
        doc["subject"]["identifier"]["system"] = "https://riverside.example/Id/mrn"

    error = rejected(sample("ukcore-encounter-utc", local_id), "Encounter")
    assert (error.loc, error.rule) == (["body", "subject", "identifier"], "nhs_number.missing")


def test_a_logical_reference_with_a_bad_check_digit_is_refused_without_echoing_it() -> None:
    def typo(doc: dict[str, Any]) -> None:
        doc["subject"]["identifier"]["value"] = "9990000124"

    error = rejected(sample("ukcore-encounter-utc", typo), "Encounter")
    assert error.loc == ["body", "subject", "identifier", "value"]
    assert error.rule == "nhs_number.check_digit"
    assert "9990000124" not in error.msg


def test_a_reference_and_its_identifier_must_name_the_same_child() -> None:
    def both(doc: dict[str, Any]) -> None:
        doc["subject"]["identifier"] = {
            "system": "https://fhir.nhs.uk/Id/nhs-number",
            "value": "9990000123",
        }

    error = rejected(sample("encounter-emergency", both), "Encounter")
    assert (error.loc, error.rule) == (
        ["body", "subject", "identifier", "value"],
        "encounter.subject",
    )
    consistent = sample("encounter-emergency", both)
    consistent["subject"]["identifier"]["value"] = "999 000 0239"
    assert (
        mapped("encounter-emergency", lambda d: d.update(consistent)).data["subject"]["nhs_number"]
        == "9990000239"
    )


def test_a_contained_resource_of_an_unknown_type_is_invalid_fhir() -> None:
    error = rejected(
        sample("encounter-emergency", lambda d: d["contained"].append({"resourceType": "Dragon"})),
        "Encounter",
    )
    assert (error.loc, error.rule) == (["body"], "fhir.invalid")
