"""Composition root of the health service (FastAPI app factory)."""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, Request, status

from services.backbone.agency_app import (
    AgencyServiceSettings,
    create_agency_app,
    publish_event,
)
from services.backbone.directory import AgencyKind
from services.backbone.identifiers import subject_identifier
from services.health.fhir_mapping import ATTENDANCE, attendance_from_bundle


def create_app(settings: AgencyServiceSettings | None = None) -> FastAPI:
    settings = settings or AgencyServiceSettings()
    app = create_agency_app(
        title="infoshare: health service",
        description="Accepts FHIR R4 from NHS systems and publishes canonical health.* events. "
        "Shows what this trust has received.",
        settings=settings,
        kind=AgencyKind.HEALTH,
    )

    @app.post(
        "/fhir/Bundle",
        status_code=status.HTTP_202_ACCEPTED,
        tags=["FHIR R4"],
        summary="An unscheduled-care attendance: a Bundle with an Encounter (class EMER) "
        "and its Patient",
    )
    async def attendance(
        request: Request, bundle: dict[str, Any] = Body(..., media_type="application/fhir+json")
    ) -> dict[str, str]:
        data = attendance_from_bundle(bundle)
        return await publish_event(
            request,
            event_type=ATTENDANCE,
            data=data,
            subject_id=subject_identifier(nhs_number=data["subject"]["nhs_number"]),
            native_id=data["attendance"]["encounter_id"],
        )

    return app
