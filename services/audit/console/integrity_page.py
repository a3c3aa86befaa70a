"""Whether the trail is intact, on one page: the records stored, the last signed checkpoint
and the last one kept outside the database (the checkpoint file), the last verification's
verdict and time, and "verify now", which walks every record while the page shows how far
it has come. The page never reloads by itself (that would move a screen reader's place
every few seconds, WCAG 2.2.1): "Check progress" asks again."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from services.audit.chain import Checkpoint
from services.audit.console import web
from services.audit.console.base import SIGN_IN, Console
from services.audit.health import audit_health
from services.audit.sealing import file_checkpoints

P = web.PREFIX


def add_integrity_routes(app: FastAPI, console: Console) -> None:
    store = console.store

    @app.get(f"{P}/integrity", include_in_schema=False)
    def integrity(request: Request, progress: str | None = None) -> Response:
        session = console.officer(request)
        if session is None:
            return web.redirect(SIGN_IN)
        health = audit_health(store)
        last, running = console.integrity.status()
        if progress is None:  # asking how far a walk has come is not another look
            console.record_view(session, "access.integrity", "viewed the trail's integrity")
        return console.show(
            "integrity.html",
            session,
            records=health["records"],
            checkpoint=health["last_checkpoint"],
            anchored=_outside(store.sealing.checkpoint_file),
            last=last,
            running=running,
        )

    @app.post(f"{P}/integrity/verify", include_in_schema=False)
    async def verify_now(request: Request) -> Response:
        session, _ = await console.posted(request)
        if session is None:
            return web.redirect(SIGN_IN)
        by = console.reader(session).actor
        if await run_in_threadpool(console.integrity.start, by):
            await run_in_threadpool(
                console.record_view,
                session,
                "access.verify",
                "began a verification of the whole trail",
            )
        return web.redirect(f"{P}/integrity?progress=1")


def _outside(path: Path | None) -> Checkpoint | str | None:
    """The last checkpoint kept in the file outside the database; why not, if unreadable."""
    if path is None:
        return None
    try:
        kept = file_checkpoints(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"the checkpoint file cannot be read ({type(exc).__name__}): run verify"
    return kept[-1] if kept else None
