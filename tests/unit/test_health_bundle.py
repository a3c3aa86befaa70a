"""POST /fhir: Bundles of type transaction, batch, collection and message. Every entry is
mapped or the Bundle is refused with the entry's index; references resolve by fullUrl and by
Patient/<id>."""

from __future__ import annotations

from typing import Any

import pytest

from services.backbone.schemas import SchemaRegistry
from services.health.fhir_codes import ATTENDANCE, SAFEGUARDING_CONCERN, WAS_NOT_BROUGHT
from services.health.fhir_mapping import events_from_bundle
from tests.unit.health_data import BUNDLES, Change, entry, rejected, sample
from tests.unit.test_pure_core import CORE, PROGRAM, edge_libraries_loaded

MAISIE = {
    "nhs_number": "9990000123",
    "given_name": "Maisie",
    "family_name": "Testchild",
    "date_of_birth": "2016-04-09",
    "postcode": "NS1 4AP",
}


@pytest.mark.parametrize("name", BUNDLES)
def test_every_sample_bundle_maps_to_valid_events(name: str, schemas: SchemaRegistry) -> None:
    events = events_from_bundle(sample(name))
    assert events
    for event in events:
        schemas.get(event.event_type).validate(event.data)


def test_a_transaction_resolves_urn_uuid_and_relative_references() -> None:
    attendance, concern, missed = events_from_bundle(sample("bundle-transaction"))
    assert (attendance.event_type, attendance.native_id) == (ATTENDANCE, "Encounter/ED-78201")
    assert attendance.data["subject"] == MAISIE
    # The site is the Organization entry the Encounter references by urn:uuid.
    assert attendance.data["attendance"]["site"] == {
        "ods_code": "RVR01",
        "name": "Riverside General Hospital ED",
    }
    assert attendance.data["attendance"]["setting_type"] == "emergency_department"
    # Patient/123 is the entry whose fullUrl is http://example.org/fhir/Patient/123.
    assert (concern.event_type, concern.native_id) == (SAFEGUARDING_CONCERN, "Flag/SG-2026-0043")
    assert concern.data["subject"]["nhs_number"] == "9990000239"
    assert concern.data["concern"]["raised_by"] == {
        "ods_code": "RVR01",
        "name": "Riverside General Hospital ED",
    }
    assert (missed.event_type, missed.native_id) == (WAS_NOT_BROUGHT, "Appointment/OPA-55187")
    assert missed.data["subject"] == MAISIE
    assert missed.data["appointment"]["service"]["name"] == "Paediatric specialty"


def test_a_relative_reference_resolves_on_the_resource_id_too() -> None:
    def no_rest_url(doc: dict[str, Any]) -> None:
        doc["entry"][1]["fullUrl"] = "urn:uuid:1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a"

    (_, concern, _) = events_from_bundle(sample("bundle-transaction", no_rest_url))
    assert concern.data["subject"]["nhs_number"] == "9990000239"


def test_a_message_concern_about_an_unborn_child_is_keyed_to_the_mother() -> None:
    (concern,) = events_from_bundle(sample("bundle-message"))
    # No Flag id: the native id is the entry's fullUrl, so a re-sent message is the same event.
    assert concern.native_id == "Flag/urn:uuid:c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    assert concern.data["subject"]["nhs_number"] == "9990000409"
    assert concern.data["concern"]["unborn"] is True
    assert concern.data["concern"]["flag_id"] == "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"


def test_a_batch_maps_each_appointment_with_its_own_patient() -> None:
    first, second = events_from_bundle(sample("bundle-batch"))
    assert first.data["subject"] == {"nhs_number": "9990000344"}
    assert second.data["subject"] == {"nhs_number": "9990000239", "date_of_birth": "2014-11-23"}
    assert second.data["appointment"]["service"]["name"] == "Paediatric audiology"


def test_the_collection_the_old_route_took_maps_the_same_on_the_new_one() -> None:
    (attendance,) = events_from_bundle(sample("bundle-collection-attendance"))
    assert attendance.native_id == "Encounter/ED-77812"
    assert attendance.data["subject"] == MAISIE


def test_hl7s_transaction_example_is_refused_at_its_operation_entry() -> None:
    error = rejected(sample("hl7-r4/bundle-transaction"))
    assert error.loc == ["body", "entry", 6, "resource", "resourceType"]
    assert error.rule == "bundle.entry_type"


