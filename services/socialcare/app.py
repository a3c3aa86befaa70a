"""Composition root of the social care service (FastAPI app factory)."""

from __future__ import annotations

from fastapi import FastAPI, Request, status

from services.agency.app import create_agency_app
from services.agency.publish import Accepted, publish_event
from services.agency.runtime import AgencyServiceSettings
from services.agency.submission import Outgoing
from services.backbone.directory import AgencyKind
from services.socialcare import mapping, mapping_cin, mapping_looked_after
from services.socialcare.native import ChildProtectionPlanEnded, ChildProtectionPlanStarted
from services.socialcare.native_cin import AssessmentCompleted, CaseClosed, ReferralReceived
from services.socialcare.native_looked_after import LookedAfterEnded, LookedAfterStarted


def create_app(settings: AgencyServiceSettings | None = None) -> FastAPI:
    settings = settings or AgencyServiceSettings()
    app = create_agency_app(
        title="infoshare: children's social care service",
        description="Accepts the local authority case system's JSON and publishes canonical "
        "socialcare.* events. Shows what this authority has received.",
        settings=settings,
        kind=AgencyKind.SOCIALCARE,
    )
    directory = settings.directory()
    authority = directory.get(settings.agency_id).name
    agencies = frozenset(a.id for a in directory)

    @app.post(
        "/child-protection-plans",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["child protection"],
        summary="A child protection plan has started",
    )
    async def plan_started(body: ChildProtectionPlanStarted, request: Request) -> Accepted:
        data = mapping.plan_started(body, authority_name=authority)
        return await publish_event(request, Outgoing(mapping.PLAN_STARTED, data, body.plan.id))

    @app.post(
        "/child-protection-plans/ended",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["child protection"],
        summary="A child protection plan has ended",
    )
    async def plan_ended(body: ChildProtectionPlanEnded, request: Request) -> Accepted:
        data = mapping.plan_ended(body, authority_name=authority)
        return await publish_event(request, Outgoing(mapping.PLAN_ENDED, data, body.plan.id))

    @app.post(
        "/referrals",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["children in need"],
        summary="A referral has been received and decided on",
    )
    async def referral(body: ReferralReceived, request: Request) -> Accepted:
        data = mapping_cin.referral_received(body, authority_name=authority, agencies=agencies)
        out = Outgoing(mapping_cin.REFERRAL_RECEIVED, data, body.referral.id)
        return await publish_event(request, out)

    @app.post(
        "/assessments",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["children in need"],
        summary="A single assessment or s47 enquiry has been completed",
    )
    async def assessment(body: AssessmentCompleted, request: Request) -> Accepted:
        data = mapping_cin.assessment_completed(body, authority_name=authority)
        out = Outgoing(mapping_cin.ASSESSMENT_COMPLETED, data, body.assessment.id)
        return await publish_event(request, out)

    @app.post(
        "/case-closures",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["children in need"],
        summary="A child's case has been closed",
    )
    async def case_closed(body: CaseClosed, request: Request) -> Accepted:
        data = mapping_cin.case_closed(body, authority_name=authority)
        return await publish_event(request, Outgoing(mapping_cin.CASE_CLOSED, data, body.case.id))

    @app.post(
        "/looked-after-episodes",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["looked after"],
        summary="A child has become looked after (never where they are placed)",
    )
    async def looked_after_started(body: LookedAfterStarted, request: Request) -> Accepted:
        data = mapping_looked_after.looked_after_started(body, authority_name=authority)
        out = Outgoing(mapping_looked_after.LOOKED_AFTER_STARTED, data, body.episode.id)
        return await publish_event(request, out)

    @app.post(
        "/looked-after-episodes/ended",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["looked after"],
        summary="A child has stopped being looked after",
    )
    async def looked_after_ended(body: LookedAfterEnded, request: Request) -> Accepted:
        data = mapping_looked_after.looked_after_ended(body, authority_name=authority)
        native_id = mapping_looked_after.ended_native_id(body.episode.id)
        out = Outgoing(mapping_looked_after.LOOKED_AFTER_ENDED, data, native_id)
        return await publish_event(request, out)

    return app
