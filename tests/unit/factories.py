"""Canonical event data of the CP-IS scenario, built through the real agency mappings."""

from __future__ import annotations

from typing import Any

from consent.processor.handle import Context, Handled
from consent.processor.records import OutRecord
from deploy.devstack.demo import scenario
from services.backbone.audit_contract import AuditRecord
from services.health.fhir_mapping import attendance_from_bundle
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted

LA = "la-northshire"
ED = "nhs-riverside-ed"
PH = "ph-northshire"
PLAN_STARTED = "socialcare.child_protection_plan.started"
PLAN_ENDED = "socialcare.child_protection_plan.ended"
ATTENDANCE = "health.unscheduled_care.attendance"
# What the CP-IS flag protocol discloses to the emergency department, in its order.
FLAG_FIELDS = [
    "subject.nhs_number",
    "plan.start_date",
    "plan.category",
    "authority.name",
    "authority.contact",
]


def plan_started_data(child: scenario.Child, *, authority_name: str) -> dict[str, Any]:
    native = ChildProtectionPlanStarted.model_validate(scenario.plan_started(child))
    return mapping.plan_started(native, authority_name=authority_name)


def plan_ended_data(
    child: scenario.Child, *, authority_name: str, plan_id: str = "CPP-2026-0117"
) -> dict[str, Any]:
    started = scenario.plan_started(child, plan_id=plan_id)
    native = ChildProtectionPlanEnded.model_validate(
        {
            "child": {k: started["child"][k] for k in ("nhsNumber", "personId")},
            "plan": {
                "id": plan_id,
                "startDate": started["plan"]["startDate"],
                "endDate": "2027-03-01",
                "category": started["plan"]["category"],
                "endReason": "no_longer_at_risk",
            },
            "contact": started["contact"],
        }
    )
    return mapping.plan_ended(native, authority_name=authority_name)


def attendance_data(child: scenario.Child) -> dict[str, Any]:
    return attendance_from_bundle(scenario.attendance_bundle(child))


def on(records: list[OutRecord], topic: str) -> list[OutRecord]:
    return [r for r in records if r.topic == topic]


def audits(handled: Handled, ctx: Context) -> list[AuditRecord]:
    return [
        AuditRecord.model_validate_json(r.value or b"")
        for r in on(handled.records, ctx.topics.audit)
    ]
