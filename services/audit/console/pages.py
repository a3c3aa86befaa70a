"""The IG console's pages, served by the audit service under /console: sign-in through the
organisation's identity provider (signin.py), a search of the trail and a child's disclosure
report. Only IG officers; every search and report is recorded in the trail, as the API's
are. A child's identifier travels in form bodies only, never a URL."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import ValidationError

from services.audit.access import Reader
from services.audit.child import find_child
from services.audit.console import web
from services.audit.console.forms import KINDS, SearchForm, child_of, filters_of, problems
from services.audit.console.sessions import SIGN_IN_S, Session, Sessions
from services.audit.console.signin import Client, OidcSignIn, SignInFailed
from services.audit.disclosures import rows
from services.audit.models import AuditPage
from services.audit.routes_ig import ReportFormat, TooManyDecisions, child_report, report_document
from services.audit.routes_search import search
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome
from services.backbone.key_reload import KeyringSource
from services.backbone.people import PeopleConfig, PeopleVerifier, PersonRole

P = web.PREFIX
CsrfField = Annotated[str | None, Form()]


@dataclass(frozen=True)
class ConsoleOptions:
    client_id: str | None = None  # default: the audience people's tokens name
    client_secret: str | None = None
    public_url: str | None = None  # default: the URL the request came in on
    idle_s: float = 900.0
    max_s: float = 8 * 3600.0
    clock: Callable[[], float] = time.monotonic


def add_console(
    app: FastAPI,
    store: AuditStore,
    keys: KeyringSource,
    people: PeopleVerifier | None,
    options: ConsoleOptions = ConsoleOptions(),
) -> None:
    env = web.environment()
    env.globals.update(
        kinds=KINDS,
        decisions=[o.value for o in AuditOutcome],
        exports=[("csv", "CSV"), ("pdf", "PDF"), ("fhir", "FHIR Bundle")],
    )
    sessions = Sessions(options.clock, idle_s=options.idle_s, max_s=options.max_s)
    signin = _signin(people, options) if people is not None else None

    def callback_url(request: Request) -> str:
        base = options.public_url or str(request.base_url)
        return base.rstrip("/") + f"{P}/callback"

    def officer(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(web.SESSION_COOKIE))

    def show(name: str, session: Session | None, status: int = 200, **context: Any) -> Response:
        return web.page(env, name, status, session=session, **context)

    @app.exception_handler(FormRefused)
    async def refused(_request: Request, _exc: FormRefused) -> Response:
        return show(
            "problem.html",
            None,
            403,
            title="Form refused",
            detail=(
                "This form did not come from your current console session (it may be from an "
                "older page or another site). Open the page again and resend it."
            ),
            again=False,
        )

    @app.get(P, include_in_schema=False)
    def home() -> Response:
        return web.redirect(f"{P}/search")

    @app.get(f"{P}/static/console.css", include_in_schema=False)
    def stylesheet() -> Response:
        return web.secured(FileResponse(web.STATIC / "console.css", media_type="text/css"))

    @app.get(f"{P}/signin", include_in_schema=False)
    def begin(request: Request) -> Response:
        if signin is None:
            return show(
                "problem.html",
                None,
                503,
                title="No identity provider",
                detail=(
                    "This service has no identity provider configured (INFOSHARE_OIDC_ISSUER)."
                ),
            )
        key, started = sessions.begin_sign_in()
        try:
            to = signin.authorization_url(started, callback_url(request))
        except SignInFailed as exc:
            return show("problem.html", None, 502, title="Sign-in unavailable", detail=str(exc))
        response = web.redirect(to)
        web.set_cookie(response, request, web.SIGN_IN_COOKIE, key, int(SIGN_IN_S))
        return response

    @app.get(f"{P}/callback", include_in_schema=False)
    def finish(request: Request, code: str | None = None, state: str | None = None) -> Response:
        started = sessions.finish_sign_in(request.cookies.get(web.SIGN_IN_COOKIE), state or "")
        if signin is None or started is None or not code:
            return show(
                "problem.html",
                None,
                400,
                title="Sign-in not completed",
                detail=("This sign-in was not begun here, was used already, or took too long."),
                again=True,
            )
        try:
            person = signin.finish(started, code, callback_url(request))
        except SignInFailed as exc:
            return show(
                "problem.html", None, 401, title="Sign-in failed", detail=str(exc), again=True
            )
        if PersonRole.IG_OFFICER not in person.roles:
            return show(
                "problem.html",
                None,
                403,
                title="Not for your role",
                detail=(
                    "The console is for information governance officers (the ig_officer role)."
                ),
            )
        response = web.redirect(f"{P}/search")
        web.forget_cookie(response, request, web.SIGN_IN_COOKIE)
        web.set_cookie(
            response, request, web.SESSION_COOKIE, sessions.open(person), int(options.max_s)
        )
        return response

    @app.post(f"{P}/signout", include_in_schema=False)
    def sign_out(request: Request, csrf: CsrfField = None) -> Response:
        session = officer(request)
        if session is not None and web.form_allowed(request, session, csrf):
            sessions.close(request.cookies.get(web.SESSION_COOKIE))
        response = web.redirect(f"{P}/signed-out")
        web.forget_cookie(response, request, web.SESSION_COOKIE)
        return response

    @app.get(f"{P}/signed-out", include_in_schema=False)
    def signed_out() -> Response:
        return show("signed_out.html", None)

    @app.get(f"{P}/search", include_in_schema=False)
    def search_form(request: Request) -> Response:
        session = officer(request)
        if session is None:
            return web.redirect(f"{P}/signin")
        return show("search.html", session, form=SearchForm())

    @app.post(f"{P}/search", include_in_schema=False)
    async def search_page(request: Request) -> Response:
        session, fields = await _posted(request, officer)
        if session is None:
            return web.redirect(f"{P}/signin")
        form = SearchForm.of(fields)
        try:
            child_query, filters = child_of(form), filters_of(form)
        except ValidationError as exc:
            return show("search.html", session, 422, form=form, problems=problems(exc))
        who = Reader(f"ig-officer:{session.person.actor}"[:128], None)

        def run() -> AuditPage:
            found = None
            if child_query is not None:
                found = find_child(child_query, store, keys.current().keys_of("audit_subject"))
            return search(store, who, filters, found)

        try:
            result = await run_in_threadpool(run)
        except HTTPException as exc:  # an identifier linked to two children
            return show(
                "search.html", session, exc.status_code, form=form, problems=[str(exc.detail)]
            )
        return show("search.html", session, form=form, page=result, pages=_pages(result))

    @app.post(f"{P}/report", include_in_schema=False)
    async def report_page(request: Request) -> Response:
        return await _report(request, None)

    @app.post(f"{P}/report/export", include_in_schema=False)
    async def report_export(request: Request) -> Response:
        chosen = (await request.form()).get("format")
        fmt = ReportFormat(chosen) if chosen in ("csv", "pdf", "fhir") else ReportFormat.CSV
        return await _report(request, fmt)

    async def _report(request: Request, fmt: ReportFormat | None) -> Response:
        session, fields = await _posted(request, officer)
        if session is None:
            return web.redirect(f"{P}/signin")
        form = SearchForm.of(fields)
        try:
            child_query = child_of(form)
        except ValidationError as exc:
            return show("search.html", session, 422, form=form, problems=problems(exc))
        if child_query is None:
            return show(
                "search.html",
                session,
                422,
                form=form,
                problems=["name the child: an NHS number, UPN or LA person id"],
            )
        actor = session.person.actor
        form_name = fmt.value if fmt else "console page"
        audit_keys = keys.current().keys_of("audit_subject")
        try:
            found, entries = await run_in_threadpool(
                child_report, store, audit_keys, child_query, actor, form_name
            )
        except TooManyDecisions:
            return show(
                "problem.html",
                session,
                413,
                title="Too many decisions",
                detail=(
                    "More decisions about this child than one report holds: search by child "
                    "and page through them."
                ),
            )
        except HTTPException as exc:
            return show(
                "search.html", session, exc.status_code, form=form, problems=[str(exc.detail)]
            )
        if fmt is not None:
            return _download(report_document(found, entries, fmt, actor), fmt)
        return show("report.html", session, form=form, kind=found.kind, items=rows(entries))


def _download(document: Response, fmt: ReportFormat) -> Response:
    suffix = {"csv": "csv", "fhir": "fhir.json", "pdf": "pdf", "json": "json"}[fmt.value]
    document.headers["Content-Disposition"] = f'attachment; filename="disclosure-report.{suffix}"'
    return web.secured(document)


class FormRefused(Exception):
    """A form from a signed-in officer's browser that this session did not give out."""


async def _posted(
    request: Request, officer: Callable[[Request], Session | None]
) -> tuple[Session | None, Mapping[str, str]]:
    """The session (None: not signed in) and the form's fields; FormRefused when the form
    is not this session's (CSRF)."""
    session = officer(request)
    if session is None:  # not a field read for a caller not signed in
        return None, {}
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not web.form_allowed(request, session, fields.get("csrf")):
        raise FormRefused
    return session, fields


def _pages(result: AuditPage) -> list[tuple[str, int]]:
    """The previous and next pages' offsets, where there are such pages."""
    out = []
    if result.offset > 0:
        out.append(("Previous page", max(0, result.offset - result.limit)))
    if result.offset + len(result.items) < result.total:
        out.append(("Next page", result.offset + result.limit))
    return out


def _signin(people: PeopleVerifier, options: ConsoleOptions) -> OidcSignIn:
    """The ID token names this client as its audience: verified as people's tokens are,
    with that audience."""
    client_id = options.client_id or people.config.audience
    verifier = people
    if client_id != people.config.audience:
        config: PeopleConfig = replace(people.config, audience=client_id)
        verifier = PeopleVerifier(config)
    return OidcSignIn(verifier, Client(client_id, options.client_secret))
