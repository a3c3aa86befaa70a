"""Mapping helpers every social care event shares: the subject, the authority, and the
location of a native field in a 422. Pure functions.

The plan events (:mod:`services.socialcare.mapping`) keep their own subject, which
requires an NHS number; every other event is keyed by whatever the child has: NHS
number, else UPN, else the authority's person id.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.backbone.errors import InputRejected
from services.socialcare.native import Contact
from services.socialcare.native_common import Person


def drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    """Optional details are left out of canonical data, never sent as null."""
    return {k: v for k, v in doc.items() if v is not None}


def iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def subject(child: Person, *, full: bool) -> dict[str, Any]:
    """The child's identifiers; with ``full``, also the names and date of birth given (an
    event that starts something introduces the child, one that ends it needs only ids)."""
    doc: dict[str, Any] = {
        "la_person_id": child.person_id,
        "nhs_number": child.nhs_number,
        "upn": child.upn,
    }
    if full:
        doc |= {
            "given_name": child.first_name,
            "family_name": child.last_name,
            "date_of_birth": iso(child.date_of_birth),
        }
    return drop_none(doc)


def authority(name: str, contact: Contact) -> dict[str, Any]:
    """Who holds the record and how to reach them: the directory's name, the team's contact."""
    return {"name": name, "contact": contact.model_dump(exclude_none=True)}


def not_before(
    later: date, earlier: date | None, *, loc: list[str | int], what: str, rule: str
) -> None:
    """InputRejected at ``loc`` when ``later`` is before ``earlier`` (the message names the
    fields' meaning, never their values)."""
    if earlier is not None and later < earlier:
        raise InputRejected(["body", *loc], what, rule)
