"""Searching disclosures and a child's disclosure report (on screen, or exported as CSV,
PDF or a FHIR Bundle), through the API's own functions: the same rules, the same refusals,
and each look recorded in the trail the same way."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import ValidationError

from services.audit.child import find_child
from services.audit.console import web
from services.audit.console.base import SIGN_IN, Console
from services.audit.console.forms import SearchForm, child_of, filters_of, problems
from services.audit.disclosures import rows
from services.audit.models import AuditPage
from services.audit.routes_ig import ReportFormat, TooManyDecisions, child_report, report_document
from services.audit.routes_search import search

P = web.PREFIX
EXPORTS = {"csv": "csv", "pdf": "pdf", "fhir": "fhir.json"}  # format: file name suffix


def add_search_routes(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get(f"{P}/search", include_in_schema=False)
    def search_form(request: Request) -> Response:
        return console.empty_form(request, "search.html")

    @app.post(f"{P}/search", include_in_schema=False)
    async def search_page(request: Request) -> Response:
        session, fields = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        form = SearchForm.of(fields)
        try:
            child_query, filters = child_of(form), filters_of(form)
        except ValidationError as exc:
            return console.show("search.html", session, 422, form=form, problems=problems(exc))

        def run() -> AuditPage:
            found = None
            if child_query is not None:
                found = find_child(child_query, store, console.audit_keys())
            return search(store, console.reader(session), filters, found)

        try:
            result = await run_in_threadpool(run)
        except HTTPException as exc:  # an identifier linked to two children
            return console.show(
                "search.html", session, exc.status_code, form=form, problems=[str(exc.detail)]
            )
        return console.show("search.html", session, form=form, page=result, pages=_pages(result))

    @app.post(f"{P}/report", include_in_schema=False)
    async def report_page(request: Request) -> Response:
        return await _report(request, None)

    @app.post(f"{P}/report/export", include_in_schema=False)
    async def report_export(request: Request) -> Response:
        return await _report(request, "export")

    async def _report(request: Request, export: str | None) -> Response:
        session, fields = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        form = SearchForm.of(fields)
        fmt = ReportFormat(fields["format"]) if fields.get("format") in EXPORTS else None
        if export and fmt is None:
            return console.problem(session, 422, "Unknown export", "Export as CSV, PDF or FHIR.")
        child_query = console.named_child("search.html", session, form)
        if isinstance(child_query, Response):
            return child_query
        actor = session.person.actor
        try:
            found, entries = await run_in_threadpool(
                child_report,
                store,
                console.audit_keys(),
                child_query,
                actor,
                fmt.value if fmt else "console page",
            )
        except TooManyDecisions:
            return console.problem(
                session,
                413,
                "Too many decisions",
                "More decisions about this child than one report holds: search by child and "
                "page through them.",
            )
        except HTTPException as exc:
            return console.show(
                "search.html", session, exc.status_code, form=form, problems=[str(exc.detail)]
            )
        if fmt is not None:
            document = report_document(found, entries, fmt, actor)
            name = f"disclosure-report.{EXPORTS[fmt.value]}"
            document.headers["Content-Disposition"] = f'attachment; filename="{name}"'
            return web.secured(document)
        return console.show("report.html", session, form=form, kind=found.kind, items=rows(entries))


def _pages(result: AuditPage) -> list[tuple[str, int]]:
    """The previous and next pages' offsets, where there are such pages."""
    out = []
    if result.offset > 0:
        out.append(("Previous page", max(0, result.offset - result.limit)))
    if result.offset + len(result.items) < result.total:
        out.append(("Next page", result.offset + result.limit))
    return out
