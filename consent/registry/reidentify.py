"""Re-identification: an IG officer reverses a token for a stated reason. Every attempt is
audited; a successful one before the value is returned, so no answer leaves unrecorded."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from consent.core.tokens import TokenError, detokenise, key_id_of
from consent.registry.people_audit import person_record
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.bearer import PersonAuthorization
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import keyed_id
from services.backbone.keyring import Keyring
from services.backbone.openapi_responses import answers
from services.backbone.people import PeopleVerifier, PersonRole
from services.backbone.people_http import person_of_async

SendAudit = Callable[[AuditRecord, bytes], Awaitable[None]]
# What goes into the audit record: no control character in a name, no NUL anywhere (the
# record refuses one, which would be a 500 where a 422 is due).
NAME = r"^[^\x00-\x1f\x7f]*$"
TEXT = r"^[^\x00]*$"


class ReidentifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=10, max_length=2000, description="a tok1. value")
    # All three go into the audit record of the attempt: no longer than its columns take.
    recipient: str = Field(
        min_length=1, max_length=64, pattern=NAME, description="the agency the token was given to"
    )
    field: str = Field(
        min_length=1,
        max_length=128,
        pattern=NAME,
        description="the source field it stands for, e.g. subject.nhs_number",
    )
    reason: str = Field(
        min_length=20, max_length=2000, pattern=TEXT, description="why, for the audit"
    )


class Reidentified(BaseModel):
    value: str = Field(description="what the token stands for")
    audit_id: str = Field(description="the audit record of this re-identification")
    officer: str = Field(description="the IG officer, as the audit record names them")


def _record(body: ReidentifyIn, officer: str, **outcome: Any) -> AuditRecord:
    return person_record("re_identify", officer, recipient=body.recipient, **outcome)


def add_routes(
    app: FastAPI, *, keyring: Keyring, people: PeopleVerifier | None, send_audit: SendAudit
) -> None:
    @app.post(
        "/reidentify",
        response_model=Reidentified,
        tags=["re-identification"],
        summary="An IG officer reverses a token, stating why; always audited first",
        responses=answers({503: "the audit trail is unavailable: nothing was re-identified"}),
    )
    async def reidentify(body: ReidentifyIn, authorization: PersonAuthorization) -> Reidentified:
        officer = (await person_of_async(people, authorization, PersonRole.IG_OFFICER)).actor
        try:
            value = detokenise(
                keyring.tokens, recipient=body.recipient, path=body.field, token=body.token
            )
        except TokenError as exc:
            failed = _record(
                body,
                officer,
                decision=AuditOutcome.WITHHELD,
                reason_code="re_identify.refused",
                reason=f"{exc}; stated reason: {body.reason}",
                fields_withheld=[body.field],
            )
            # Who tried, why they said and what failed: best effort, the answer is no anyway.
            with contextlib.suppress(KafkaError):
                await send_audit(failed, b"")
            raise HTTPException(
                422, detail=[{"loc": ["body", "token"], "msg": str(exc), "type": "token.invalid"}]
            ) from None
        subject_key = (
            keyed_id(
                keyring.require_audit_subject().secret,
                "audit-subject",
                subject_identifier(nhs_number=value),
            )
            if body.field == "subject.nhs_number"
            else None
        )
        record = _record(
            body,
            officer,
            decision=AuditOutcome.RE_IDENTIFIED,
            reason_code="re_identified.by_ig",
            reason=body.reason,
            fields_disclosed=[body.field],
            key_id=key_id_of(body.token),
            subject_key=subject_key,
        )
        try:  # audited before the value is given, or not given at all
            await send_audit(record, (subject_key or "").encode())
        except KafkaError:
            raise HTTPException(
                503, detail="the audit trail is unavailable; nothing was re-identified"
            ) from None
        return Reidentified(value=value, audit_id=record.audit_id, officer=officer)
