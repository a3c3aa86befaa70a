"""Composition root of the education service (FastAPI app factory)."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import FastAPI, Query, Request, status

from services.agency.app import create_agency_app
from services.agency.publish import Accepted, publish_event, publish_events
from services.agency.runtime import AgencyServiceSettings, runtime
from services.agency.submission import Outgoing
from services.backbone.directory import AgencyKind
from services.backbone.offload import large
from services.education import mapping
from services.education.native import (
    AttendanceConcern,
    ChildMissingEducation,
    ExclusionRecorded,
    SafeguardingConcern,
)
from services.education.upload_events import attendance_events, exclusion_events
from services.education.uploads import (
    CSV_BODY,
    UPLOAD_RESPONSES,
    AttendanceUploadAccepted,
    AttendanceUploadQuery,
    ExclusionsUploadAccepted,
    SchoolQuery,
    read_csv_body,
)

ACCEPTED = status.HTTP_202_ACCEPTED


def create_app(settings: AgencyServiceSettings | None = None) -> FastAPI:
    settings = settings or AgencyServiceSettings()
    app = create_agency_app(
        title="infoshare: education service",
        description="Accepts a school's MIS CSV exports and its MIS or safeguarding system's "
        "JSON, and publishes canonical education.* events. Shows what this school has received.",
        settings=settings,
        kind=AgencyKind.EDUCATION,
    )
    school_name = settings.directory().get(settings.agency_id).name

    @app.post(
        "/attendance/upload",
        status_code=ACCEPTED,
        tags=["MIS CSV export"],
        summary="An attendance export: one row per pupil for a period; rows at or below the "
        "threshold are published as attendance concerns",
        openapi_extra=CSV_BODY,
        responses=UPLOAD_RESPONSES,
    )
    async def attendance_upload(
        request: Request, query: Annotated[AttendanceUploadQuery, Query()]
    ) -> AttendanceUploadAccepted:
        body = await read_csv_body(request)
        made = await runtime(request).offload.run(
            partial(
                attendance_events,
                body,
                school=query.school(),
                period=query.period(),
                threshold=query.threshold,
                school_name=school_name,
            ),
            large=large(body),
            in_thread=True,
        )
        published = await publish_events(request, made.events)
        return AttendanceUploadAccepted(
            **published.model_dump(),
            rows_read=made.rows_read,
            rows_at_or_below_threshold=len(made.events),
            events_published=len(published.events),
            threshold=query.threshold,
        )

    @app.post(
        "/exclusions/upload",
        status_code=ACCEPTED,
        tags=["MIS CSV export"],
        summary="An exclusions export: one row per suspension or permanent exclusion",
        openapi_extra=CSV_BODY,
        responses=UPLOAD_RESPONSES,
    )
    async def exclusions_upload(
        request: Request, query: Annotated[SchoolQuery, Query()]
    ) -> ExclusionsUploadAccepted:
        body = await read_csv_body(request)
        made = await runtime(request).offload.run(
            partial(exclusion_events, body, school=query.school(), school_name=school_name),
            large=large(body),
            in_thread=True,
        )
        published = await publish_events(request, made.events)
        return ExclusionsUploadAccepted(
            **published.model_dump(),
            rows_read=made.rows_read,
            events_published=len(published.events),
        )

    @app.post(
        "/attendance-concerns",
        status_code=ACCEPTED,
        tags=["JSON"],
        summary="One pupil's attendance over a period gives concern (published as sent)",
    )
    async def attendance_concern(body: AttendanceConcern, request: Request) -> Accepted:
        data = mapping.attendance_concern(body, school_name=school_name)
        return await publish_event(
            request,
            Outgoing(mapping.ATTENDANCE_CONCERN, data, mapping.attendance_native_id(body)),
        )

    @app.post(
        "/exclusions",
        status_code=ACCEPTED,
        tags=["JSON"],
        summary="A suspension or permanent exclusion",
    )
    async def exclusion(body: ExclusionRecorded, request: Request) -> Accepted:
        data = mapping.exclusion_recorded(body, school_name=school_name)
        return await publish_event(
            request,
            Outgoing(mapping.EXCLUSION_RECORDED, data, mapping.exclusion_native_id(body)),
        )

    @app.post(
        "/children-missing-education",
        status_code=ACCEPTED,
        tags=["JSON"],
        summary="A child is missing education",
    )
    async def missing_education(body: ChildMissingEducation, request: Request) -> Accepted:
        data = mapping.missing_education_reported(body, school_name=school_name)
        return await publish_event(
            request,
            Outgoing(mapping.MISSING_EDUCATION, data, mapping.missing_education_native_id(body)),
        )

    @app.post(
        "/safeguarding-concerns",
        status_code=ACCEPTED,
        tags=["JSON"],
        summary="The designated safeguarding lead has recorded a safeguarding concern",
    )
    async def safeguarding_concern(body: SafeguardingConcern, request: Request) -> Accepted:
        data = mapping.safeguarding_concern(body, school_name=school_name)
        return await publish_event(
            request,
            Outgoing(
                mapping.SAFEGUARDING_CONCERN, data, mapping.safeguarding_concern_native_id(body)
            ),
        )

    return app
