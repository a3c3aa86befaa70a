"""Composition root of the social care service (FastAPI app factory)."""

from __future__ import annotations

from fastapi import FastAPI, Request, status

from services.backbone.agency_app import (
    AgencyServiceSettings,
    create_agency_app,
    publish_event,
)
from services.backbone.directory import AgencyKind
from services.backbone.identifiers import subject_identifier
from services.socialcare import mapping
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted


def create_app(settings: AgencyServiceSettings | None = None) -> FastAPI:
    settings = settings or AgencyServiceSettings()
    app = create_agency_app(
        title="infoshare: children's social care service",
        description="Accepts the local authority case system's JSON and publishes canonical "
        "socialcare.* events. Shows what this authority has received.",
        settings=settings,
        kind=AgencyKind.SOCIALCARE,
    )
    authority = settings.directory().get(settings.agency_id).name

    @app.post(
        "/child-protection-plans",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["child protection"],
        summary="A child protection plan has started",
    )
    async def plan_started(body: ChildProtectionPlanStarted, request: Request) -> dict[str, str]:
        data = mapping.plan_started(body, authority_name=authority)
        return await publish_event(
            request,
            event_type=mapping.PLAN_STARTED,
            data=data,
            subject_id=subject_identifier(nhs_number=body.child.nhs_number),
            native_id=body.plan.id,
        )

    @app.post(
        "/child-protection-plans/ended",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["child protection"],
        summary="A child protection plan has ended",
    )
    async def plan_ended(body: ChildProtectionPlanEnded, request: Request) -> dict[str, str]:
        data = mapping.plan_ended(body, authority_name=authority)
        return await publish_event(
            request,
            event_type=mapping.PLAN_ENDED,
            data=data,
            subject_id=subject_identifier(nhs_number=body.child.nhs_number),
            native_id=body.plan.id,
        )

    return app
