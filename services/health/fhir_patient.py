"""The canonical ``subject`` of an event: from a Patient, or from an NHS number identifier.

A resource names its patient in one of three ways, all accepted:

- a reference to a Patient it contains: ``{"reference": "#child"}``;
- a reference to a Patient entry of the same Bundle: ``{"reference": "urn:uuid:..."}`` or
  ``{"reference": "Patient/123"}``;
- a logical reference, no Patient resource at all:
  ``{"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "..."}}``.

| FHIR                                                      | canonical                        |
| --------------------------------------------------------- | -------------------------------- |
| Patient.identifier[system=nhs-number].value               | subject.nhs_number               |
| (logical reference) identifier[system=nhs-number].value   | subject.nhs_number (only)        |
| Patient.name[0].given[0] / family                         | subject.given_name / family_name |
| Patient.birthDate (a full date)                           | subject.date_of_birth            |
| Patient.address[0].postalCode (upper case)                | subject.postcode                 |

The NHS number's check digit is validated (``nhs_number.check_digit``, ``nhs_number.format``);
no message ever quotes it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fhir.resources.R4B.patient import Patient

from services.backbone.errors import InputRejected
from services.backbone.identifiers import nhs_number_rule, normalise_nhs_number
from services.health.fhir_bundle import Located, References
from services.health.fhir_codes import NHS_NUMBER_SYSTEM
from services.health.fhir_parse import Loc, body_loc


def checked_nhs_number(value: str | None, loc: Loc) -> str:
    """Ten digits whose check digit matches, or InputRejected naming the rule broken."""
    broken = nhs_number_rule(value or "")
    if broken:
        rule, problem = broken
        raise InputRejected(body_loc(*loc), problem, rule)
    return normalise_nhs_number(value or "")


def _nhs_number(patient: Located) -> str:
    for i, ident in enumerate(patient.resource.identifier or []):
        if ident.system == NHS_NUMBER_SYSTEM and ident.value:
            return checked_nhs_number(ident.value, (*patient.loc, "identifier", i, "value"))
    raise InputRejected(
        body_loc(*patient.loc, "identifier"),
        f"the Patient needs an identifier with system {NHS_NUMBER_SYSTEM}",
        "nhs_number.missing",
    )


def subject_from_patient(patient: Located) -> dict[str, Any]:
    """The subject a Patient describes: NHS number (required) and what demographics it has."""
    resource = patient.resource
    subject: dict[str, Any] = {"nhs_number": _nhs_number(patient)}
    if resource.name:
        name = resource.name[0]
        if name.given:
            subject["given_name"] = name.given[0]
        if name.family:
            subject["family_name"] = name.family
    if resource.birthDate:
        if not isinstance(resource.birthDate, date):  # FHIR allows "2016" or "2016-04"
            raise InputRejected(
                body_loc(*patient.loc, "birthDate"),
                "birthDate must be a full date (YYYY-MM-DD)",
                "patient.birth_date",
            )
        subject["date_of_birth"] = resource.birthDate.isoformat()
    if resource.address and resource.address[0].postalCode:
        subject["postcode"] = resource.address[0].postalCode.strip().upper()
    return subject


def _from_identifier(ident: Any, loc: Loc) -> dict[str, Any]:
    if ident.system != NHS_NUMBER_SYSTEM or not ident.value:
        raise InputRejected(
            body_loc(*loc, "identifier"),
            f"a logical reference to the patient needs an identifier with system "
            f"{NHS_NUMBER_SYSTEM} and a value",
            "nhs_number.missing",
        )
    return {"nhs_number": checked_nhs_number(ident.value, (*loc, "identifier", "value"))}


def _resolve(
    reference: Any, *, owner: Located, refs: References, loc: Loc, rule: str
) -> Located | dict[str, Any]:
    """The Patient a Reference points at (located), or a logical reference's subject."""
    if reference.reference:
        target = refs.resolve(reference.reference, owner)
        if target is None:
            raise InputRejected(
                body_loc(*loc),
                "the reference resolves to no contained resource and no Bundle entry "
                "(by fullUrl or Patient/<id>); a single resource can use a contained Patient "
                "or an NHS number identifier instead",
                rule,
            )
        if not isinstance(target.resource, Patient):
            raise InputRejected(body_loc(*loc), "the reference must name a Patient", rule)
        return target
    if reference.identifier is not None:
        return _from_identifier(reference.identifier, loc)
    raise InputRejected(
        body_loc(*loc), "a reference to the Patient or an NHS number identifier is required", rule
    )


def subject_of(
    reference: Any, *, owner: Located, refs: References, element: Loc, rule: str
) -> dict[str, Any]:
    """The canonical subject of ``owner``'s ``element`` (a Reference), or InputRejected
    under ``rule`` when it is missing, unresolvable or not a Patient."""
    loc = (*owner.loc, *element)
    if reference is None:
        raise InputRejected(
            body_loc(*loc),
            "a reference to the Patient or an NHS number identifier is required",
            rule,
        )
    found = _resolve(reference, owner=owner, refs=refs, loc=loc, rule=rule)
    if not isinstance(found, Located):
        return found
    subject = subject_from_patient(found)
    ident = reference.identifier
    if ident is not None and ident.system == NHS_NUMBER_SYSTEM and ident.value:
        named = checked_nhs_number(ident.value, (*loc, "identifier", "value"))
        if named != subject["nhs_number"]:
            raise InputRejected(
                body_loc(*loc, "identifier", "value"),
                "the reference and its identifier name different NHS numbers",
                rule,
            )
    return subject


def age_on(subject: dict[str, Any], day: date) -> int | None:
    """The subject's age in whole years on ``day``, if the date of birth is known."""
    if "date_of_birth" not in subject:
        return None
    born = date.fromisoformat(subject["date_of_birth"])
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
