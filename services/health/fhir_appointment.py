"""A missed appointment (Appointment.status ``noshow``) to the canonical
``health.appointment.was_not_brought``.

A child does not miss an appointment: an adult fails to bring them. NHS services record
such an appointment as "was not brought" rather than "did not attend", and follow it up as
a possible sign of neglect. In FHIR R4 it is an Appointment whose status is ``noshow``.

| FHIR Appointment                                            | canonical                      |
| ----------------------------------------------------------- | ------------------------------ |
| participant[actor is the Patient].actor (see fhir_patient)  | subject.*                      |
| id (or the entry's fullUrl)                                 | appointment.appointment_id     |
| start (an instant)                                          | appointment.start              |
| start, the date in its own offset                           | appointment.date               |
| serviceType[0], else specialty[0]: text, else coding.display | appointment.service.name      |
| that concept's first coding with system and code            | appointment.service.system / code |

Refused: any status but ``noshow`` (``appointment.status``: a booked, cancelled or
fulfilled appointment is not a missed one), no ``start`` (``appointment.start``), no
service named (``appointment.service``), not exactly one participant that is the Patient
(``appointment.participant``), and a patient 18 or over on the day when the date of
birth is known (``appointment.not_a_child``: an adult who misses an appointment was not
"not brought").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.patient import Patient

from services.backbone.errors import InputRejected
from services.health.fhir_bundle import Located, References, native_id, reference_type, short_id
from services.health.fhir_codes import NHS_NUMBER_SYSTEM, WAS_NOT_BROUGHT
from services.health.fhir_parse import Mapped, body_loc
from services.health.fhir_patient import age_on, subject_of

ADULT_AGE = 18


def _start(appt: Located) -> datetime:
    resource = appt.resource
    if resource.status != "noshow":
        raise InputRejected(
            body_loc(*appt.loc, "status"),
            "only an Appointment with status noshow is a missed appointment (was not brought)",
            "appointment.status",
        )
    if not isinstance(resource.start, datetime):
        raise InputRejected(
            body_loc(*appt.loc, "start"),
            "the appointment's start is required",
            "appointment.start",
        )
    return resource.start


def _service(appt: Located) -> dict[str, Any]:
    resource = appt.resource
    for concepts in (resource.serviceType, resource.specialty):
        for concept in concepts or []:
            codings = concept.coding or []
            name = concept.text or next((c.display for c in codings if c.display), None)
            if not name:
                continue
            service: dict[str, Any] = {"name": name}
            coded = next((c for c in codings if c.system and c.code), None)
            if coded is not None:
                service |= {"system": coded.system, "code": coded.code}
            return service
    raise InputRejected(
        body_loc(*appt.loc, "serviceType"),
        "name the service the child missed: serviceType or specialty, with text or a display",
        "appointment.service",
    )


def _patient_actor(appt: Located, refs: References) -> int:
    """The index of the one participant whose actor is the Patient."""
    found = []
    for i, participant in enumerate(appt.resource.participant or []):
        actor = participant.actor
        if actor is None:
            continue
        if actor.reference:
            target = refs.resolve(actor.reference, appt)
            kind = target.kind if target else actor.type or reference_type(actor.reference)
            if target is None and kind in (None, "Patient"):
                raise InputRejected(
                    body_loc(*appt.loc, "participant", i, "actor"),
                    "the reference resolves to no contained resource and no Bundle entry "
                    "(by fullUrl or Patient/<id>)",
                    "appointment.participant",
                )
            if target is not None and isinstance(target.resource, Patient):
                found.append(i)
        elif actor.identifier is not None and (
            actor.identifier.system == NHS_NUMBER_SYSTEM or actor.type == "Patient"
        ):
            found.append(i)
    if len(found) != 1:
        raise InputRejected(
            body_loc(*appt.loc, "participant"),
            "exactly one participant's actor must be the Patient (a reference to it, or an "
            f"identifier with system {NHS_NUMBER_SYSTEM}); found {len(found)}",
            "appointment.participant",
        )
    return found[0]


def was_not_brought(appt: Located, refs: References) -> Mapped:
    """The was-not-brought event a noshow Appointment records, or InputRejected."""
    start = _start(appt)
    service = _service(appt)
    i = _patient_actor(appt, refs)
    subject = subject_of(
        appt.resource.participant[i].actor,
        owner=appt,
        refs=refs,
        element=("participant", i, "actor"),
        rule="appointment.participant",
    )
    age = age_on(subject, start.date())
    if age is not None and age >= ADULT_AGE:
        raise InputRejected(
            body_loc(*appt.loc, "participant", i, "actor"),
            f"was not brought is for children: the patient was {ADULT_AGE} or over on the day",
            "appointment.not_a_child",
        )
    key = native_id(appt)
    data = {
        "appointment_id": short_id(appt),
        "date": start.date().isoformat(),
        "start": start.isoformat().replace("+00:00", "Z"),
        "service": service,
    }
    return Mapped(WAS_NOT_BROUGHT, {"subject": subject, "appointment": data}, key)
