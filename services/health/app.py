"""Composition root of the health service (FastAPI app factory): FHIR R4 in, canonical
``health.*`` events out. Routes decode and hand over; fhir_mapping does the mapping."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from fastapi import FastAPI, Request, status

from services.agency.app import create_agency_app
from services.agency.publish import Accepted, publish_events
from services.agency.runtime import AgencyServiceSettings, runtime
from services.agency.submission import Outgoing
from services.backbone.directory import AgencyKind
from services.backbone.offload import large
from services.health import fhir_mapping
from services.health.fhir_http import ERRORS, fhir_body, fhir_json, request_body
from services.health.fhir_parse import Mapped

TAGS: list[str | Enum] = ["FHIR R4"]
SINGLE = (
    "The patient is a contained Patient (subject.reference '#id') or a logical reference: "
    "identifier {system: https://fhir.nhs.uk/Id/nhs-number, value}. The resource's id is its "
    "native id: sending it again is recognised as the same record."
)


async def _publish(request: Request, mapped: Sequence[Mapped]) -> Accepted:
    events = [Outgoing(m.event_type, m.data, m.native_id) for m in mapped]
    return await publish_events(request, events)


def create_app(settings: AgencyServiceSettings | None = None) -> FastAPI:
    settings = settings or AgencyServiceSettings()
    app = create_agency_app(
        title="infoshare: health service",
        description="Accepts FHIR R4 from NHS systems (Encounter, Flag, Appointment, or a "
        "Bundle of them) and publishes canonical health.* events. Shows what this trust has "
        "received. Errors are 422 {detail: [{loc, msg, type}]} as on every infoshare service, "
        "not OperationOutcome.",
        settings=settings,
        kind=AgencyKind.HEALTH,
    )

    @app.post(
        "/fhir",
        status_code=status.HTTP_202_ACCEPTED,
        tags=TAGS,
        summary="A Bundle (transaction, batch, collection or message): every Encounter, Flag "
        "and Appointment entry is published, or none",
        description="References resolve by entry fullUrl (urn:uuid:...) and by Patient/<id>. "
        "One entry that cannot be mapped rejects the Bundle; loc names the entry.",
        openapi_extra=request_body("Bundle", "a FHIR R4 Bundle"),
        responses=ERRORS,
    )
    async def bundle(request: Request) -> Accepted:
        body = await fhir_body(request)
        mapped = await runtime(request).offload.run(
            fhir_mapping.events_from_bundle_body, body, large=large(body)
        )
        return await _publish(request, mapped)

    @app.post(
        "/fhir/Bundle",
        status_code=status.HTTP_202_ACCEPTED,
        tags=TAGS,
        summary="An unscheduled-care attendance: a Bundle with one Encounter and its Patient",
        description="The original route, kept for systems that use it. POST /fhir takes any "
        "Bundle.",
        openapi_extra=request_body(
            "Bundle", "a Bundle: one Encounter (class EMER) and one Patient"
        ),
        responses=ERRORS,
        deprecated=True,
    )
    async def attendance_bundle(request: Request) -> Accepted:
        doc = await fhir_json(request)
        return await _publish(request, [fhir_mapping.attendance_event_from_bundle(doc)])

    for resource_type, summary in (
        (
            "Encounter",
            "An unscheduled-care attendance (Encounter class EMER, or AMB at a UTC, "
            "MIU, walk-in or out-of-hours setting)",
        ),
        ("Flag", "A safeguarding concern (Flag, status active, safeguarding SNOMED CT code)"),
        ("Appointment", "A child was not brought to an appointment (Appointment, status noshow)"),
    ):
        _single_route(app, resource_type, summary)
    return app


def _single_route(app: FastAPI, resource_type: str, summary: str) -> None:
    async def single(request: Request) -> Accepted:
        doc = await fhir_json(request)
        return await _publish(request, [fhir_mapping.event_from_resource(doc, resource_type)])

    app.post(
        f"/fhir/{resource_type}",
        status_code=status.HTTP_202_ACCEPTED,
        tags=TAGS,
        summary=summary,
        description=SINGLE,
        openapi_extra=request_body(resource_type, f"a FHIR R4 {resource_type}"),
        responses=ERRORS,
        name=f"post_{resource_type.lower()}",
    )(single)
