"""An unscheduled-care Encounter to the canonical ``health.unscheduled_care.attendance``.

| FHIR Encounter                                       | canonical                                |
| ---------------------------------------------------- | ---------------------------------------- |
| subject (see fhir_patient)                           | subject.*                                |
| id (or the entry's fullUrl)                          | attendance.encounter_id                  |
| period.start (date, time and offset)                 | attendance.arrival_time                  |
| class = v3-ActCode EMER (or AMB, settings below)     | (required)                               |
| type[].coding (SNOMED CT, SETTING_BY_TYPE)           | attendance.setting_type                  |
| serviceProvider.identifier (ODS), or its Organization | attendance.site.ods_code                |
| serviceProvider.display, else Organization.name      | attendance.site.name                     |
| reasonCode[0].coding (SNOMED CT, CATEGORY_BY_REASON) | attendance.presenting_complaint_category |
| reasonCode[0].text                                   | attendance.clinical_notes                |

An EMER encounter with no listed type is an emergency department attendance. An AMB
encounter is accepted only when its type names an urgent treatment centre, minor injury
unit, walk-in centre or out-of-hours service; any other class is refused
(``encounter.class``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.organization import Organization

from services.backbone.errors import InputRejected
from services.health.fhir_bundle import Located, References, native_id, short_id
from services.health.fhir_codes import (
    ACT_CODE_SYSTEM,
    AMBULATORY_SETTINGS,
    ARRIVED_STATUSES,
    ATTENDANCE,
    CATEGORY_BY_REASON,
    EMERGENCY_DEPARTMENT,
    ODS_SYSTEM,
    SETTING_BY_TYPE,
    SNOMED,
)
from services.health.fhir_parse import Mapped, body_loc
from services.health.fhir_patient import subject_of


def coded(concepts: Any, table: dict[str, str]) -> str | None:
    """The table's value for the first SNOMED CT coding it lists, among ``concepts``."""
    for concept in concepts or []:
        for coding in concept.coding or []:
            if coding.system == SNOMED and coding.code in table:
                return table[coding.code]
    return None


def _setting(enc: Located) -> str:
    klass = enc.resource.class_fhir
    setting = coded(enc.resource.type, SETTING_BY_TYPE)
    system_ok = klass is not None and klass.system in (None, ACT_CODE_SYSTEM)
    if system_ok and klass.code == "EMER":
        return setting or EMERGENCY_DEPARTMENT
    if system_ok and klass.code == "AMB" and setting in AMBULATORY_SETTINGS:
        return setting
    raise InputRejected(
        body_loc(*enc.loc, "class"),
        "Encounter.class must be v3-ActCode EMER (or AMB with an Encounter.type naming an "
        "urgent treatment centre, minor injury unit, walk-in centre or out-of-hours service)",
        "encounter.class",
    )


def _arrival(enc: Located) -> str:
    resource = enc.resource
    if resource.status not in ARRIVED_STATUSES:
        raise InputRejected(
            body_loc(*enc.loc, "status"),
            "Encounter.status must show the child arrived: " + ", ".join(sorted(ARRIVED_STATUSES)),
            "encounter.status",
        )
    start = resource.period.start if resource.period else None
    if start is None:
        raise InputRejected(
            body_loc(*enc.loc, "period", "start"),
            "the arrival time is required",
            "encounter.period",
        )
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise InputRejected(
            body_loc(*enc.loc, "period", "start"),
            "the arrival time must be a date and time with a time zone offset",
            "encounter.period",
        )
    return start.isoformat().replace("+00:00", "Z")


def ods_code(reference: Any, *, owner: Located, refs: References) -> tuple[str, str] | None:
    """(ODS code, name) of the organisation a Reference names by ODS identifier, or of the
    Organization it references (contained or in the Bundle); None if it names neither."""
    if reference is None:
        return None
    ident = reference.identifier
    if ident is not None and ident.system == ODS_SYSTEM and ident.value:
        ods = str(ident.value).strip().upper()
        return ods, reference.display or ods
    target = refs.resolve(reference.reference, owner) if reference.reference else None
    if target is None or not isinstance(target.resource, Organization):
        return None
    for org_ident in target.resource.identifier or []:
        if org_ident.system == ODS_SYSTEM and org_ident.value:
            ods = str(org_ident.value).strip().upper()
            return ods, reference.display or target.resource.name or ods
    return None


def attendance(enc: Located, refs: References) -> Mapped:
    """The attendance event an Encounter records, or InputRejected naming element and rule."""
    resource = enc.resource
    setting = _setting(enc)
    arrival = _arrival(enc)
    site = ods_code(resource.serviceProvider, owner=enc, refs=refs)
    if site is None:
        raise InputRejected(
            body_loc(*enc.loc, "serviceProvider", "identifier"),
            f"the site needs an identifier with system {ODS_SYSTEM} (or a reference to an "
            "Organization that has one)",
            "encounter.site",
        )
    subject = subject_of(
        resource.subject, owner=enc, refs=refs, element=("subject",), rule="encounter.subject"
    )
    key = native_id(enc)
    data: dict[str, Any] = {
        "encounter_id": short_id(enc),
        "arrival_time": arrival,
        "setting_type": setting,
        "site": {"ods_code": site[0], "name": site[1]},
        "presenting_complaint_category": coded(resource.reasonCode, CATEGORY_BY_REASON) or "other",
    }
    if resource.reasonCode and resource.reasonCode[0].text:
        data["clinical_notes"] = resource.reasonCode[0].text
    return Mapped(ATTENDANCE, {"subject": subject, "attendance": data}, key)
