"""Whether the trail is intact, on one page: the records stored, the last signed checkpoint
and the last one kept outside the database (the checkpoint file), the last verification's
verdict and time, and "verify now", which walks every record while the page shows how far
it has come (it reloads itself while a walk runs: the console runs no script)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.audit.console import web
from services.audit.console.base import SIGN_IN, Console
from services.audit.health import audit_health
from services.audit.sealing import file_checkpoints

P = web.PREFIX
RELOAD_S = 2


def add_integrity_routes(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get(f"{P}/integrity", include_in_schema=False)
    def integrity(request: Request) -> Response:
        session = console.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        health = audit_health(store)
        path = store.sealing.checkpoint_file
        outside = file_checkpoints(path)[-1:] if path is not None else []
        last, running = console.integrity.status()
        if running is None:  # the page's own reloads while a walk runs are not recorded
            console.record_view(session, "access.integrity", "viewed the trail's integrity")
        return console.show(
            "integrity.html",
            session,
            records=health["records"],
            checkpoint=health["last_checkpoint"],
            anchored=outside[0] if outside else None,
            last=last,
            running=running,
            reload_s=RELOAD_S if running else None,
        )

    @app.post(f"{P}/integrity/verify", include_in_schema=False)
    async def verify_now(request: Request) -> Response:
        session, _ = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        by = console.reader(session).actor
        if console.integrity.start(by):
            console.record_view(session, "access.verify", "began a verification of the whole trail")
        return web.redirect(f"{P}/integrity")
