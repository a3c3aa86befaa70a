"""What every console page shares: the templates, the sessions, the store, and the checks
each request passes (a live session; for a form, its CSRF token)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment
from pydantic import ValidationError

from services.audit.access import Reader
from services.audit.child import ChildQuery
from services.audit.console import web
from services.audit.console.forms import SearchForm, child_of, problems
from services.audit.console.sessions import Session, Sessions
from services.audit.integrity import Integrity
from services.audit.routes_ig import access_record
from services.audit.store import AuditStore
from services.backbone.key_reload import KeyringSource
from services.backbone.keyed import Key

P = web.PREFIX
SIGN_IN = f"{P}/signin"
NO_CHILD = "name the child: an NHS number, UPN or LA person id"


class FormRefused(Exception):
    """A form from a signed-in officer's browser that this session did not give out."""


@dataclass(frozen=True)
class Console:
    env: Environment
    sessions: Sessions
    store: AuditStore
    keys: KeyringSource
    integrity: Integrity
    protocols: Callable[[], Any]  # the protocol set in force (protocol_pages.py), or raises
    public_url: str | None = None  # where browsers reach the console (None: as they ask)

    def origin(self, request: Request) -> str:
        return web.origin_of(request, self.public_url)

    def show(self, name: str, session: Session | None, status: int = 200, **ctx: Any) -> Response:
        return web.page(self.env, name, status, session=session, **ctx)

    def problem(
        self, session: Session | None, status: int, title: str, detail: str, **ctx: Any
    ) -> Response:
        return self.show("problem.html", session, status, title=title, detail=detail, **ctx)

    def officer(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(web.SESSION_COOKIE))

    async def posted(self, request: Request) -> tuple[Session | None, Mapping[str, str]]:
        """The session (None: not signed in, and no field read) and the form's fields;
        FormRefused when the form is not this session's (CSRF)."""
        session = self.officer(request)
        if session is None:
            return None, {}
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if not web.form_allowed(request, self.origin(request), session, fields.get("csrf")):
            raise FormRefused
        return session, fields

    def empty_form(self, request: Request, template: str) -> Response:
        """A page with an empty child form, for a signed-in officer (else to sign in)."""
        session = self.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        return self.show(template, session, form=SearchForm())

    def named_child(
        self, template: str, session: Session, form: SearchForm
    ) -> ChildQuery | Response:
        """The child the form names, or ``template`` again saying why not (422)."""
        try:
            child = child_of(form)
        except ValidationError as exc:
            return self.show(template, session, 422, form=form, problems=problems(exc))
        if child is None:
            return self.show(template, session, 422, form=form, problems=[NO_CHILD])
        return child

    def audit_keys(self) -> list[Key]:
        return list(self.keys.current().keys_of("audit_subject"))

    @staticmethod
    def reader(session: Session) -> Reader:
        return Reader(f"ig-officer:{session.person.actor}"[:128], None)

    def record_view(self, session: Session, code: str, reason: str) -> None:
        """A look at the trail that names no child, recorded in it like every other."""
        self.store.add_batch(
            [access_record(actor=self.reader(session).actor, code=code, reason=reason)]
        )
