"""Map the case system's JSON to canonical events. Pure functions.

| native                         | canonical (socialcare.child_protection_plan.*) |
| ------------------------------ | ---------------------------------------------- |
| child.nhsNumber                | subject.nhs_number                             |
| child.personId                 | subject.la_person_id                           |
| child.firstName / lastName     | subject.given_name / family_name               |
| child.dateOfBirth              | subject.date_of_birth                          |
| plan.id / startDate / endDate  | plan.plan_id / start_date / end_date           |
| plan.category, plan.endReason  | plan.category, plan.end_reason                 |
| (the agency directory's name)  | authority.name                                 |
| contact.*                      | authority.contact.*                            |
| leadPractitioner.*             | lead_practitioner.*                            |
"""

from __future__ import annotations

from typing import Any

from services.socialcare.native import (
    Child,
    ChildProtectionPlanEnded,
    ChildProtectionPlanStarted,
    Contact,
)

PLAN_STARTED = "socialcare.child_protection_plan.started"
PLAN_ENDED = "socialcare.child_protection_plan.ended"


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def _subject(child: Child, *, full: bool) -> dict[str, Any]:
    subject: dict[str, Any] = {"nhs_number": child.nhs_number, "la_person_id": child.person_id}
    if full:
        subject |= {
            "given_name": child.first_name,
            "family_name": child.last_name,
            "date_of_birth": child.date_of_birth.isoformat() if child.date_of_birth else None,
        }
    return _drop_none(subject)


def _authority(name: str, contact: Contact) -> dict[str, Any]:
    return {"name": name, "contact": contact.model_dump(exclude_none=True)}


def plan_started(native: ChildProtectionPlanStarted, *, authority_name: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "subject": _subject(native.child, full=True),
        "plan": {
            "plan_id": native.plan.id,
            "start_date": native.plan.start_date.isoformat(),
            "category": native.plan.category,
            "unborn": native.plan.unborn,
        },
        "authority": _authority(authority_name, native.contact),
    }
    if native.lead_practitioner:
        data["lead_practitioner"] = native.lead_practitioner.model_dump()
    return data


def plan_ended(native: ChildProtectionPlanEnded, *, authority_name: str) -> dict[str, Any]:
    plan = _drop_none(
        {
            "plan_id": native.plan.id,
            "start_date": native.plan.start_date.isoformat() if native.plan.start_date else None,
            "end_date": native.plan.end_date.isoformat(),
            "category": native.plan.category,
            "end_reason": native.plan.end_reason,
        }
    )
    return {
        "subject": _subject(native.child, full=False),
        "plan": plan,
        "authority": _authority(authority_name, native.contact),
    }
