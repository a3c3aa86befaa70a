"""The IG officer's oversight pages: the safeguarding override queue (and its reviews,
sealed into the trail as the API's are), a child's consent records with their history (as
the registry recorded each one in the trail), and who looked at the trail (its access
records). Each look is itself recorded."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from services.audit.child import find_child
from services.audit.console import web
from services.audit.console.base import SIGN_IN, Console
from services.audit.console.forms import SearchForm, problems
from services.audit.console.sessions import Session
from services.audit.models import AuditEntry, OverrideReviewIn
from services.audit.reviews import AlreadyReviewed, NotAnOverride, overrides, review_override
from services.audit.routes_ig import access_record
from services.audit.store import AuditQuery
from services.backbone.audit_contract import AuditOutcome

P = web.PREFIX
QUEUE = 200  # overrides listed at once, oldest first
ACCESS_PAGE = 50
CONSENT_ACTION = "consent_record"  # consent/registry/people_audit.py
MAX_CONSENTS = 1000


def add_oversight_routes(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get(f"{P}/overrides", include_in_schema=False)
    def override_queue(
        request: Request, status: str = "pending", recorded: str | None = None
    ) -> Response:
        session = console.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        return _queue(
            session, "reviewed" if status == "reviewed" else "pending", recorded=bool(recorded)
        )

    def _queue(session: Session, status: str, code: int = 200, **ctx: Any) -> Response:
        # Pending: the oldest first, as they are worked; reviewed: the latest first.
        reviewed = status == "reviewed"
        listed = overrides(store, reviewed=reviewed, limit=QUEUE + 1, newest_first=reviewed)
        console.record_view(
            session,
            "access.override_queue",
            f"viewed the {status} safeguarding override queue ({len(listed[:QUEUE])} listed)",
        )
        return console.show(
            "overrides.html",
            session,
            code,
            queue=status,
            listed=listed[:QUEUE],
            more=len(listed) > QUEUE,
            **ctx,
        )

    @app.post(f"{P}/overrides/{{audit_id}}/review", include_in_schema=False)
    async def review(request: Request, audit_id: str) -> Response:
        session, fields = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        try:
            given = OverrideReviewIn.model_validate(
                {"note": fields.get("note", ""), "outcome": fields.get("outcome") or None}
            )
        except ValidationError as exc:  # the form again, as typed, saying what is wrong
            typed = {"note": fields.get("note", ""), "outcome": fields.get("outcome", "")}
            return _queue(
                session, "pending", 422, problems=problems(exc), failed=audit_id, typed=typed
            )
        try:
            await run_in_threadpool(
                review_override, store, audit_id[:36], given, reviewer=session.person.actor
            )
        except NotAnOverride:
            return console.problem(
                session,
                404,
                "Not an override",
                "No decision shared under a safeguarding override has this id.",
            )
        except AlreadyReviewed:
            return console.problem(
                session,
                409,
                "Reviewed already",
                "Another review of this override was recorded first; reviews are not rewritten.",
            )
        return web.redirect(f"{P}/overrides?status=reviewed&recorded=1")

    @app.get(f"{P}/access", include_in_schema=False)
    def access_log(request: Request, offset: str = "0") -> Response:
        session = console.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        at = int(offset) if offset.isdigit() and len(offset) < 16 else 0  # else the newest
        rows, total = store.search(
            AuditQuery(
                decision=AuditOutcome.ACCESSED.value,
                limit=ACCESS_PAGE,
                offset=at,
                newest_first=True,
            )
        )
        console.record_view(session, "access.access_log", "viewed who looked at the trail")
        return console.show(
            "access.html", session, rows=rows, total=total, offset=at, size=ACCESS_PAGE
        )

    @app.get(f"{P}/consent", include_in_schema=False)
    def consent_form(request: Request) -> Response:
        return console.empty_form(request, "consent.html")

    @app.post(f"{P}/consent", include_in_schema=False)
    async def consent_page(request: Request) -> Response:
        session, fields = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        form = SearchForm.of(fields)
        child_query = console.named_child("consent.html", session, form)
        if isinstance(child_query, Response):
            return child_query

        def run() -> list[AuditEntry]:
            child = find_child(child_query, store, console.audit_keys())
            rows, _ = store.search(
                AuditQuery(
                    action=CONSENT_ACTION, subject_keys=child.subject_keys, limit=MAX_CONSENTS
                )
            )
            store.add_batch(
                [
                    access_record(
                        actor=console.reader(session).actor,
                        code="access.consent_history",
                        reason=f"consent history viewed ({len(rows)} records), child found by "
                        f"{child.kind}",
                        child=child,
                    )
                ]
            )
            return list(rows)

        try:
            history = await run_in_threadpool(run)
        except HTTPException as exc:
            return console.show(
                "consent.html", session, exc.status_code, form=form, problems=[str(exc.detail)]
            )
        return console.show(
            "consent.html", session, form=form, history=history, current=_current(history)
        )


def _current(history: list[AuditEntry]) -> list[AuditEntry]:
    """The newest version of each consent record (by record id), as history lists them."""
    newest: dict[str, AuditEntry] = {}
    for row in history:  # oldest first
        newest[row.consent_record_id or ""] = row
    return list(newest.values())
