"""Map a FHIR R4 Bundle (an Encounter of class EMER and its Patient) to the canonical
``health.unscheduled_care.attendance`` event.

Models come from ``fhir.resources.R4B``: R4B changed nothing in Encounter or Patient from
R4, and fhir.resources ships no separate R4 package.

| FHIR                                                        | canonical                       |
| ----------------------------------------------------------- | ------------------------------- |
| Patient.identifier[system=https://fhir.nhs.uk/Id/nhs-number] | subject.nhs_number              |
| Patient.name[0].given[0] / family                           | subject.given_name / family_name|
| Patient.birthDate                                           | subject.date_of_birth           |
| Patient.address[0].postalCode                               | subject.postcode                |
| Encounter.id (or the entry's fullUrl)                       | attendance.encounter_id         |
| Encounter.period.start                                      | attendance.arrival_time         |
| Encounter.class = v3-ActCode EMER                           | attendance.setting_type (below) |
| Encounter.serviceProvider.identifier (ODS) / display        | attendance.site.ods_code / name |
| Encounter.reasonCode[0].coding (SNOMED CT, see below)  | attendance.presenting_complaint_cat. |
| Encounter.reasonCode[0].text                                | attendance.clinical_notes       |
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from services.backbone.agency_app import InputRejected
from services.backbone.identifiers import nhs_number_rule, normalise_nhs_number

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
ATTENDANCE = "health.unscheduled_care.attendance"
ARRIVED_STATUSES = {"arrived", "triaged", "in-progress", "onleave", "finished"}
# Setting type by Encounter.type SNOMED CT code; an EMER encounter without one is an ED.
# Other unscheduled-care settings (UTC, MIU, walk-in) come with the full health adapter.
SETTING_BY_TYPE = {
    "4525004": "emergency_department",  # Emergency department patient visit
}
# Presenting complaint category by SNOMED CT reason code.
CATEGORY_BY_REASON = {
    "417163006": "injury",  # Traumatic AND/OR non-traumatic injury
    "125605004": "injury",  # Fracture of bone
    "75478009": "poisoning",  # Poisoning
    "248062006": "self_harm",  # Self-injurious behaviour
    "74732009": "mental_health",  # Mental disorder
    "64572001": "illness",  # Disease
}


def _loc(*parts: str | int) -> list[str | int]:
    return ["body", *parts]


def _parse(doc: Any) -> Bundle:
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        raise InputRejected(_loc("resourceType"), "expected a FHIR Bundle", "fhir.resource_type")
    try:
        return Bundle.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputRejected(
            _loc(*first["loc"]), f"FHIR R4 validation: {first['msg']}", "fhir.invalid"
        ) from None


def _one(bundle: Bundle, kind: type[Any]) -> tuple[int, Any, str | None]:
    found = [
        (i, e.resource, e.fullUrl)
        for i, e in enumerate(bundle.entry or [])
        if isinstance(e.resource, kind)
    ]
    if len(found) != 1:
        raise InputRejected(
            _loc("entry"),
            f"the Bundle must hold exactly one {kind.__name__}, found {len(found)}",
            "bundle.cardinality",
        )
    return found[0]


def _nhs_number(patient: Patient, index: int) -> str:
    for i, ident in enumerate(patient.identifier or []):
        if ident.system == NHS_NUMBER_SYSTEM and ident.value:
            broken = nhs_number_rule(ident.value)
            if broken:
                rule, problem = broken
                raise InputRejected(
                    _loc("entry", index, "resource", "identifier", i, "value"), problem, rule
                )
            return normalise_nhs_number(ident.value)
    raise InputRejected(
        _loc("entry", index, "resource", "identifier"),
        f"the Patient needs an identifier with system {NHS_NUMBER_SYSTEM}",
        "nhs_number.missing",
    )


def _subject(patient: Patient, index: int) -> dict[str, Any]:
    subject: dict[str, Any] = {"nhs_number": _nhs_number(patient, index)}
    if patient.name:
        name = patient.name[0]
        if name.given:
            subject["given_name"] = name.given[0]
        if name.family:
            subject["family_name"] = name.family
    if patient.birthDate:
        if not isinstance(patient.birthDate, date):  # FHIR allows "2016" or "2016-04"
            raise InputRejected(
                _loc("entry", index, "resource", "birthDate"),
                "birthDate must be a full date (YYYY-MM-DD)",
                "patient.birth_date",
            )
        subject["date_of_birth"] = patient.birthDate.isoformat()
    if patient.address and patient.address[0].postalCode:
        subject["postcode"] = patient.address[0].postalCode.strip().upper()
    return subject


def _coded(concepts: Any, table: dict[str, str]) -> str | None:
    for concept in concepts or []:
        for coding in concept.coding or []:
            if coding.system == SNOMED and coding.code in table:
                return table[coding.code]
    return None


def _attendance(enc: Encounter, index: int, full_url: str | None) -> dict[str, Any]:
    where = ("entry", index, "resource")
    klass = enc.class_fhir
    if klass is None or klass.code != "EMER" or klass.system not in (None, ACT_CODE_SYSTEM):
        raise InputRejected(
            _loc(*where, "class"), "Encounter.class must be v3-ActCode EMER", "encounter.class"
        )
    if enc.status not in ARRIVED_STATUSES:
        raise InputRejected(
            _loc(*where, "status"),
            "Encounter.status must show the child arrived: " + ", ".join(sorted(ARRIVED_STATUSES)),
            "encounter.status",
        )
    if enc.period is None or enc.period.start is None:
        raise InputRejected(
            _loc(*where, "period", "start"), "the arrival time is required", "encounter.period"
        )
    provider = enc.serviceProvider
    ident = provider.identifier if provider else None
    ods = ident.value if ident and ident.system == ODS_SYSTEM else None
    if not ods or provider is None:
        raise InputRejected(
            _loc(*where, "serviceProvider", "identifier"),
            f"the site needs an identifier with system {ODS_SYSTEM}",
            "encounter.site",
        )
    arrival = enc.period.start
    if not isinstance(arrival, datetime) or arrival.tzinfo is None:
        raise InputRejected(
            _loc(*where, "period", "start"),
            "the arrival time must be a date and time with a time zone offset",
            "encounter.period",
        )
    attendance: dict[str, Any] = {
        "encounter_id": enc.id or (full_url or "").rsplit(":", 1)[-1] or "unknown",
        "arrival_time": arrival.isoformat().replace("+00:00", "Z"),
        "setting_type": _coded(enc.type, SETTING_BY_TYPE) or "emergency_department",
        "site": {"ods_code": ods.upper(), "name": provider.display or ods.upper()},
        "presenting_complaint_category": _coded(enc.reasonCode, CATEGORY_BY_REASON) or "other",
    }
    if enc.reasonCode and enc.reasonCode[0].text:
        attendance["clinical_notes"] = enc.reasonCode[0].text
    return attendance


def attendance_from_bundle(doc: Any) -> dict[str, Any]:
    """The canonical attendance data, or InputRejected naming the FHIR element and rule."""
    bundle = _parse(doc)
    p_index, patient, p_url = _one(bundle, Patient)
    e_index, encounter, e_url = _one(bundle, Encounter)
    ref = encounter.subject.reference if encounter.subject else None
    if ref not in {p_url, f"Patient/{patient.id}" if patient.id else None} or ref is None:
        raise InputRejected(
            _loc("entry", e_index, "resource", "subject"),
            "Encounter.subject must reference the Bundle's Patient",
            "encounter.subject",
        )
    return {
        "subject": _subject(patient, p_index),
        "attendance": _attendance(encounter, e_index, e_url),
    }
