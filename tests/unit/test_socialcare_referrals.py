"""The children in need pathway: a referral, an assessment and a case closure as the case
system sends them, mapped to canonical events; inconsistent input refused naming the rule."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.backbone.errors import InputRejected
from services.backbone.identifiers import subject_identity
from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping_cin
from services.socialcare.codes import cin_census
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from tests.unit.socialcare_data import AGENCIES, AUTHORITY, sample

CONTACT = {"team": "Northshire MASH", "phone": "0300 555 0142", "email": "mash@northshire.example"}
CIN_TEAM = {
    "team": "Northshire Children in Need Team East",
    "phone": "0300 555 0178",
    "email": "cin.east@northshire.example",
}
ALFIE = {"la_person_id": "NS-104355", "nhs_number": "9990000565", "upn": "G823412626001"}


def referral(body: dict[str, Any]) -> dict[str, Any]:
    native = ReferralReceived.model_validate(body)
    return mapping_cin.referral_received(native, authority_name=AUTHORITY, agencies=AGENCIES)


def assessment(body: dict[str, Any]) -> dict[str, Any]:
    native = AssessmentCompleted.model_validate(body)
    return mapping_cin.assessment_completed(native, authority_name=AUTHORITY)


def refused(map_: Any, body: dict[str, Any]) -> InputRejected:
    with pytest.raises(InputRejected) as info:
        map_(body)
    return info.value


def test_maps_a_referral_from_a_school(schemas: SchemaRegistry) -> None:
    data = referral(sample("referrals"))
    assert data == {
        "subject": {
            **ALFIE,
            "given_name": "Alfie",
            "family_name": "Mockchild",
            "date_of_birth": "2013-06-18",
        },
        "referral": {
            "referral_id": "REF-2026-004512",
            "received_date": "2026-10-14",
            "source": {"code": "2A", "category": "schools"},
            "primary_need": {"code": "N1", "category": "abuse_or_neglect"},
            "outcome": "single_assessment",
            "referrer_agency": "school-oakfield",
        },
        "authority": {"name": AUTHORITY, "contact": CONTACT},
    }
    schemas.get(mapping_cin.REFERRAL_RECEIVED).validate(data)


def test_a_child_known_only_by_the_authoritys_id_is_keyed_by_it(schemas: SchemaRegistry) -> None:
    body = sample("referrals")
    body["child"] = {"personId": "NS-104355"}
    body["referral"].update(source="9", outcome="no_further_action")
    del body["referral"]["referrerAgency"]
    data = referral(body)
    assert data["subject"] == {"la_person_id": "NS-104355"}
    assert "referrer_agency" not in data["referral"]
    assert data["referral"]["source"] == {"code": "9", "category": "anonymous"}
    schemas.get(mapping_cin.REFERRAL_RECEIVED).validate(data)
    assert subject_identity(data["subject"], "la-northshire") == "la:la-northshire:NS-104355"


def test_a_referrer_outside_the_directory_is_refused() -> None:
    body = sample("referrals")
    body["referral"]["referrerAgency"] = "school-elsewhere"
    error = refused(referral, body)
    assert (error.loc, error.rule) == (
        ["body", "referral", "referrerAgency"],
        "referral.referrer_agency.unknown",
    )
    assert "school-elsewhere" not in error.msg


def test_maps_a_completed_assessment(schemas: SchemaRegistry) -> None:
    data = assessment(sample("assessments"))
    assert data["assessment"] == {
        "assessment_id": "ASMT-2026-00871",
        "referral_id": "REF-2026-004512",
        "type": "single_assessment",
        "start_date": "2026-10-15",
        "completion_date": "2026-11-20",
        "outcome": "child_in_need_plan",
        "factors": [
            {"code": "1B", "category": "alcohol_misuse"},
            {"code": "3B", "category": "domestic_abuse"},
            {"code": "4B", "category": "mental_health"},
            {"code": "16A", "category": "neglect"},
        ],
    }
    assert data["authority"] == {"name": AUTHORITY, "contact": CIN_TEAM}
    assert data["subject"]["given_name"] == "Alfie"
    schemas.get(mapping_cin.ASSESSMENT_COMPLETED).validate(data)


def test_a_factor_sent_twice_counts_once() -> None:
    body = sample("assessments")
    body["assessment"]["factors"] = ["4b", "2B", "4B"]
    assert [f["code"] for f in assessment(body)["assessment"]["factors"]] == ["4B", "2B"]


def test_an_s47_enquiry_may_record_no_factors(schemas: SchemaRegistry) -> None:
    body = sample("assessments")
    body["assessment"].update(type="s47_enquiry", outcome="child_protection_conference")
    del body["assessment"]["factors"]
    data = assessment(body)
    assert data["assessment"]["factors"] == []
    schemas.get(mapping_cin.ASSESSMENT_COMPLETED).validate(data)


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    [
        (
            {"factors": []},
            ["body", "assessment", "factors"],
            "assessment.factors.required",
        ),
        (
            {"factors": ["21", "4B"]},
            ["body", "assessment", "factors"],
            "assessment.factors.none_with_others",
        ),
        (
            {"outcome": "child_protection_conference"},
            ["body", "assessment", "outcome"],
            "assessment.outcome_for_type",
        ),
        (
            {"type": "s47_enquiry", "outcome": "strategy_discussion"},
            ["body", "assessment", "outcome"],
            "assessment.outcome_for_type",
        ),
        (
            {"completedDate": "2026-10-14"},
            ["body", "assessment", "completedDate"],
            "assessment.dates.order",
        ),
    ],
    ids=["no-factors", "21-with-others", "icpc-after-single", "strategy-after-s47", "dates"],
)
def test_an_inconsistent_assessment_is_refused(
    change: dict[str, Any], loc: list[str], rule: str
) -> None:
    body = sample("assessments")
    body["assessment"].update(change)
    error = refused(assessment, body)
    assert (error.loc, error.rule) == (loc, rule)


def test_no_factors_identified_is_sent_alone(schemas: SchemaRegistry) -> None:
    body = sample("assessments")
    body["assessment"].update(factors=["21"], outcome="no_further_action")
    data = assessment(body)
    assert data["assessment"]["factors"] == [{"code": "21", "category": "no_factors"}]
    schemas.get(mapping_cin.ASSESSMENT_COMPLETED).validate(data)


def test_maps_a_case_closure_with_ids_only(schemas: SchemaRegistry) -> None:
    native = CaseClosed.model_validate(sample("case-closures"))
    data = mapping_cin.case_closed(native, authority_name=AUTHORITY)
    assert data == {
        "subject": ALFIE,
        "case": {
            "case_id": "CIN-2026-01182",
            "referral_date": "2026-10-14",
            "closure_date": "2027-06-30",
            "reason": {"code": "RC7", "category": "services_ceased"},
        },
        "authority": {"name": AUTHORITY, "contact": CIN_TEAM},
    }
    schemas.get(mapping_cin.CASE_CLOSED).validate(data)


def test_a_case_closed_before_its_referral_is_refused() -> None:
    body = sample("case-closures")
    body["case"]["closureDate"] = "2026-10-13"
    native = CaseClosed.model_validate(body)
    with pytest.raises(InputRejected) as info:
        mapping_cin.case_closed(native, authority_name=AUTHORITY)
    assert info.value.rule == "case.dates.order"
    assert "2026" not in info.value.msg


@given(st.dates(date(2000, 1, 1), date(2040, 1, 1)), st.integers(-400, 400))
def test_an_assessment_maps_exactly_when_it_ends_on_or_after_its_start(
    start: date, days: int
) -> None:
    body = sample("assessments")
    completed = start + timedelta(days=days)
    body["assessment"].update(startDate=start.isoformat(), completedDate=completed.isoformat())
    if days >= 0:
        assert assessment(body)["assessment"]["completion_date"] == completed.isoformat()
    else:
        assert refused(assessment, body).rule == "assessment.dates.order"


FACTORS = [c for c in cin_census.ASSESSMENT_FACTOR.codes if c != cin_census.NO_FACTORS]


@given(factors=st.lists(st.sampled_from(FACTORS), min_size=1, max_size=12))
def test_any_factors_map_in_order_once_each_to_valid_events(
    schemas: SchemaRegistry, factors: list[str]
) -> None:
    body = sample("assessments")
    body["assessment"]["factors"] = factors
    data = assessment(body)
    mapped = data["assessment"]["factors"]
    assert [f["code"] for f in mapped] == list(dict.fromkeys(factors))
    assert all(
        f["category"] == cin_census.ASSESSMENT_FACTOR.get(f["code"]).category for f in mapped
    )
    schemas.get(mapping_cin.ASSESSMENT_COMPLETED).validate(data)
