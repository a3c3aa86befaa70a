"""The console's search form, as typed, into the API's own models (ChildQuery,
DecisionFilters): the console accepts exactly what the API accepts, and says why not in
the API's words. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from pydantic import ValidationError

from services.audit.child import ChildQuery
from services.audit.routes_search import DecisionFilters

PAGE = 50
KINDS = {"nhs_number": "NHS number", "upn": "UPN", "la_person_id": "LA person id"}


@dataclass(frozen=True)
class SearchForm:
    kind: str = "nhs_number"
    identifier: str = ""
    local_authority: str = ""
    recipient: str = ""
    source_agency: str = ""
    protocol_id: str = ""
    purpose: str = ""
    decision: str = ""
    since: str = ""  # YYYY-MM-DD, from the day's start (UTC)
    until: str = ""  # YYYY-MM-DD, to the day's end (UTC)
    offset: str = "0"

    @classmethod
    def of(cls, posted: Mapping[str, str]) -> SearchForm:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v.strip() for k, v in posted.items() if k in names})

    def without_offset(self) -> dict[str, str]:
        """The fields to carry into the next page's form (all but the offset)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "offset"}


def child_of(form: SearchForm) -> ChildQuery | None:
    """The child the form names, if any (raises ValidationError as the API would)."""
    if not form.identifier:
        return None
    kind = form.kind if form.kind in KINDS else "nhs_number"
    given: dict[str, str] = {kind: form.identifier}
    if kind == "la_person_id":
        given["local_authority"] = form.local_authority
    return ChildQuery.model_validate(given)


def filters_of(form: SearchForm) -> DecisionFilters:
    """The filters as the API takes them: a page of PAGE, dates as whole days."""
    given: dict[str, object] = {
        name: value
        for name in ("recipient", "source_agency", "protocol_id", "purpose", "decision")
        if (value := getattr(form, name))
    }
    if form.since:
        given["since"] = _day(form.since, "since")
    if form.until:
        until = _day(form.until, "until")
        # The end of the day given; the last day there is has no day after it.
        given["until"] = until + timedelta(days=1) if until.date() < date.max else until
    given["offset"] = form.offset or "0"
    given["limit"] = PAGE
    return DecisionFilters.model_validate(given)


def _day(value: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time())
    except ValueError:
        raise ValidationError.from_exception_data(
            "SearchForm",
            [
                {
                    "type": "date_from_datetime_parsing",
                    "loc": (name,),
                    "input": value,
                    "ctx": {"error": "a date is YYYY-MM-DD"},
                }
            ],
        ) from None


def problems(exc: ValidationError) -> list[str]:
    """What is wrong, field by field, as a person reads it."""
    out = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "the form"
        out.append(f"{where.replace('_', ' ')}: {error['msg']}")
    return out
