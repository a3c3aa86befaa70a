"""Subject state from social care's plan events: next_state."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consent.core.state import (
    PLAN_ENDED,
    PLAN_STARTED,
    ProtectionPlan,
    SubjectState,
    Transition,
    next_state,
)
from deploy.devstack.demo import scenario
from tests.unit.factories import (
    ATTENDANCE,
    ED,
    LA,
    attendance_data,
    plan_ended_data,
    plan_started_data,
)

ACTIVE = ProtectionPlan(LA, "CPP-2026-0117", "neglect", "2026-11-02")


def started() -> dict[str, Any]:
    return plan_started_data(scenario.ON_PLAN, authority_name="Northshire")


def ended(plan_id: str = "CPP-2026-0117") -> dict[str, Any]:
    return plan_ended_data(scenario.ON_PLAN, authority_name="Northshire", plan_id=plan_id)


def test_a_plan_start_makes_the_plan_active() -> None:
    transition = next_state(
        SubjectState(), event_type=PLAN_STARTED, source_agency=LA, data=started()
    )
    assert transition == Transition(ACTIVE)


def test_a_new_plan_replaces_the_active_one() -> None:
    current = SubjectState(ProtectionPlan(LA, "CPP-OLD", "multiple", "2025-01-01"))
    transition = next_state(current, event_type=PLAN_STARTED, source_agency=LA, data=started())
    assert transition == Transition(ACTIVE)


def test_the_holder_ending_the_active_plan_clears_it() -> None:
    transition = next_state(
        SubjectState(ACTIVE), event_type=PLAN_ENDED, source_agency=LA, data=ended()
    )
    assert transition == Transition(None)


@pytest.mark.parametrize(
    ("current", "source", "data"),
    [
        (SubjectState(), LA, ended()),  # no plan to end
        (SubjectState(ACTIVE), LA, ended("CPP-OTHER")),  # not the active plan
        (SubjectState(ACTIVE), "la-elsewhere", ended()),  # not the authority holding it
    ],
    ids=["no-plan", "other-plan", "other-authority"],
)
def test_an_ending_that_does_not_match_changes_nothing(
    current: SubjectState, source: str, data: dict[str, Any]
) -> None:
    assert next_state(current, event_type=PLAN_ENDED, source_agency=source, data=data) is None


def test_other_events_change_nothing() -> None:
    data = attendance_data(scenario.ON_PLAN)
    assert (
        next_state(SubjectState(ACTIVE), event_type=ATTENDANCE, source_agency=ED, data=data) is None
    )
    assert next_state(SubjectState(), event_type=PLAN_STARTED, source_agency=LA, data={}) is None


def test_a_plan_round_trips_through_json() -> None:
    assert ProtectionPlan.from_json(ACTIVE.to_json()) == ACTIVE
    assert ACTIVE.to_json() == {
        "authority": LA,
        "plan_id": "CPP-2026-0117",
        "category": "neglect",
        "start_date": "2026-11-02",
        "started_by": None,  # a plan kept before the event that started it was recorded
    }
    started = dataclasses.replace(ACTIVE, started_by="e-1")
    assert ProtectionPlan.from_bytes(started.to_bytes()).started_by == "e-1"
