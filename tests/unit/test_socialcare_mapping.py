"""The case system's native JSON (camelCase) and its mapping to canonical social care events."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from deploy.devstack.demo import scenario
from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted

AUTHORITY = "Northshire County Council, children's social care"


def started_body(**child: Any) -> dict[str, Any]:
    body = copy.deepcopy(scenario.plan_started(scenario.ON_PLAN))
    body["child"].update(child)
    return body


def ended_body() -> dict[str, Any]:
    return {
        "child": {"nhsNumber": "9990000123", "personId": "NS-104233"},
        "plan": {"id": "CPP-2026-0117", "endDate": "2027-03-01", "category": "neglect"},
        "contact": {"team": "Northshire MASH", "phone": "0300 555 0142"},
    }


def test_maps_a_plan_start(schemas: SchemaRegistry) -> None:
    native = ChildProtectionPlanStarted.model_validate(scenario.plan_started(scenario.ON_PLAN))
    data = mapping.plan_started(native, authority_name=AUTHORITY)
    assert data == {
        "subject": {
            "nhs_number": "9990000123",
            "la_person_id": "NS-104233",
            "given_name": "Maisie",
            "family_name": "Testchild",
            "date_of_birth": "2016-04-09",
        },
        "plan": {
            "plan_id": "CPP-2026-0117",
            "start_date": "2026-11-02",
            "category": "neglect",
            "unborn": False,
        },
        "authority": {
            "name": AUTHORITY,
            "contact": {
                "team": "Northshire MASH",
                "phone": "0300 555 0142",
                "email": "mash@northshire.example",
            },
        },
        "lead_practitioner": {"name": "Sam Worker", "role": "social worker"},
    }
    schemas.get(mapping.PLAN_STARTED).validate(data)


def test_optional_details_are_left_out_not_nulled(schemas: SchemaRegistry) -> None:
    body = started_body()
    for key in ("firstName", "lastName", "dateOfBirth"):
        del body["child"][key]
    del body["leadPractitioner"]
    del body["contact"]["email"]
    data = mapping.plan_started(
        ChildProtectionPlanStarted.model_validate(body), authority_name=AUTHORITY
    )
    assert data["subject"] == {"nhs_number": "9990000123", "la_person_id": "NS-104233"}
    assert "lead_practitioner" not in data
    assert data["authority"]["contact"] == {"team": "Northshire MASH", "phone": "0300 555 0142"}
    schemas.get(mapping.PLAN_STARTED).validate(data)


def test_maps_a_plan_end_without_names(schemas: SchemaRegistry) -> None:
    data = mapping.plan_ended(
        ChildProtectionPlanEnded.model_validate(ended_body()), authority_name=AUTHORITY
    )
    assert data == {
        "subject": {"nhs_number": "9990000123", "la_person_id": "NS-104233"},
        "plan": {
            "plan_id": "CPP-2026-0117",
            "end_date": "2027-03-01",
            "category": "neglect",
            "end_reason": "other",
        },
        "authority": {
            "name": AUTHORITY,
            "contact": {"team": "Northshire MASH", "phone": "0300 555 0142"},
        },
    }
    schemas.get(mapping.PLAN_ENDED).validate(data)


def test_a_typed_nhs_number_is_normalised() -> None:
    native = ChildProtectionPlanStarted.model_validate(started_body(nhsNumber="999 000 0123"))
    assert native.child.nhs_number == "9990000123"


@pytest.mark.parametrize("number", ["9990000124", "999000012", "NHS9990000"])
def test_an_invalid_nhs_number_is_refused_without_echoing_it(number: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChildProtectionPlanStarted.model_validate(started_body(nhsNumber=number))
    (error,) = info.value.errors(include_input=False)
    assert error["loc"] == ("child", "nhsNumber")
    assert number not in error["msg"]


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda b: b["child"].update(shoeSize=3), ("child", "shoeSize")),
        (lambda b: b["plan"].update(category="other"), ("plan", "category")),
        (lambda b: b["plan"].update(startDate="02/11/2026"), ("plan", "startDate")),
        (lambda b: b["contact"].update(email="not an email"), ("contact", "email")),
        (lambda b: b["contact"].update(phone="999"), ("contact", "phone")),
        (lambda b: b["child"].pop("personId"), ("child", "personId")),
    ],
    ids=["unknown-field", "category", "date", "email", "phone", "person-id"],
)
def test_native_input_is_checked(change: Any, loc: tuple[str, ...]) -> None:
    body = started_body()
    change(body)
    with pytest.raises(ValidationError) as info:
        ChildProtectionPlanStarted.model_validate(body)
    assert [e["loc"] for e in info.value.errors()] == [loc]
