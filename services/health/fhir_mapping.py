"""FHIR R4 in, canonical ``health.*`` events out: the health adapter's entry points.

| FHIR R4 resource                         | canonical event                    | module           |
| ---------------------------------------- | ---------------------------------- | ---------------- |
| Encounter, class EMER (AMB at UTC/MIU/...) | health.unscheduled_care.attendance | fhir_encounter |
| Flag, active, safeguarding SNOMED CT code | health.safeguarding.concern       | fhir_flag        |
| Appointment, status noshow               | health.appointment.was_not_brought | fhir_appointment |
| Patient (referenced, contained, in Bundle) | every event's ``subject``        | fhir_patient     |

Parsing and validation are in fhir_parse, Bundle rules and reference resolution in
fhir_bundle, code lists in fhir_codes. Everything is mapped before anything is published:
:func:`events_from_bundle` returns every entry's event or raises for the first bad one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

from services.backbone.errors import InputRejected
from services.health.fhir_appointment import was_not_brought
from services.health.fhir_bundle import Located, References, bundle_entries
from services.health.fhir_codes import ATTENDANCE, SAFEGUARDING_CONCERN, WAS_NOT_BROUGHT
from services.health.fhir_encounter import attendance
from services.health.fhir_flag import safeguarding_concern
from services.health.fhir_parse import (
    Mapped,
    body_loc,
    json_document,
    parse_bundle,
    parse_resource,
)
from services.health.fhir_patient import subject_from_patient

Mapper = Callable[[Located, References], Mapped]
MAPPERS: dict[str, Mapper] = {
    "Encounter": attendance,
    "Flag": safeguarding_concern,
    "Appointment": was_not_brought,
}

__all__ = [
    "ATTENDANCE",
    "MAPPERS",
    "SAFEGUARDING_CONCERN",
    "WAS_NOT_BROUGHT",
    "attendance_event_from_bundle",
    "attendance_from_bundle",
    "event_from_resource",
    "events_from_bundle",
    "events_from_bundle_body",
]


def event_from_resource(doc: Any, resource_type: str) -> Mapped:
    """The event one resource posted to ``/fhir/<resource_type>`` records. Its patient is a
    contained Patient or a logical reference by NHS number (there is no Bundle to find one
    in)."""
    resource = parse_resource(doc, resource_type)
    return MAPPERS[resource_type](Located(resource, ()), References())


def events_from_bundle(doc: Any) -> list[Mapped]:
    """One event per Encounter, Flag and Appointment entry, in entry order, or
    InputRejected for the first entry that cannot be mapped (its loc names the entry).

    Every Patient entry must carry a valid NHS number, referenced or not: the NHS number
    is the only identity the broker links a child by, and a bad one is bad input."""
    entries = bundle_entries(parse_bundle(doc))
    refs = References(entries)
    events = []
    for entry in entries:
        if isinstance(entry.resource, Patient):
            subject_from_patient(entry)
        elif entry.kind in MAPPERS:
            events.append(MAPPERS[entry.kind](entry, refs))
    return events


def events_from_bundle_body(body: bytes) -> list[Mapped]:
    """:func:`events_from_bundle` of the JSON document ``body`` holds: the whole of a large
    Bundle's parsing in one call, given to a worker process as bytes."""
    return events_from_bundle(json_document(body))


def attendance_from_bundle(doc: Any) -> dict[str, Any]:
    """The attendance data of a Bundle holding exactly one Encounter and its Patient."""
    data: dict[str, Any] = attendance_event_from_bundle(doc).data
    return data


def attendance_event_from_bundle(doc: Any) -> Mapped:
    """The attendance event of a Bundle holding exactly one Encounter and its Patient: what
    ``POST /fhir/Bundle`` has always taken. Other Bundles go to ``POST /fhir``."""
    bundle = parse_bundle(doc)
    for kind in (Patient, Encounter):
        found = [e for e in bundle.entry or [] if isinstance(e.resource, kind)]
        if len(found) != 1:
            raise InputRejected(
                body_loc("entry"),
                f"the Bundle must hold exactly one {kind.__name__}, found {len(found)}",
                "bundle.cardinality",
            )
    entries = bundle_entries(bundle)
    encounter = next(e for e in entries if isinstance(e.resource, Encounter))
    return attendance(encounter, References(entries))