def _duplicate(i: int) -> Change:
    return lambda d: d["entry"].append(dict(d["entry"][i]))


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (lambda d: d.update(type="document"), ["body", "type"], "bundle.type"),
        (lambda d: d.update(type="searchset"), ["body", "type"], "bundle.type"),
        (
            lambda d: d["entry"][2]["request"].update(method="DELETE"),
            ["body", "entry", 2, "request"],
            "bundle.entry_request",
        ),
        (
            lambda d: d["entry"][4].pop("request"),
            ["body", "entry", 4, "request"],
            "bundle.entry_request",
        ),
        (
            lambda d: d.update(type="collection"),
            ["body", "entry", 0, "request"],
            "bundle.entry_request",
        ),
        (
            lambda d: d["entry"].append({"request": {"method": "POST", "url": "Flag"}}),
            ["body", "entry", 6, "resource"],
            "bundle.entry_type",
        ),
        (
            lambda d: d["entry"].append(
                {
                    "resource": {"resourceType": "Observation"},
                    "request": {"method": "POST", "url": "x"},
                }
            ),
            ["body", "entry", 6, "resource", "resourceType"],
            "bundle.entry_type",
        ),
        (_duplicate(2), ["body", "entry", 6, "fullUrl"], "bundle.full_url"),
        (
            lambda d: (
                _duplicate(2)(d),
                d["entry"][6].update(fullUrl="urn:uuid:00000000-0000-4000-8000-000000000001"),
            ),
            ["body", "entry", 6, "resource", "id"],
            "bundle.duplicate_id",
        ),
        (
            lambda d: entry(d, 1).update(id="124"),
            ["body", "entry", 1, "fullUrl"],
            "bundle.full_url",
        ),
        (
            lambda d: d.update(
                entry=[
                    e
                    for e in d["entry"]
                    if e["resource"]["resourceType"] in ("Patient", "Organization")
                ]
            ),
            ["body", "entry"],
            "bundle.empty",
        ),
        (
            lambda d: entry(d, 2)["subject"].update(
                reference="urn:uuid:ffffffff-0000-4000-8000-000000000000"
            ),
            ["body", "entry", 2, "resource", "subject"],
            "encounter.subject",
        ),
        (
            lambda d: entry(d, 4)["subject"].update(reference="Patient/999"),
            ["body", "entry", 4, "resource", "subject"],
            "flag.subject",
        ),
        (
            lambda d: entry(d, 4)["subject"].update(
                reference="urn:uuid:5b1e2f3a-0d4c-4e6f-8a9b-7c6d5e4f3a21"
            ),
            ["body", "entry", 4, "resource", "subject"],
            "flag.subject",
        ),
        (
            lambda d: entry(d, 5)["participant"][0]["actor"].update(reference="Patient/404"),
            ["body", "entry", 5, "resource", "participant", 0, "actor"],
            "appointment.participant",
        ),
        (
            lambda d: entry(d, 5).update(status="booked"),
            ["body", "entry", 5, "resource", "status"],
            "appointment.status",
        ),
        (
            lambda d: entry(d, 1)["identifier"][0].update(value="9990000230"),
            ["body", "entry", 1, "resource", "identifier", 0, "value"],
            "nhs_number.check_digit",
        ),
        (
            lambda d: entry(d, 0).update(birthDate="2016-02-30"),
            ["body", "entry", 0, "resource", "birthDate"],
            "fhir.invalid",
        ),
        (lambda d: d.update(resourceType="Flag"), ["body", "resourceType"], "fhir.resource_type"),
    ],
    ids=[
        "document",
        "searchset",
        "delete-entry",
        "entry-without-request",
        "collection-with-requests",
        "entry-without-resource",
        "unsupported-resource",
        "duplicate-full-url",
        "duplicate-id",
        "full-url-disagrees-with-id",
        "nothing-to-map",
        "unresolvable-urn",
        "unresolvable-relative",
        "reference-to-an-organization",
        "unresolvable-participant",
        "one-bad-entry",
        "bad-check-digit",
        "invalid-date",
        "not-a-bundle",
    ],
)
def test_rejections_name_the_entry_and_rule(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(sample("bundle-transaction", change))
    assert (error.loc, error.rule) == (loc, rule)
    assert "999000012" not in error.msg and "999000023" not in error.msg


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (
            lambda d: d["entry"].pop(0),
            ["body", "entry", 0, "resource", "resourceType"],
            "bundle.message_header",
        ),
        (
            lambda d: d["entry"].append(d["entry"].pop(0)),
            ["body", "entry", 0, "resource", "resourceType"],
            "bundle.message_header",
        ),
        (
            lambda d: d.update(type="collection"),
            ["body", "entry", 0, "resource", "resourceType"],
            "bundle.message_header",
        ),
        (
            # Every Patient entry needs a valid NHS number, referenced or not.
            lambda d: entry(d, 1).update(identifier=[]),
            ["body", "entry", 1, "resource", "identifier"],
            "nhs_number.missing",
        ),
    ],
    ids=["no-header", "header-last", "header-outside-a-message", "patient-without-nhs-number"],
)
def test_message_rules(change: Change, loc: list[Any], rule: str) -> None:
    error = rejected(sample("bundle-message", change))
    assert (error.loc, error.rule) == (loc, rule)


def test_an_unreferenced_patient_with_a_bad_nhs_number_still_rejects_the_bundle() -> None:
    def stray(doc: dict[str, Any]) -> None:
        doc["entry"].append(
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [
                        {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000125"}
                    ],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        )

    error = rejected(sample("bundle-batch", stray))
    assert error.loc == ["body", "entry", 2, "resource", "identifier", 0, "value"]
    assert error.rule == "nhs_number.check_digit"
    assert "9990000125" not in error.msg


@pytest.mark.parametrize("doc", [None, [], "Bundle", {"resourceType": 3}])
def test_a_document_that_is_not_a_bundle_object_is_refused(doc: Any) -> None:
    assert rejected(doc).rule == "fhir.resource_type"


def test_a_bundle_without_a_type_is_invalid_fhir() -> None:
    error = rejected(sample("bundle-batch", lambda d: d.pop("type")))
    assert (error.loc, error.rule) == (["body", "type"], "fhir.invalid")


def test_the_fhir_mapping_imports_no_web_framework() -> None:
    program = PROGRAM.replace(repr(CORE), repr(["services.health.fhir_mapping"]))
    assert edge_libraries_loaded(program) == []
