"""Searching the audit trail: by recipient, publishing agency, event type, protocol,
purpose, decision and time (``GET /audit/decisions``), and by child as well (``POST
/audit/decisions/search``, the identifier in the body). An IG officer searches everything;
an agency, with its API token, only the decisions about the data it published. Every search
is itself recorded (decision ``accessed``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from pydantic import BaseModel, Field

from services.audit.access import Reader, reader
from services.audit.child import AMBIGUOUS, Child, ChildQuery, find_child
from services.audit.models import AuditEntryPublic, AuditPage, as_utc
from services.audit.routes_ig import access_record
from services.audit.store import AuditQuery, AuditStore
from services.backbone.audit_contract import AuditOutcome
from services.backbone.bearer import AgencyOrPersonAuthorization
from services.backbone.http import IsoInstant, WholeNumber
from services.backbone.key_reload import KeyringSource
from services.backbone.openapi_responses import answers
from services.backbone.people import PeopleVerifier

MAX_PAGE = 1000
MAX_OFFSET = 2**63 - 1  # what a database takes (64 bits): past it a 422, not a 500
# The filters are written into the search's own access record, sealed into the trail: no
# longer than the trail's columns, and no control character (a NUL could not be stored).
_TEXT = r"^[^\x00-\x1f\x7f]*$"
ANOTHER_SOURCE = "an agency's key with another agency as source_agency"


def _filter(description: str, max_length: int) -> Any:
    return Field(None, description=description, max_length=max_length, pattern=_TEXT)


class DecisionFilters(BaseModel):
    recipient: str | None = _filter("recipient agency id", 64)
    decision: AuditOutcome | None = None
    source_agency: str | None = _filter("publishing agency id", 64)
    event_type: str | None = _filter("CloudEvents type", 128)
    protocol_id: str | None = _filter("sharing protocol id", 128)
    purpose: str | None = _filter("purpose of use, as the protocol names it", 64)
    since: IsoInstant | None = Field(
        None, description="recorded at or after (ISO 8601; UTC if no offset)"
    )
    until: IsoInstant | None = Field(
        None, description="recorded before (ISO 8601; UTC if no offset)"
    )
    limit: int = Field(100, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ChildSearch(DecisionFilters):
    """The search as a JSON body: its numbers JSON numbers (the filters' own, as query
    parameters or a form, are text)."""

    child: ChildQuery | None = Field(
        None, description="the child, by exactly one of NHS number, UPN or LA person id"
    )
    limit: WholeNumber = Field(100, ge=1, le=MAX_PAGE)
    offset: WholeNumber = Field(0, ge=0, le=MAX_OFFSET)


def search(
    store: AuditStore, who: Reader, filters: DecisionFilters, child: Child | None = None
) -> AuditPage:
    source_agency = filters.source_agency
    if who.agency is not None:  # an agency sees the decisions about what it published
        if source_agency not in (None, who.agency):
            raise HTTPException(403, detail="an agency sees only the data it published")
        source_agency = who.agency
    decision = filters.decision.value if filters.decision else None
    rows, total = store.search(
        AuditQuery(
            recipient=filters.recipient,
            decision=decision,
            source_agency=source_agency,
            event_type=filters.event_type,
            protocol_id=filters.protocol_id,
            purpose=filters.purpose,
            subject_keys=child.subject_keys if child else None,
            since=as_utc(filters.since),
            until=as_utc(filters.until),
            limit=filters.limit,
            offset=filters.offset,
        )
    )
    named = {
        "recipient": filters.recipient,
        "decision": decision,
        "source_agency": source_agency,
        "event_type": filters.event_type,
        "protocol_id": filters.protocol_id,
        "purpose": filters.purpose,
        "child": f"by {child.kind}" if child else None,
    }
    listed = ", ".join(f"{k}={v}" for k, v in named.items() if v) or "none"
    store.add_batch(
        [
            access_record(
                actor=who.actor,
                code="access.search",
                reason=f"searched the audit trail (filters: {listed}; {total} found)",
                child=child,
            )
        ]
    )
    return AuditPage(
        items=[AuditEntryPublic.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=filters.limit,
        offset=filters.offset,
    )


def add_search_routes(
    app: FastAPI, store: AuditStore, keys: KeyringSource, people: PeopleVerifier | None
) -> None:
    keys.current().require_audit_subject()  # refuse to start without one

    @app.get(
        "/audit/decisions",
        response_model=AuditPage,
        tags=["audit"],
        summary="Search decisions by agency, protocol, purpose, decision and time",
        responses=answers({403: ANOTHER_SOURCE}),
    )
    def decisions(
        filters: Annotated[DecisionFilters, Query()],
        authorization: AgencyOrPersonAuthorization,
    ) -> AuditPage:
        who = reader(authorization, keys.current(), people)
        return search(store, who, filters)

    @app.post(
        "/audit/decisions/search",
        response_model=AuditPage,
        tags=["audit"],
        summary="Search decisions, by child too (the identifier in the body)",
        description="The filters of `GET /audit/decisions`, plus `child`: exactly one of "
        "`nhs_number`, `upn`, or `la_person_id` with `local_authority`. The service keys the "
        "identifier (the store holds none) and follows the aliases the trail recorded, so a "
        "UPN finds the decisions filed under the child's NHS number too.",
        responses=answers({403: ANOTHER_SOURCE, 409: AMBIGUOUS}),
    )
    def search_decisions(
        body: ChildSearch, authorization: AgencyOrPersonAuthorization
    ) -> AuditPage:
        who = reader(authorization, keys.current(), people)
        child = (
            find_child(
                body.child,
                store,
                keys.current().keys_of("audit_subject"),
                linked_by=who.agency,
            )
            if body.child
            else None
        )
        return search(store, who, body, child)
