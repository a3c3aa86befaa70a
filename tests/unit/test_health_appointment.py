"""POST /fhir/Appointment: a noshow Appointment to health.appointment.was_not_brought, from
HL7's R4 appointment example (adapted: noshow, a contained child with an NHS number) and a
UK Core-shaped health visitor appointment naming the child by NHS number only."""

from __future__ import annotations

from typing import Any

import pytest

from services.backbone.schemas import SchemaRegistry
from services.health.fhir_codes import WAS_NOT_BROUGHT
from tests.unit.health_data import Change, mapped, rejected, sample


def test_maps_the_adapted_hl7_appointment(schemas: SchemaRegistry) -> None:
    event = mapped("appointment-was-not-brought")
    assert (event.event_type, event.native_id) == (WAS_NOT_BROUGHT, "Appointment/OPA-55120")
    assert event.data == {
        "subject": {
            "nhs_number": "9990000123",
            "given_name": "Maisie",
            "family_name": "Testchild",
            "date_of_birth": "2016-04-09",
            "postcode": "NS1 4AP",
        },
        "appointment": {
            "appointment_id": "OPA-55120",
            "date": "2026-11-25",
            "start": "2026-11-25T09:30:00Z",
            "service": {"name": "Community paediatrics review"},
        },
    }
    schemas.get(WAS_NOT_BROUGHT).validate(event.data)


def test_a_uk_core_appointment_names_the_child_by_nhs_number_only(
    schemas: SchemaRegistry,
) -> None:
    event = mapped("ukcore-appointment-logical-subject")
    assert event.data == {
        "subject": {"nhs_number": "9990000417"},
        "appointment": {
            "appointment_id": "CH-HV-88341",
            "date": "2026-11-24",
            "start": "2026-11-24T14:00:00Z",
            "service": {
                "name": "Health visitor 2 to 2.5 year review",
                "system": "https://riverside.example/CodeSystem/service",
                "code": "HV-2YR",
            },
        },
    }
    schemas.get(WAS_NOT_BROUGHT).validate(event.data)


def test_without_a_service_type_the_specialty_names_the_service() -> None:
    event = mapped("appointment-was-not-brought", lambda d: d.pop("serviceType"))
    assert event.data["appointment"]["service"] == {
        "name": "Paediatric specialty",
        "system": "http://snomed.info/sct",
        "code": "394537008",
    }


def test_the_date_is_the_day_in_the_offset_the_appointment_was_booked_in() -> None:
    event = mapped(
        "appointment-was-not-brought", lambda d: d.update(start="2026-07-01T00:15:00+01:00")
    )
    assert event.data["appointment"]["date"] == "2026-07-01"
    assert event.data["appointment"]["start"] == "2026-07-01T00:15:00+01:00"


def test_a_child_turns_eighteen_the_day_after() -> None:
    on_the_eve = mapped(
        "appointment-was-not-brought",
        lambda d: d["contained"][0].update(birthDate="2008-11-26"),
    )
    assert on_the_eve.data["subject"]["date_of_birth"] == "2008-11-26"
    error = rejected(
        sample(
            "appointment-was-not-brought",
            lambda d: d["contained"][0].update(birthDate="2008-11-25"),
        ),
        "Appointment",
    )
    assert (error.loc, error.rule) == (
        ["body", "participant", 0, "actor"],
        "appointment.not_a_child",
    )


@pytest.mark.parametrize("status", ["booked", "fulfilled", "cancelled", "arrived", "proposed"])
def test_only_a_noshow_is_a_missed_appointment(status: str) -> None:
    error = rejected(
        sample("appointment-was-not-brought", lambda d: d.update(status=status)), "Appointment"
    )
    assert (error.loc, error.rule) == (["body", "status"], "appointment.status")


def test_the_unchanged_hl7_example_is_refused_as_booked() -> None:
    error = rejected(sample("hl7-r4/appointment-example"), "Appointment")
    assert (error.loc, error.rule) == (["body", "status"], "appointment.status")


def test_the_hl7_example_set_to_noshow_has_a_patient_to_find() -> None:
    # Patient/example cannot be resolved by a single resource; Practitioner/example and
    # Location/1 are not the patient and are left alone.
    error = rejected(
        sample("hl7-r4/appointment-example", lambda d: d.update(status="noshow")), "Appointment"
    )
    assert (error.loc, error.rule) == (
        ["body", "participant", 0, "actor"],
        "appointment.participant",
    )


def _second_child(doc: dict[str, Any]) -> None:
    doc["participant"].append(
        {
            "actor": {
                "identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000239"}
            },
            "status": "accepted",
        }
    )


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (lambda d: d.pop("start"), ["body", "start"], "appointment.start"),
        (
            lambda d: (d.pop("serviceType"), d.pop("specialty")),
            ["body", "serviceType"],
            "appointment.service",
        ),
        (
            lambda d: (d["serviceType"][0].pop("text"), d.pop("specialty")),
            ["body", "serviceType"],
            "appointment.service",
        ),
        (lambda d: d["participant"].pop(0), ["body", "participant"], "appointment.participant"),
        (_second_child, ["body", "participant"], "appointment.participant"),
        (
            lambda d: d["participant"][0]["actor"].update(
                reference="urn:uuid:0f0e0d0c-0000-4000-8000-000000000000"
            ),
            ["body", "participant", 0, "actor"],
            "appointment.participant",
        ),
        (
            lambda d: d["participant"][0]["actor"].update(reference="#p2"),
            ["body", "participant", 0, "actor"],
            "appointment.participant",
        ),
        (
            lambda d: d["contained"][0]["identifier"][0].update(value="9990000124"),
            ["body", "contained", 0, "identifier", 0, "value"],
            "nhs_number.check_digit",
        ),
        (
            lambda d: d["contained"][0].update(birthDate="2016"),
            ["body", "contained", 0, "birthDate"],
            "patient.birth_date",
        ),
        (lambda d: d.pop("id"), ["body", "id"], "resource.id"),
        (lambda d: d.update(start="2026-11-25T09:30:00"), ["body", "start"], "fhir.invalid"),
    ],
    ids=[
        "no-start",
        "no-service",
        "service-without-a-name",
        "no-patient",
        "two-patients",
        "unresolvable-urn",
        "no-such-contained",
        "bad-check-digit",
        "partial-birth-date",
        "no-id",
        "start-without-zone",
    ],
)
def test_rejections_name_the_element_and_rule(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(sample("appointment-was-not-brought", change), "Appointment")
    assert (error.loc, error.rule) == (loc, rule)
    assert "999000012" not in error.msg
