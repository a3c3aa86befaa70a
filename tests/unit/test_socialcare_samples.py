"""The sample inputs under tests/data/socialcare (one per endpoint, reused by the HTTP,
integration, fuzz and benchmark tests) are valid and map to valid canonical events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from services.backbone.identifiers import subject_identity
from services.backbone.schemas import SchemaRegistry
from services.socialcare import mapping, mapping_cin, mapping_looked_after
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit.socialcare_data import AGENCIES, AUTHORITY, DATA, ENDPOINTS, sample

# sample -> (event type, native model + mapping, native id of the event)
MAPS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], Callable[[Any], str]]] = {
    "child-protection-plans": (
        mapping.PLAN_STARTED,
        lambda b: mapping.plan_started(
            ChildProtectionPlanStarted.model_validate(b), authority_name=AUTHORITY
        ),
        lambda b: b["plan"]["id"],
    ),
    "child-protection-plans-ended": (
        mapping.PLAN_ENDED,
        lambda b: mapping.plan_ended(
            ChildProtectionPlanEnded.model_validate(b), authority_name=AUTHORITY
        ),
        lambda b: b["plan"]["id"],
    ),
    "referrals": (
        mapping_cin.REFERRAL_RECEIVED,
        lambda b: mapping_cin.referral_received(
            ReferralReceived.model_validate(b), authority_name=AUTHORITY, agencies=AGENCIES
        ),
        lambda b: b["referral"]["id"],
    ),
    "assessments": (
        mapping_cin.ASSESSMENT_COMPLETED,
        lambda b: mapping_cin.assessment_completed(
            AssessmentCompleted.model_validate(b), authority_name=AUTHORITY
        ),
        lambda b: b["assessment"]["id"],
    ),
    "case-closures": (
        mapping_cin.CASE_CLOSED,
        lambda b: mapping_cin.case_closed(CaseClosed.model_validate(b), authority_name=AUTHORITY),
        lambda b: b["case"]["id"],
    ),
    "looked-after-episodes": (
        mapping_looked_after.LOOKED_AFTER_STARTED,
        lambda b: mapping_looked_after.looked_after_started(
            LookedAfterStarted.model_validate(b), authority_name=AUTHORITY
        ),
        lambda b: b["episode"]["id"],
    ),
    "looked-after-episodes-ended": (
        mapping_looked_after.LOOKED_AFTER_ENDED,
        lambda b: mapping_looked_after.looked_after_ended(
            LookedAfterEnded.model_validate(b), authority_name=AUTHORITY
        ),
        lambda b: mapping_looked_after.ended_native_id(b["episode"]["id"]),
    ),
}


def test_there_is_one_sample_per_endpoint() -> None:
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(ENDPOINTS) == sorted(MAPS)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_each_sample_maps_to_a_valid_event_keyed_by_its_child(
    schemas: SchemaRegistry, name: str
) -> None:
    event_type, map_, native_id = MAPS[name]
    body = sample(name)
    data = map_(body)
    schemas.get(event_type).validate(data)
    assert event_type.split(".")[0] == "socialcare"
    assert subject_identity(data["subject"], "la-northshire").startswith("nhs:999")
    assert native_id(body)


def test_native_ids_are_distinct_across_samples() -> None:
    ids = [(MAPS[n][0], MAPS[n][2](sample(n))) for n in MAPS]
    assert len(set(ids)) == len(ids)
