"""The protocols an IG officer governs: the sharing map of the set in force, and each
protocol's detail (purpose, lawful basis, consent, recipients and their fields, review and
expiry dates with warnings). Read from the same protocol directory the processor decides
with, each time the page is opened (a protocol edited is seen at once)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from markupsafe import Markup

from consent.core import clock
from consent.core.model import Protocol
from consent.policy.load import check_directory
from services.audit.console import sharing_map, web
from services.audit.console.base import SIGN_IN, Console
from services.audit.console.sessions import Session
from services.backbone.directory import Directory
from services.backbone.schemas import SchemaRegistry

P = web.PREFIX


class ProtocolsUnreadable(Exception):
    """The protocol directory does not load: its problems, as the checker words them."""


def protocol_source(
    protocols_dir: Path | None,
    directory: Callable[[], Directory],
    schemas: Callable[[], SchemaRegistry],
) -> Callable[[], list[Protocol]]:
    """Loads the protocol set as the processor would (None: the bundled protocols)."""

    def load() -> list[Protocol]:
        checked, problems = check_directory(protocols_dir, directory=directory(), schemas=schemas())
        if checked is None:
            raise ProtocolsUnreadable("; ".join(str(p) for p in problems[:5]))
        return sorted(checked.protocols.protocols, key=lambda p: (p.id, p.version))

    return load


def add_protocol_routes(app: FastAPI, console: Console) -> None:
    def loaded(request: Request) -> tuple[Session, list[Protocol]] | Response:
        session = console.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        try:
            return session, console.protocols()
        except ProtocolsUnreadable as exc:
            return console.problem(session, 503, "Protocols unreadable", str(exc))

    @app.get(f"{P}/protocols", include_in_schema=False)
    def sharing(request: Request) -> Response:
        got = loaded(request)
        if isinstance(got, Response):
            return got
        session, protocols = got
        console.record_view(session, "access.protocols", "viewed the protocols and sharing map")
        today = clock.today()
        in_force = [p for p in protocols if p.in_force(today)]
        found = sharing_map.links(in_force)
        return console.show(
            "protocols.html",
            session,
            protocols=protocols,
            in_force={p.ref for p in in_force},
            links=found,
            drawing=Markup(sharing_map.svg(found)),  # noqa: S704  built escaped, sharing_map.py
            warnings={p.ref: sharing_map.warnings(p, today) for p in protocols},
        )

    @app.get(f"{P}/protocols/{{protocol_id}}/{{version}}", include_in_schema=False)
    def detail(request: Request, protocol_id: str, version: int) -> Response:
        got = loaded(request)
        if isinstance(got, Response):
            return got
        session, protocols = got
        found = next((p for p in protocols if (p.id, p.version) == (protocol_id, version)), None)
        if found is None:
            return console.problem(
                session,
                404,
                "No such protocol",
                "The protocol set has no protocol of this id and version.",
            )
        console.record_view(session, "access.protocols", f"viewed protocol {found.ref}")
        today: date = clock.today()
        return console.show(
            "protocol.html",
            session,
            p=found,
            warnings=sharing_map.warnings(found, today),
            in_force=found.in_force(today),
        )
