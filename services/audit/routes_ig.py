"""The IG officer's view of one child: the disclosure report, as JSON, CSV, a FHIR R4
AuditEvent Bundle or PDF. The officer types the child's NHS number, UPN or LA person id;
the service turns it into audit subject keys (the store holds no identifier) and records the
look-up itself in the trail: who looked at which child's record, when, in what form."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from services.audit import disclosures, disclosures_pdf
from services.audit.child import AMBIGUOUS, Child, ChildQuery, find_child
from services.audit.store import ACCESS_ACTION, AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.bearer import PersonAuthorization
from services.backbone.keyed import Key
from services.backbone.keyring import Keyring
from services.backbone.people import PeopleVerifier, PersonRole
from services.backbone.people_http import person_of

MAX_REPORT = 100_000


class ReportFormat(StrEnum):
    JSON = "json"
    CSV = "csv"
    FHIR = "fhir"
    PDF = "pdf"


def add_ig_routes(
    app: FastAPI, store: AuditStore, keyring: Keyring, people: PeopleVerifier | None
) -> None:
    audit_keys = keyring.keys_of("audit_subject")  # older ones find records made before

    @app.post(
        "/audit/disclosure-report",
        tags=["IG"],
        summary="Every disclosure decision about one child (IG officers only)",
        description="The accounting of disclosures for a child: who received what, when, "
        "under which protocol and lawful basis, which fields, and what was withheld and why. "
        "`format`: `json` (default), `csv`, `fhir` (a FHIR R4 Bundle of AuditEvents, IHE "
        "BALP PrivacyDisclosure) or `pdf` (a printable report, landscape A4). Needs an IG "
        "officer's bearer token. The child is named by exactly one of `nhs_number`, `upn` or "
        "`la_person_id` with `local_authority`, in the body, never the URL; the look-up is "
        "itself recorded in the audit trail.",
        responses={
            200: {"content": {"text/csv": {}, "application/fhir+json": {}, "application/pdf": {}}},
            409: {"description": AMBIGUOUS},
            413: {"description": f"more than {MAX_REPORT:,} decisions about the child"},
        },
    )
    def disclosure_report(
        child: ChildQuery,
        authorization: PersonAuthorization,
        format: ReportFormat = Query(ReportFormat.JSON),
    ) -> Response:
        officer = person_of(people, authorization, PersonRole.IG_OFFICER).actor
        try:
            found, entries = child_report(store, audit_keys, child, officer, format.value)
        except TooManyDecisions:
            return _too_many()
        return report_document(found, entries, format, officer)


def report_document(
    found: Child, entries: list[dict[str, Any]], format: ReportFormat, officer: str
) -> Response:
    """The report in ``format``: JSON, CSV, a FHIR Bundle or a PDF (as a download)."""
    subject_key = found.key
    if format is ReportFormat.CSV:
        return Response(disclosures.as_csv(entries), media_type="text/csv")
    if format is ReportFormat.FHIR:
        bundle = disclosures.as_fhir_bundle(entries, subject_key=subject_key)
        return JSONResponse(bundle, media_type="application/fhir+json")
    if format is ReportFormat.PDF:
        pdf = disclosures_pdf.as_pdf(
            entries,
            subject_key=subject_key,
            produced_at=datetime.now(UTC),
            produced_for=officer,
        )
        return Response(
            pdf,
            media_type="application/pdf",
            headers={"Content-Disposition": 'attachment; filename="disclosure-report.pdf"'},
        )
    body: dict[str, Any] = {
        "subject_key": subject_key,
        "count": len(entries),
        "items": disclosures.rows(entries),
    }
    return JSONResponse(_jsonable(body))


class TooManyDecisions(Exception):
    """More decisions about the child than one report holds (MAX_REPORT)."""


def child_report(
    store: AuditStore,
    audit_keys: Sequence[Key],
    child: ChildQuery,
    officer: str,
    form: str,
) -> tuple[Child, list[dict[str, Any]]]:
    """The child's decisions, oldest first, with the look-up recorded in the trail (``form``:
    what the officer was given: json, csv, fhir, pdf, or the console's page); never a
    report that silently leaves decisions out (TooManyDecisions). 409 if the identifier is
    ambiguous (find_child)."""
    found = find_child(child, store, audit_keys)
    stored = store.by_subject(found.subject_keys, limit=MAX_REPORT + 1)
    if len(stored) > MAX_REPORT:
        raise TooManyDecisions
    entries = [e.model_dump() for e in stored]
    store.add_batch([_access(officer, found, form, len(entries))])
    return found, entries


def _too_many() -> JSONResponse:
    """413 in the shape of every other 413 (the body's bounds): what is too large is the
    report the body asks for."""
    msg = (
        f"more than {MAX_REPORT:,} decisions about this child: page through them with "
        "POST /audit/decisions/search and the child"
    )
    problem = {"loc": ["body"], "msg": msg, "type": "report.too_large"}
    return JSONResponse(status_code=413, content={"detail": [problem]})


def _access(officer: str, child: Child, form: str, count: int) -> AuditRecord:
    """Who looked at which child's trail: sealed into the chain like every decision."""
    return access_record(
        actor=f"ig-officer:{officer}",
        code="access.disclosure_report",
        reason=f"disclosure report ({form}, {count} decisions) produced for an IG "
        f"officer, child found by {child.kind}",
        child=child,
    )


def access_record(*, actor: str, code: str, reason: str, child: Child | None = None) -> AuditRecord:
    """A read of the audit trail, recorded in it (who watches the watchers)."""
    return AuditRecord(
        audit_id=str(uuid.uuid4()),
        recorded_at=datetime.now(UTC),
        action=ACCESS_ACTION,
        decision=AuditOutcome.ACCESSED,
        reason_code=code,
        reason=reason,
        actor=actor,
        subject_key=child.key if child else None,
        subject_aliases=[child.typed_key] if child and child.typed_key != child.key else [],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return disclosures.iso(value)
    return value
