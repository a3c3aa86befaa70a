"""The official code lists: every code maps to its category through the real native model
and mapping, a code not on a list is refused naming the list (never the value), and the
event schemas and the integrator's guide list exactly the codes the service accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping_cin, mapping_looked_after
from services.socialcare.codes import CodeList, cin_census, code_list, ssda903
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit.socialcare_data import AGENCIES, AUTHORITY, sample

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "agencies" / "socialcare.md"


def referral(code: str, field: str) -> dict[str, Any]:
    body = sample("referrals")
    body["referral"][field] = code
    native = ReferralReceived.model_validate(body)
    data = mapping_cin.referral_received(native, authority_name=AUTHORITY, agencies=AGENCIES)
    return dict(data["referral"][{"source": "source", "primaryNeed": "primary_need"}[field]])


def factor(code: str) -> dict[str, Any]:
    body = sample("assessments")
    body["assessment"]["factors"] = [code]
    data = mapping_cin.assessment_completed(
        AssessmentCompleted.model_validate(body), authority_name=AUTHORITY
    )
    return dict(data["assessment"]["factors"][0])


def closure(code: str) -> dict[str, Any]:
    body = sample("case-closures")
    body["case"]["reason"] = code
    data = mapping_cin.case_closed(CaseClosed.model_validate(body), authority_name=AUTHORITY)
    return dict(data["case"]["reason"])


def episode_start(code: str, field: str) -> dict[str, Any]:
    body = sample("looked-after-episodes")
    body["episode"][field] = code
    data = mapping_looked_after.looked_after_started(
        LookedAfterStarted.model_validate(body), authority_name=AUTHORITY
    )
    return dict(
        data["episode"][{"legalStatus": "legal_status", "placementType": "placement"}[field]]
    )


def reason_ended(code: str) -> dict[str, Any]:
    body = sample("looked-after-episodes-ended")
    body["episode"]["reasonEnded"] = code
    data = mapping_looked_after.looked_after_ended(
        LookedAfterEnded.model_validate(body), authority_name=AUTHORITY
    )
    return dict(data["episode"]["reason_ended"])


MAPPED_BY: list[tuple[CodeList, Callable[[str], dict[str, Any]]]] = [
    (cin_census.REFERRAL_SOURCE, lambda c: referral(c, "source")),
    (cin_census.PRIMARY_NEED, lambda c: referral(c, "primaryNeed")),
    (cin_census.ASSESSMENT_FACTOR, factor),
    (cin_census.CLOSURE_REASON, closure),
    (ssda903.LEGAL_STATUS, lambda c: episode_start(c, "legalStatus")),
    (ssda903.PLACEMENT, lambda c: episode_start(c, "placementType")),
    # X1 is on the official list but does not end a period of care (test_socialcare_looked_after).
    (ssda903.REASON_EPISODE_CEASED, reason_ended),
]
EVERY_CODE = [
    pytest.param(codes, mapped, entry, id=f"{codes.rule}:{entry.code}")
    for codes, mapped in MAPPED_BY
    for entry in codes
    if entry.code != ssda903.NEW_EPISODE_SAME_DAY
]


@pytest.mark.parametrize(("codes", "mapped", "entry"), EVERY_CODE)
def test_every_code_maps_to_its_category_as_typed_or_in_lower_case(
    codes: CodeList, mapped: Callable[[str], dict[str, Any]], entry: Any
) -> None:
    expected = {"code": entry.code, "category": entry.category}
    assert mapped(entry.code) == expected
    assert mapped(f" {entry.code.lower()} ") == expected


@pytest.mark.parametrize(("codes", "mapped"), MAPPED_BY, ids=[c.rule for c, _ in MAPPED_BY])
@pytest.mark.parametrize("unknown", ["ZZ", "N10", "1E", "E43", "8A", "18A", "RC0", ""])
def test_a_code_not_on_the_list_is_refused_naming_the_list(
    codes: CodeList, mapped: Callable[[str], dict[str, Any]], unknown: str
) -> None:
    if unknown in codes:
        pytest.skip("on this list")
    with pytest.raises(ValidationError) as info:
        mapped(unknown)
    (error,) = info.value.errors(include_input=False)
    assert error["type"] == codes.rule
    assert error["msg"] == f"not on the {codes.name} code list ({codes.source})"


@pytest.mark.parametrize(
    ("codes", "size", "anchors"),
    [
        (
            cin_census.REFERRAL_SOURCE,
            22,
            {
                "1C": "individual",
                "2A": "schools",
                "3E": "health_services",
                "5D": "la_services",
                "6": "police",
                "7": "other_legal_agency",
                "9": "anonymous",
            },
        ),
        (
            cin_census.PRIMARY_NEED,
            10,
            {
                "N0": "not_stated",
                "N1": "abuse_or_neglect",
                "N9": "cases_other_than_children_in_need",
            },
        ),
        (
            cin_census.ASSESSMENT_FACTOR,
            42,
            {
                "1A": "alcohol_misuse",
                "2B": "drug_misuse",
                "3A": "domestic_abuse",
                "8F": "privately_fostered",
                "18C": "physical_abuse",
                "21": "no_factors",
                "24A": "child_criminal_exploitation",
            },
        ),
        (
            cin_census.CLOSURE_REASON,
            9,
            {
                "RC1": "adopted",
                "RC8": "no_further_action_after_assessment",
                "RC9": "early_help_after_assessment",
            },
        ),
        (
            ssda903.LEGAL_STATUS,
            13,
            {
                "C1": "care_order",
                "C2": "care_order",
                "E1": "placement_order",
                "V2": "accommodated",
                "V4": "short_breaks",
                "L2": "emergency_protection",
                "J3": "youth_justice",
            },
        ),
        (
            ssda903.PLACEMENT,
            27,
            {
                "U1": "foster",
                "U6": "foster",
                "P1": "placed_with_parents",
                "K1": "secure",
                "K2": "residential",
                "A5": "placed_for_adoption",
                "T1": "temporary",
                "Z1": "other",
            },
        ),
        (
            ssda903.REASON_EPISODE_CEASED,
            22,
            {
                "X1": "new_episode",
                "E11": "adopted",
                "E4A": "returned_to_family",
                "E45": "special_guardianship_order",
                "E9": "custody",
                "E8": "other",
            },
        ),
    ],
    ids=lambda v: v.rule if isinstance(v, CodeList) else None,
)
def test_each_list_is_the_official_one_with_its_source(
    codes: CodeList, size: int, anchors: dict[str, str]
) -> None:
    assert len(codes) == size
    assert {code: codes.get(code).category for code in anchors} == anchors
    assert codes.source.startswith("DfE, ")
    assert all(entry.label and entry.category.islower() for entry in codes)


def test_retired_codes_are_not_accepted() -> None:
    assert not {"8A", "18A", "19A"} & set(cin_census.ASSESSMENT_FACTOR.codes)
    assert not {"E43", "E44", "E4"} & set(ssda903.REASON_EPISODE_CEASED.codes)


def test_a_list_refuses_a_repeated_code() -> None:
    with pytest.raises(ValueError, match="repeated"):
        code_list(name="n", rule="r", source="s", rows=[("A", "a", "A"), ("A", "b", "B")])


# (event type, path to the {code, category} node in its schema, the list it must enumerate)
SCHEMA_NODES = [
    ("socialcare.referral.received", "referral.source", cin_census.REFERRAL_SOURCE),
    ("socialcare.referral.received", "referral.primary_need", cin_census.PRIMARY_NEED),
    ("socialcare.assessment.completed", "assessment.factors.items", cin_census.ASSESSMENT_FACTOR),
    ("socialcare.case.closed", "case.reason", cin_census.CLOSURE_REASON),
    ("socialcare.looked_after.started", "episode.legal_status", ssda903.LEGAL_STATUS),
    ("socialcare.looked_after.started", "episode.placement", ssda903.PLACEMENT),
    ("socialcare.looked_after.ended", "episode.reason_ended", ssda903.REASON_EPISODE_CEASED),
]


@pytest.mark.parametrize(("event_type", "path", "codes"), SCHEMA_NODES)
def test_the_event_schema_enumerates_exactly_the_list(
    schemas: SchemaRegistry, event_type: str, path: str, codes: CodeList
) -> None:
    node: Any = schemas.get(event_type).document
    for part in path.split("."):
        node = node[part] if part == "items" else node["properties"][part]
    assert node["properties"]["code"]["enum"] == list(codes.codes)
    assert node["properties"]["category"]["enum"] == codes.categories


@pytest.mark.parametrize(("_event_type", "_path", "codes"), SCHEMA_NODES)
def test_the_guide_lists_every_code_with_its_category(
    _event_type: str, _path: str, codes: CodeList
) -> None:
    guide = GUIDE.read_text("utf-8")
    assert codes.source in guide
    for entry in codes:
        assert f"| `{entry.code}` | `{entry.category}` | {entry.label} |" in guide
