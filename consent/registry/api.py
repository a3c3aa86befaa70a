"""Composition root of the consent registry API: record consent (granted, refused,
withdrawn) per subject, purpose and recipient scope, kept on the compacted
``consent.records`` topic that the processor reads before every batch.

Identifiers arrive in request bodies only (never in a URL), are turned into the subject's
routing key at once, and are never stored, logged or echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import FastAPI, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from consent.core.consent import ALL_RECIPIENTS, ConsentRecord, ConsentStatus, GivenBy, record_key
from consent.core.model import Purpose
from consent.registry import reidentify
from consent.registry.people_audit import consent_recorded, consent_searched, consents_expiring
from consent.registry.view import ConsentView
from services.backbone import kafka, telemetry
from services.backbone.audit_contract import AuditRecord
from services.backbone.bearer import PersonAuthorization
from services.backbone.http import IsoDate, NhsNumber, create_service_app
from services.backbone.http_telemetry import instrument_http
from services.backbone.identifiers import subject_identifier
from services.backbone.key_roles import Role
from services.backbone.keyed import keyed_id, routing_key
from services.backbone.metering import Metrics
from services.backbone.openapi_responses import answers
from services.backbone.people import PersonRole
from services.backbone.people_http import is_person, person_of_async
from services.backbone.settings import HttpSettings
from services.personindex.store import PersonIndex

RECORDERS = (PersonRole.PRACTITIONER, PersonRole.IG_OFFICER)  # who records and looks up consent
MAX_BODY_BYTES = 64 * 1024  # a consent record, or a token and the reason to reverse it


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nhs_number: NhsNumber = Field(description="the child's NHS number (10 digits, check digit)")


class ConsentIn(_Body):
    purpose: Purpose
    scope: str = Field(
        ALL_RECIPIENTS, max_length=64, description="a recipient agency id, or * for all"
    )
    status: ConsentStatus
    given_by: GivenBy
    # Who recorded it is the signed-in person (their token), never what a body says.
    evidence_ref: str | None = Field(None, max_length=200, description="where the form is kept")
    valid_until: IsoDate | None = Field(
        None,
        description="a grant lasts to the end of this day (UTC) and no longer: after it, "
        "events are withheld as withheld.consent_expired; none: until withdrawn",
    )

    @model_validator(mode="after")
    def _until_only_for_a_grant(self) -> ConsentIn:
        if self.valid_until is None:
            return self
        if self.status is not ConsentStatus.GRANTED:
            raise PydanticCustomError(
                "consent.valid_until", "only a grant has a valid_until (refusals do not expire)"
            )
        if self.valid_until < datetime.now(UTC).date():
            raise PydanticCustomError("consent.valid_until", "valid_until is in the past")
        return self


class SubjectQuery(_Body):
    pass


class ConsentOut(BaseModel):
    """One consent record as the registry keeps it (no identifier: the child is its key)."""

    record_id: str
    version: int = Field(ge=1, description="1 for the first record of this purpose and scope")
    status: ConsentStatus
    purpose: str
    scope: str = Field(description="a recipient agency id, or * for all")
    given_by: GivenBy
    recorded_by: str = Field(description="the signed-in person who recorded it")
    recorded_at: str = Field(description="ISO 8601, with its UTC offset")
    evidence_ref: str | None = None
    valid_until: str | None = Field(None, description="the last day a grant holds, if any")
    expires_in_days: int | None = Field(
        None, description="days left before a grant with a valid_until expires (0: today)"
    )


EXPIRING_DAYS = 30  # GET /consents/expiring: within this many days unless asked otherwise


class ConsentList(BaseModel):
    items: list[ConsentOut]


UNAVAILABLE = answers({503: "the audit trail or the registry's topic is unavailable: nothing done"})


def create_app(settings: HttpSettings | None = None) -> FastAPI:
    settings = settings or HttpSettings()
    directory = settings.directory()
    topic = settings.topics().consent_records
    keyring = settings.keyring(Role.CONSENT)
    people = settings.people()  # practitioners and IG officers, as themselves
    routing = keyring.require_routing()
    audit_key = keyring.require_audit_subject()
    index = PersonIndex(settings.person_index_url(), routing)
    index.create_schema()
    audit_topic = settings.topics().audit_activity  # decisions' topic is the processor's

    def subject_key(nhs_number: str) -> str:
        """The child's routing key: under the identity the person index keys the child's
        events by (a child a school founded by UPN), else the NHS number's."""
        identity = subject_identifier(nhs_number=nhs_number)
        return routing_key(routing, index.identity_of(identity) or identity)

    def audit_subject(nhs_number: str) -> str:
        """The child as the audit trail keys it (never the identifier)."""
        return keyed_id(
            audit_key.secret, "audit-subject", subject_identifier(nhs_number=nhs_number)
        )

    view = ConsentView(topic=topic, access=settings.kafka_access())
    producer: dict[str, AIOKafkaProducer] = {}

    metrics = Metrics("infoshare-consent")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        producer["p"] = kafka.producer(settings.kafka_access())
        await producer["p"].start()
        await view.start()
        try:
            yield
        finally:
            await view.stop()
            await producer["p"].stop()
            metrics.shutdown()  # an OTLP reader sends its last interval

    app = create_service_app(
        title="infoshare: consent registry",
        description="Consent per child, purpose and recipient scope: granted, refused or "
        "withdrawn; given by the child, a parent or a guardian. A withdrawal applies to every "
        "event processed after it is recorded.",
        lifespan=lifespan,
        max_body_bytes=MAX_BODY_BYTES,
        # A body from whom no route would admit is refused before it is read.
        body_callers=lambda token: is_person(people, token),
    )

    @app.post(
        "/consents",
        status_code=status.HTTP_201_CREATED,
        response_model=ConsentOut,
        tags=["consent"],
        summary="Record consent given, refused or withdrawn",
        responses=UNAVAILABLE,
    )
    async def record(body: ConsentIn, authorization: PersonAuthorization) -> dict[str, Any]:
        person = await person_of_async(people, authorization, *RECORDERS)
        if body.scope != ALL_RECIPIENTS and body.scope not in directory:
            raise HTTPException(
                422,
                detail=[
                    {"loc": ["body", "scope"], "msg": "unknown agency", "type": "scope.unknown"}
                ],
            )
        subject = await asyncio.to_thread(subject_key, body.nhs_number)
        await caught_up("nothing was recorded")
        previous = view.by_subject.get(subject, {}).get((body.purpose.value, body.scope))
        record = ConsentRecord(
            record_id=previous.record_id if previous else str(uuid.uuid4()),
            version=previous.version + 1 if previous else 1,
            status=body.status,
            purpose=body.purpose.value,
            scope=body.scope,
            given_by=body.given_by,
            recorded_by=person.actor,
            recorded_at=datetime.now(UTC).isoformat(),
            evidence_ref=body.evidence_ref,
            valid_until=body.valid_until.isoformat() if body.valid_until else None,
        )
        child = await asyncio.to_thread(audit_subject, body.nhs_number)
        recorded = consent_recorded(
            person,
            subject_key=child,
            status=record.status.value,
            purpose=record.purpose,
            scope=record.scope,
            record_id=record.record_id,
            version=record.version,
            valid_until=record.valid_until,
        )
        # Audited first: a grant unlocks disclosure, so none stands unrecorded.
        await audited(recorded, child, "nothing was recorded")
        key = record_key(subject, record.purpose, record.scope).encode()
        try:
            await producer["p"].send_and_wait(topic, orjson.dumps(record.to_json()), key=key)
        except KafkaError:
            raise HTTPException(
                503, detail="the consent registry is unavailable; nothing was recorded"
            ) from None
        return shown(record)

    @app.post(
        "/consents/search",
        response_model=ConsentList,
        tags=["consent"],
        summary="The current consent records of one child (identifier in the body)",
        responses=UNAVAILABLE,
    )
    async def search(body: SubjectQuery, authorization: PersonAuthorization) -> dict[str, Any]:
        person = await person_of_async(people, authorization, *RECORDERS)
        subject = await asyncio.to_thread(subject_key, body.nhs_number)
        await caught_up("nothing was shown")
        records = view.by_subject.get(subject, {})
        child = await asyncio.to_thread(audit_subject, body.nhs_number)
        # A search reveals that a child is known to early help: audited before it answers.
        await audited(consent_searched(person, subject_key=child, found=len(records)), child)
        return {"items": [shown(r) for _, r in sorted(records.items())]}

    @app.get(
        "/consents/expiring",
        response_model=ConsentList,
        tags=["consent"],
        summary="Grants that expire within a number of days, soonest first",
        description="Every child's grants whose `valid_until` falls within `within_days` "
        "(default 30) of today, for the practitioner who took them to ask again in time. "
        "A record names no child: `evidence_ref` and `record_id` lead back to the case "
        "file. The look is audited.",
        responses=UNAVAILABLE,
    )
    async def expiring(
        authorization: PersonAuthorization,
        within_days: int = Query(EXPIRING_DAYS, ge=0, le=366),
    ) -> dict[str, Any]:
        person = await person_of_async(people, authorization, *RECORDERS)
        await caught_up("nothing was shown")
        today = datetime.now(UTC).date()
        soon = sorted(
            (
                r
                for records in view.by_subject.values()
                for r in records.values()
                if r.status is ConsentStatus.GRANTED
                and r.valid_until is not None
                and 0 <= (date.fromisoformat(r.valid_until) - today).days <= within_days
            ),
            key=lambda r: (r.valid_until or "", r.record_id),
        )
        await audited(consents_expiring(person, found=len(soon)), "consents-expiring")
        return {"items": [shown(r) for r in soon]}

    def shown(record: ConsentRecord) -> dict[str, Any]:
        """A record as answered: with the days its grant has left, if it expires."""
        out = record.to_json()
        if record.valid_until is not None:
            left = date.fromisoformat(record.valid_until) - datetime.now(UTC).date()
            out["expires_in_days"] = left.days
        return out

    async def caught_up(undone: str) -> None:
        try:
            await view.catch_up()
        except KafkaError:
            raise HTTPException(
                503, detail=f"the consent registry is unavailable; {undone}"
            ) from None

    async def send_audit(record: AuditRecord, key: bytes) -> None:
        value = record.model_dump_json().encode()
        # The request's trace rides along: the audit write joins it.
        headers = telemetry.inject_headers()
        await producer["p"].send_and_wait(audit_topic, value, key=key, headers=headers)

    async def audited(record: AuditRecord, child: str, undone: str = "nothing was shown") -> None:
        try:
            await send_audit(record, child.encode())
        except KafkaError:
            raise HTTPException(503, detail=f"the audit trail is unavailable; {undone}") from None

    reidentify.add_routes(app, keyring=keyring, people=people, send_audit=send_audit)
    instrument_http(app, metrics, token=settings.scrape_token())
    return app
