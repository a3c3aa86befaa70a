"""What every agency service shares: its publisher, its own inbox view, health and errors.

Each agency service's ``create_app`` is its composition root; it calls
:func:`create_agency_app` and adds the routes for its own native formats.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from services.backbone.directory import AgencyKind
from services.backbone.errors import ConfigurationError, PublishFailed, SchemaViolation
from services.backbone.http import create_service_app
from services.backbone.publisher import EventPublisher
from services.backbone.settings import HttpSettings
from services.backbone.tasks import critical_task
from services.delivery.inbox import Inbox, consume_into


class AgencyServiceSettings(HttpSettings):
    agency_id: str = Field(description="the agency this service publishes as")


OVERRIDE_HEADER = "Safeguarding-Override-Justification"
OVERRIDE_ROLE_HEADER = "Safeguarding-Override-Role"


class InputRejected(Exception):
    """Native input that cannot be mapped; ``loc`` names the field, ``rule`` the rule broken."""

    def __init__(self, loc: list[str | int], msg: str, rule: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.rule = rule


@dataclass
class AgencyRuntime:
    settings: AgencyServiceSettings
    publisher: EventPublisher
    inbox: Inbox = field(default_factory=Inbox)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


def runtime(request: Request) -> AgencyRuntime:
    rt: AgencyRuntime = request.app.state.runtime
    return rt


async def publish_event(
    request: Request, *, event_type: str, data: dict[str, Any], subject_id: str, native_id: str
) -> dict[str, str]:
    """Validate, key and publish one canonical event; the 202 body names it.

    A practitioner who shares without consent to safeguard a child says so, and why, in the
    ``Safeguarding-Override-Justification`` and ``Safeguarding-Override-Role`` headers; the
    event then carries it for the protocol to honour (or not), the audit and IG review.
    """
    rt = runtime(request)
    justification = request.headers.get(OVERRIDE_HEADER)
    if justification is not None:
        role = request.headers.get(OVERRIDE_ROLE_HEADER, "")
        data = {**data, "safeguarding_override": {"justification": justification, "role": role}}
    event = rt.publisher.build(
        event_type=event_type, data=data, subject_id=subject_id, native_id=native_id
    )
    await rt.publisher.publish(event)
    return {"id": event.id, "type": event.type}


def _rejection(loc: list[str | int], msg: str, rule: str) -> JSONResponse:
    return JSONResponse(
        status_code=422, content={"detail": [{"loc": loc, "msg": msg, "type": rule}]}
    )


def create_agency_app(
    *, title: str, description: str, settings: AgencyServiceSettings, kind: AgencyKind
) -> FastAPI:
    directory = settings.directory()
    agency = directory.get(settings.agency_id)  # refuse to start as an agency nobody knows
    if agency.kind is not kind:
        raise ConfigurationError(
            f"INFOSHARE_AGENCY_ID={settings.agency_id} is a {agency.kind} agency; "
            f"this service publishes for {kind} agencies"
        )
    topics = settings.topics()
    publisher = EventPublisher(
        agency_id=settings.agency_id,
        topic=topics.source(settings.agency_id),
        bootstrap=settings.kafka_bootstrap,
        schemas=settings.schemas(),
        routing=settings.keyring().require_routing(),
    )
    rt = AgencyRuntime(settings=settings, publisher=publisher)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        reader = critical_task(
            consume_into(
                rt.inbox,
                topic=topics.deliver(settings.agency_id),
                bootstrap=settings.kafka_bootstrap,
                stop=rt.stop,
            ),
            name="inbox reader",
        )
        try:
            yield
        finally:
            rt.stop.set()
            with contextlib.suppress(Exception):  # already reported by critical_task
                await reader
            await publisher.stop()

    app = create_service_app(
        title=title,
        description=description,
        lifespan=lifespan,
        health=lambda: {"agency": settings.agency_id, "received": len(rt.inbox)},
    )
    app.state.runtime = rt

    @app.exception_handler(InputRejected)
    async def _rejected(_: Request, exc: InputRejected) -> JSONResponse:
        return _rejection(exc.loc, exc.msg, exc.rule)

    @app.exception_handler(SchemaViolation)
    async def _invalid(_: Request, exc: SchemaViolation) -> JSONResponse:
        return _rejection(["event", *exc.path.split(".")], str(exc), f"schema.{exc.rule}")

    @app.exception_handler(PublishFailed)
    async def _unavailable(_: Request, exc: PublishFailed) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            headers={"Retry-After": "5"},
            content={"detail": f"{exc}; retry the request"},
        )

    @app.get("/inbox", tags=["inbox"], summary="What this agency has received, in order")
    async def inbox(
        after: int = Query(0, ge=0, description="cursor: the last number already seen"),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        items = [r.public() for r in rt.inbox.after(after, limit)]
        return {
            "agency": settings.agency_id,
            "items": items,
            "next_cursor": items[-1]["number"] if items else after,
        }

    return app
