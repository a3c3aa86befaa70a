"""Subject state the processor keeps from the event stream: active protection plans.

Kept per subject routing key, built from social care's own events (no database reads
across services), and written to a compacted changelog topic so a restarted processor
gets it back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

PLAN_STARTED = "socialcare.child_protection_plan.started"
PLAN_ENDED = "socialcare.child_protection_plan.ended"
STATE_EVENT_TYPES = frozenset({PLAN_STARTED, PLAN_ENDED})


@dataclass(frozen=True)
class ProtectionPlan:
    authority: str
    plan_id: str
    category: str
    start_date: str
    # The event that started it (its id): a recall of that event ends it, and of no other.
    # A plan kept before this was recorded has none.
    started_by: str | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "authority": self.authority,
            "plan_id": self.plan_id,
            "category": self.category,
            "start_date": self.start_date,
            "started_by": self.started_by,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ProtectionPlan:
        started_by = doc.get("started_by")
        return cls(
            authority=str(doc["authority"]),
            plan_id=str(doc["plan_id"]),
            category=str(doc["category"]),
            start_date=str(doc["start_date"]),
            started_by=str(started_by) if started_by else None,
        )

    def to_bytes(self) -> bytes:
        """The plan as a value of the ``state.protection-plans`` changelog."""
        return orjson.dumps(self.to_json())

    @classmethod
    def from_bytes(cls, raw: bytes) -> ProtectionPlan:
        """A plan from a value of the ``state.protection-plans`` changelog."""
        return cls.from_json(orjson.loads(raw))


@dataclass(frozen=True)
class SubjectState:
    protection_plan: ProtectionPlan | None = None

    def as_cel(self) -> dict[str, Any]:
        """The state as protocol conditions see it (``state.protection_plan.authority``)."""
        plan = self.protection_plan
        return {} if plan is None else {"protection_plan": plan.to_json()}


@dataclass(frozen=True)
class Transition:
    """A change to a subject's plan; ``plan`` None means the plan ended (a tombstone)."""

    plan: ProtectionPlan | None


def next_state(
    current: SubjectState,
    *,
    event_type: str,
    source_agency: str,
    data: Mapping[str, Any],
    event_id: str | None = None,
) -> Transition | None:
    """The state change an event causes, or None if it changes nothing.

    A plan ends only if the ending event names the active plan and comes from the
    authority holding it: another authority cannot end a plan it does not hold.
    """
    plan = data.get("plan")
    if event_type not in STATE_EVENT_TYPES or not isinstance(plan, Mapping):
        return None
    if event_type == PLAN_STARTED:
        return Transition(
            ProtectionPlan(
                authority=source_agency,
                plan_id=str(plan["plan_id"]),
                category=str(plan["category"]),
                start_date=str(plan["start_date"]),
                started_by=event_id,
            )
        )
    active = current.protection_plan
    if (
        active is not None
        and active.plan_id == str(plan["plan_id"])
        and active.authority == source_agency
    ):
        return Transition(None)
    return None


def after_recall(current: SubjectState, *, event_id: str, source_agency: str) -> Transition | None:
    """The state change recalling an event causes: a plan started in error ends with the
    recall of the event that started it, if it is still the active plan, held by the
    recalling authority (not once a corrected start has replaced it). Recalling a plan's
    end restarts nothing: the authority sends the plan again."""
    active = current.protection_plan
    if active is not None and active.started_by == event_id and active.authority == source_agency:
        return Transition(None)
    return None
