"""A number in a JSON request body is a JSON number, a boolean is true or false, and a date
is ISO 8601 text: other JSON types are refused with 422, as the OpenAPI documents say.
pydantic's lax mode read true as 1, "12" as 12, "yes" as true and 0 as 1 January 1970, and
the fuzzer found a search that took ``"offset": false``. Every such field of every request
body model, nested models too, is checked on its own type."""

from __future__ import annotations

import typing
from datetime import date, datetime
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from consent.registry.api import ConsentIn, SubjectQuery
from consent.registry.reidentify import ReidentifyIn
from services.agency.routes import RecallRequest
from services.audit.models import OverrideReviewIn
from services.audit.routes_search import ChildSearch
from services.delivery.api_models import AckIn, SubscriptionCreate, SubscriptionUpdate
from services.education import native as education
from services.socialcare import native, native_cin, native_looked_after
from services.witness.app import CosignIn

BODIES: list[type[BaseModel]] = [
    AckIn,
    ChildSearch,
    ConsentIn,
    CosignIn,
    OverrideReviewIn,
    RecallRequest,
    ReidentifyIn,
    SubjectQuery,
    SubscriptionCreate,
    SubscriptionUpdate,
    education.AttendanceConcern,
    education.ChildMissingEducation,
    education.ExclusionRecorded,
    education.SafeguardingConcern,
    native.ChildProtectionPlanEnded,
    native.ChildProtectionPlanStarted,
    native_cin.AssessmentCompleted,
    native_cin.CaseClosed,
    native_cin.ReferralReceived,
    native_looked_after.LookedAfterEnded,
    native_looked_after.LookedAfterStarted,
]


def _inner(annotation: Any) -> list[Any]:
    """The types ``annotation`` is made of (unions, lists and Annotated opened)."""
    origin = typing.get_origin(annotation)
    if origin is None:
        return [annotation]
    if origin is Annotated:
        return _inner(typing.get_args(annotation)[0])
    return [t for arg in typing.get_args(annotation) for t in _inner(arg)]


def fields_of(
    model: type[BaseModel], types: tuple[type, ...], seen: set[type[BaseModel]] | None = None
) -> list[tuple[str, FieldInfo]]:
    """Every field of ``model``, and of the models inside it, of one of ``types``."""
    seen = set() if seen is None else seen
    seen.add(model)
    found = []
    for name, info in model.model_fields.items():
        kinds = _inner(info.annotation)
        if any(k in types for k in kinds):
            found.append((f"{model.__name__}.{name}", info))
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, BaseModel) and kind not in seen:
                found += fields_of(kind, types, seen)
    return found


def _typed(info: FieldInfo) -> Any:
    """The field's type with its constraints and validators, as the model checks it."""
    if not info.metadata:
        return info.annotation
    return typing.cast(Any, Annotated)[(info.annotation, *info.metadata)]


FIELDS = sorted({n: f for body in BODIES for n, f in fields_of(body, (int, float))}.items())
FLAGS = sorted({n: f for body in BODIES for n, f in fields_of(body, (bool,))}.items())
DATES = sorted({n: f for body in BODIES for n, f in fields_of(body, (date, datetime))}.items())


def test_the_bodies_hold_the_numeric_fields_checked() -> None:
    names = {name for name, _ in FIELDS}
    # Those the issue found, and those of their kind at the time of the fix.
    assert {"ChildSearch.limit", "ChildSearch.offset", "AckIn.through"} <= names
    assert {"SubscriptionCreate.heartbeat_period", "AbsenceCodeCount.sessions"} <= names
    assert {"AttendanceConcern.attendance_percentage", "Exclusion.sessions"} <= names
    assert {name for name, _ in FLAGS} >= {"Concern.referred", "PlanStart.unborn"}
    assert {name for name, _ in DATES} >= {"Pupil.date_of_birth", "ChildSearch.since"}
    assert len(DATES) >= 24


@pytest.mark.parametrize(("name", "info"), FIELDS, ids=[name for name, _ in FIELDS])
@pytest.mark.parametrize("raw", ["true", "false", '"12"', '"1"'])
def test_a_body_number_is_never_true_false_or_text(name: str, info: FieldInfo, raw: str) -> None:
    _refuses(info, raw, taking=["12", "12.0"])


@pytest.mark.parametrize(("name", "info"), FLAGS, ids=[name for name, _ in FLAGS])
@pytest.mark.parametrize("raw", ["0", "1", '"true"', '"yes"', '"N"'])
def test_a_body_boolean_is_true_or_false_only(name: str, info: FieldInfo, raw: str) -> None:
    _refuses(info, raw, taking=["true", "false"])


@pytest.mark.parametrize(("name", "info"), DATES, ids=[name for name, _ in DATES])
@pytest.mark.parametrize("raw", ["0", "86400", '"0"', '"1468"', "true"])
def test_a_body_date_is_iso_text_never_a_number(name: str, info: FieldInfo, raw: str) -> None:
    # pydantic alone reads 0, and "0", as 1 January 1970; a midnight is how some systems
    # write a date
    _refuses(info, raw, taking=['"2026-09-01"', '"2026-09-01T00:00:00"'])


def _refuses(info: FieldInfo, raw: str, *, taking: list[str]) -> None:
    """The field, as its model checks it, refuses the JSON ``raw`` and takes each of
    ``taking``."""
    field: TypeAdapter[Any] = TypeAdapter(_typed(info))
    with pytest.raises(ValidationError):
        field.validate_json(raw)
    for good in taking:
        field.validate_json(good)


def test_text_still_counts_where_numbers_come_as_text() -> None:
    from services.audit.routes_search import DecisionFilters

    assert DecisionFilters.model_validate({"limit": "5", "offset": "10"}).offset == 10
