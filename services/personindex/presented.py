"""What an event's subject says about who the child is, for the matching rules. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.personindex.matching import Demographics, Presented


def presented_from_subject(
    subject: Mapping[str, Any], *, agency: str, is_authority: bool
) -> Presented:
    """The identifiers (and, when all four are there, demographics) of a canonical
    subject. An LA person id counts only from a local authority, in its own namespace."""
    person = subject.get("la_person_id")
    demographics = None
    fields = [subject.get(k) for k in ("family_name", "given_name", "date_of_birth", "postcode")]
    if all(isinstance(v, str) and v.strip() for v in fields):
        family, given, born, postcode = (str(v) for v in fields)
        try:
            demographics = Demographics(family, given, date.fromisoformat(born), postcode)
        except ValueError:
            demographics = None
    return Presented(
        nhs_number=_text(subject.get("nhs_number")),
        upn=_text(subject.get("upn")),
        la_person=(agency, person) if is_authority and isinstance(person, str) else None,
        demographics=demographics,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
