"""The child in every new social care body: the authority's person id required, NHS number
and UPN optional but checked, and a bad one refused naming the rule, never the value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from services.backbone.identifiers import subject_identity
from services.socialcare.mapping_common import subject
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_common import Person
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit.socialcare_data import sample
from tests.unit.strategies import valid_nhs_numbers

BODIES: list[tuple[str, type[BaseModel]]] = [
    ("referrals", ReferralReceived),
    ("assessments", AssessmentCompleted),
    ("case-closures", CaseClosed),
    ("looked-after-episodes", LookedAfterStarted),
    ("looked-after-episodes-ended", LookedAfterEnded),
]
IDS = [name for name, _ in BODIES]


def errors_for(model: type[BaseModel], body: dict[str, Any]) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(body)
    return info.value.errors(include_input=False)


@pytest.mark.parametrize(("name", "model"), BODIES, ids=IDS)
@pytest.mark.parametrize(
    ("field", "value", "rule", "msg"),
    [
        (
            "nhsNumber",
            "9990000566",
            "nhs_number.check_digit",
            "the NHS number check digit does not match (modulus 11)",
        ),
        ("nhsNumber", "999000056", "nhs_number.format", "an NHS number is 10 digits"),
        (
            "upn",
            "H823412626001",
            "upn.check_letter",
            "the UPN check letter does not match (modulus 23)",
        ),
        (
            "upn",
            "G8234126260",
            "upn.format",
            "a UPN is a check letter and 12 characters: 11 digits, then a digit or letter",
        ),
    ],
    ids=["nhs-check-digit", "nhs-format", "upn-check-letter", "upn-format"],
)
def test_a_bad_identifier_is_refused_naming_the_rule_not_the_value(
    name: str, model: type[BaseModel], field: str, value: str, rule: str, msg: str
) -> None:
    body = sample(name)
    body["child"][field] = value
    (error,) = errors_for(model, body)
    assert (error["loc"], error["type"], error["msg"]) == (("child", field), rule, msg)


@pytest.mark.parametrize(("name", "model"), BODIES, ids=IDS)
@pytest.mark.parametrize("person_id", [None, "", "   ", " NS-104355", "x" * 65])
def test_the_authoritys_person_id_is_required_and_well_formed(
    name: str, model: type[BaseModel], person_id: str | None
) -> None:
    body = sample(name)
    if person_id is None:
        del body["child"]["personId"]
    else:
        body["child"]["personId"] = person_id
    (error,) = errors_for(model, body)
    assert error["loc"] == ("child", "personId")


@pytest.mark.parametrize(("name", "model"), BODIES, ids=IDS)
def test_typed_identifiers_are_normalised(name: str, model: type[BaseModel]) -> None:
    body = sample(name)
    body["child"].update(nhsNumber="999 000 0565", upn="g8234 1262 6001")
    child = model.model_validate(body).child  # type: ignore[attr-defined]
    assert (child.nhs_number, child.upn) == ("9990000565", "G823412626001")


@given(
    nhs=st.none() | valid_nhs_numbers(),
    upn=st.sampled_from([None, "G823412626001", "W823412626002", "T82341262600A"]),
    full=st.booleans(),
)
def test_the_subject_is_keyed_by_nhs_number_else_upn_else_person_id(
    nhs: str | None, upn: str | None, full: bool
) -> None:
    child = Person.model_validate(
        {"personId": "NS-104355", "nhsNumber": nhs, "upn": upn, "firstName": "Alfie"}
    )
    mapped = subject(child, full=full)
    assert None not in mapped.values()
    assert ("given_name" in mapped) is full
    expected = f"nhs:{nhs}" if nhs else f"upn:{upn}" if upn else "la:la-northshire:NS-104355"
    assert subject_identity(mapped, "la-northshire") == expected
