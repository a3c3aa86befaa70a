"""One valid canonical event's data for every event type under schemas/: the agencies' events
built from the sample inputs under tests/data through the services' own mappings, and the
hub's own events (access back, recalls) written out. The properties that must hold for any
event start from these (tests/unit/test_decide.py, tests/unit/test_schemas.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

from consent.processor.access_back import ACCESS_BACK
from services.backbone.recall import RECALL_REQUESTED, RECALLED
from services.education import mapping as education
from services.education import native as education_native
from services.health.fhir_codes import SAFEGUARDING_CONCERN, WAS_NOT_BROUGHT
from services.socialcare import mapping as socialcare
from services.socialcare import mapping_cin, mapping_looked_after
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted
from tests.unit import education_samples, health_data, socialcare_data
from tests.unit.factories import ATTENDANCE, ED, PLAN_STARTED

Data = dict[str, Any]
_SCHOOL = education_samples.SCHOOL_NAME
_AUTHORITY = socialcare_data.AUTHORITY


def _school(model: Any, name: str, mapped: Callable[..., Data]) -> Callable[[], Data]:
    return lambda: mapped(
        model.model_validate(education_samples.sample_json(name)), school_name=_SCHOOL
    )


def _social(model: Any, name: str, mapped: Callable[..., Data]) -> Callable[[], Data]:
    return lambda: mapped(
        model.model_validate(socialcare_data.sample(name)), authority_name=_AUTHORITY
    )


def _health(name: str) -> Callable[[], Data]:
    return lambda: dict(health_data.mapped(name).data)


_BUILDERS: dict[str, Callable[[], Data]] = {
    education.ATTENDANCE_CONCERN: _school(
        education_native.AttendanceConcern, "attendance-concern.json", education.attendance_concern
    ),
    education.EXCLUSION_RECORDED: _school(
        education_native.ExclusionRecorded, "exclusion.json", education.exclusion_recorded
    ),
    education.MISSING_EDUCATION: _school(
        education_native.ChildMissingEducation,
        "child-missing-education.json",
        education.missing_education_reported,
    ),
    education.SAFEGUARDING_CONCERN: _school(
        education_native.SafeguardingConcern,
        "safeguarding-concern.json",
        education.safeguarding_concern,
    ),
    ATTENDANCE: _health("encounter-emergency"),
    WAS_NOT_BROUGHT: _health("appointment-was-not-brought"),
    SAFEGUARDING_CONCERN: _health("flag-safeguarding"),
    PLAN_STARTED: _social(
        ChildProtectionPlanStarted, "child-protection-plans", socialcare.plan_started
    ),
    socialcare.PLAN_ENDED: _social(
        ChildProtectionPlanEnded, "child-protection-plans-ended", socialcare.plan_ended
    ),
    mapping_cin.REFERRAL_RECEIVED: lambda: mapping_cin.referral_received(
        ReferralReceived.model_validate(socialcare_data.sample("referrals")),
        authority_name=_AUTHORITY,
        agencies=socialcare_data.AGENCIES,
    ),
    mapping_cin.ASSESSMENT_COMPLETED: _social(
        AssessmentCompleted, "assessments", mapping_cin.assessment_completed
    ),
    mapping_cin.CASE_CLOSED: _social(CaseClosed, "case-closures", mapping_cin.case_closed),
    mapping_looked_after.LOOKED_AFTER_STARTED: _social(
        LookedAfterStarted, "looked-after-episodes", mapping_looked_after.looked_after_started
    ),
    mapping_looked_after.LOOKED_AFTER_ENDED: _social(
        LookedAfterEnded, "looked-after-episodes-ended", mapping_looked_after.looked_after_ended
    ),
    ACCESS_BACK: lambda: {
        "event_id": "5d0c4a8e-7f1b-4c2e-9a55-3f8d2b1e6c70",
        "event_type": PLAN_STARTED,
        "shared_with": [
            {
                "recipient": ED,
                "protocol": "cpis-protection-plan-flag@2",
                "identity": "identified",
                "fields": ["subject.nhs_number", "plan.start_date", "plan.category"],
                "fields_pseudonymised": [],
                "fields_tokenised": [],
                "fields_encrypted": [],
            }
        ],
        "decided_at": "2026-11-20T21:14:03Z",
    },
    RECALL_REQUESTED: lambda: {
        "submission": "3f2b9c1e-6a4d-4e8f-b1c7-2d5e8a9f0b13",
        "recalled": [{"id": "5d0c4a8e-7f1b-4c2e-9a55-3f8d2b1e6c70", "type": PLAN_STARTED}],
        "reason": "wrong_subject",
    },
    RECALLED: lambda: {
        "recalls": "c6f1e2d3a4b5c6d7e8f9a0b1c2d3e4f5",
        "recalled_type": PLAN_STARTED,
        "reason": "shared_in_error",
        "recalled_at": "2026-11-21T09:00:00Z",
    },
}


@cache
def _built() -> dict[str, Data]:
    return {event_type: build() for event_type, build in _BUILDERS.items()}


def event_types() -> list[str]:
    """The event types a sample is kept for, sorted."""
    return sorted(_BUILDERS)


def valid_data(event_type: str) -> Data:
    """A fresh copy of the sample data of ``event_type``, valid under its schema."""
    return copy.deepcopy(_built()[event_type])
