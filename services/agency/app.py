"""What every agency service shares: authentication, publishing through the outbox, its
submissions, its own inbox, health and errors.

Each agency service's ``create_app`` is its composition root; it calls
:func:`create_agency_app` and adds the routes for its own native formats.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consent.core.retention import RetentionRules
from consent.policy.load import retention_rules
from services.agency import inbox_retention, routes
from services.agency.auth import authenticate, bearer_scheme
from services.agency.children import ADULT_AGE
from services.agency.gate import MAX_BODY_BYTES, MAX_JSON_DEPTH, AgencyGate
from services.agency.inbox import consume_into
from services.agency.inbox_store import Inbox
from services.agency.inbox_view import load_private_key
from services.agency.metrics import AgencyMetrics
from services.agency.openapi import document_agency_api
from services.agency.recalls import purge_outbox
from services.agency.runtime import AgencyRuntime, AgencyServiceSettings
from services.agency.submission import Intake
from services.backbone import kafka
from services.backbone.audit_contract import AuditRecord
from services.backbone.directory import AgencyKind
from services.backbone.errors import (
    ConfigurationError,
    InputRejected,
    InputTooLarge,
    SchemaViolation,
)
from services.backbone.http import create_service_app
from services.backbone.http_telemetry import instrument_http
from services.backbone.key_roles import Role
from services.backbone.lease import Lease
from services.backbone.metering import Metrics
from services.backbone.offload import Offload
from services.backbone.publisher import EventBuilder
from services.backbone.purge_runs import SendAudit
from services.backbone.tasks import critical_task
from services.outbox.relay import OutboxRelay, RelayTopics
from services.outbox.store import OutboxStore
from services.personindex.store import PersonIndex

log = logging.getLogger(__name__)


class _StateHeaders:
    """Adds the headers a route put in ``request.state.response_headers`` (Location,
    Idempotent-Replayed) to its response: plain ASGI, so the body is not streamed through
    another task as ``@app.middleware("http")`` would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            extra = scope.get("state", {}).get("response_headers")
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def _rejection(loc: list[str | int], msg: str, rule: str, status: int = 422) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"detail": [{"loc": loc, "msg": msg, "type": rule}]}
    )


def build_runtime(settings: AgencyServiceSettings, kind: AgencyKind) -> AgencyRuntime:
    directory = settings.directory()
    agency = directory.get(settings.agency_id)  # refuse to start as an agency nobody knows
    if agency.kind is not kind:
        raise ConfigurationError(
            f"INFOSHARE_AGENCY_ID={settings.agency_id} is a {agency.kind} agency; "
            f"this service publishes for {kind} agencies"
        )
    keys = settings.keyring_source(Role.AGENCY, settings.agency_id)
    keyring = keys.current()
    outbox = OutboxStore(settings.outbox_url())
    key_path = settings.private_key_path()
    topics = settings.topics()
    relay_topics = RelayTopics(
        source=topics.source(settings.agency_id),
        dlq=topics.dlq("outbox"),
        audit=topics.audit_activity,
    )
    intake = Intake(
        agency=settings.agency_id,
        is_authority=kind is AgencyKind.SOCIALCARE,
        source_topic=relay_topics.source,
        builder=EventBuilder(
            agency_id=settings.agency_id,
            schemas=settings.schemas(),
            routing=keyring.require_routing(),
        ),
        outbox=outbox,
        index=PersonIndex(settings.person_index_url(), keyring.require_routing()),
        oldest=settings.care_leavers_to if kind is AgencyKind.SOCIALCARE else ADULT_AGE,
    )
    relay = OutboxRelay(
        outbox,
        agency=settings.agency_id,
        topics=relay_topics,
        producer=lambda: kafka.producer(settings.kafka_access()),
        # Replicas of this service share the outbox: one relay publishes at a time.
        lease=Lease(outbox.engine, name=relay_topics.source),
    )
    intake.published = relay.wake.set
    return AgencyRuntime(
        settings=settings,
        keys=keys,
        intake=intake,
        relay=relay,
        private_key=load_private_key(key_path) if key_path else None,
        inbox=Inbox(outbox.engine, topics.deliver(settings.agency_id), agency=settings.agency_id),
        offload=Offload(settings.parse_workers),
    )


def _audit_sender(settings: AgencyServiceSettings, key: bytes) -> SendAudit:
    """Sends one of the inbox's audit records to ``audit.activity``, as the agency's own
    principal, under the record key ``key``."""
    audit_topic = settings.topics().audit_activity

    async def audited(record: AuditRecord) -> None:
        # A producer per record: purges are rare (a run a day, a recall now and then), and
        # the relay's is not ours to share.
        producer = kafka.producer(settings.kafka_access())
        await producer.start()
        try:
            await producer.send_and_wait(audit_topic, record.model_dump_json().encode(), key=key)
        finally:
            await producer.stop()

    return audited


def _purge_outbox(rt: AgencyRuntime, now: datetime) -> None:
    """The outbox's records past the recall window (no content: it went at publication; so
    logged, not audited: no child's data is deleted)."""
    gone = purge_outbox(rt.intake, now)
    if gone:
        log.info("outbox: deleted %d records published before the recall window", gone)


def _purging(rt: AgencyRuntime) -> asyncio.Task[None]:
    """The inbox's items held past their retention purged at start and every period after,
    each run audited on ``audit.activity`` in counts, as the agency's own principal."""
    settings = rt.settings
    audited = _audit_sender(settings, b"retention")

    def rules() -> RetentionRules:  # read afresh each run, as the processor reloads them
        return retention_rules(
            settings.protocols_dir, directory=settings.directory(), schemas=settings.schemas()
        )

    return critical_task(
        inbox_retention.keep_purging(
            rt.inbox,
            rt.agency,
            rules,
            audited,
            every_s=settings.retention_purge_every_s,
            stop=rt.stop,
            also=functools.partial(_purge_outbox, rt),
            # Replicas share the database: one purges at a time.
            lease=Lease(
                rt.outbox.engine,
                name=inbox_retention.lease_name(rt.inbox),
                ttl=inbox_retention.LEASE_TTL,
            ),
        ),
        name="retention purge",
    )


def create_agency_app(
    *, title: str, description: str, settings: AgencyServiceSettings, kind: AgencyKind
) -> FastAPI:
    rt = build_runtime(settings, kind)
    rt.outbox.create_schema()
    rt.inbox.create_schema()
    rt.index.create_schema()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        relay = critical_task(rt.relay.run(rt.stop), name="outbox relay")
        reader = critical_task(
            consume_into(
                rt.inbox,
                access=settings.kafka_access(),
                stop=rt.stop,
                # Replicas share the database: one of them reads the inbox into it.
                lease=Lease(rt.outbox.engine, name=f"inbox:{rt.inbox.topic}"),
                # What a recall notice deleted is audited.
                send=_audit_sender(settings, b"recall_purge"),
            ),
            name="inbox reader",
        )
        tasks = [relay, reader]
        if settings.retention_purge_every_s:
            tasks.append(_purging(rt))
        try:
            yield
        finally:
            rt.stop.set()
            for task in tasks:
                with contextlib.suppress(Exception):  # already reported by critical_task
                    await task
            rt.intake.batcher.close()
            await asyncio.to_thread(rt.offload.close)
            rt.outbox.engine.dispose()
            rt.index.engine.dispose()
            metrics.shutdown()  # an OTLP reader sends its last interval

    async def caller(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> None:
        del credentials  # declared so the OpenAPI document shows the bearer scheme
        authenticate(request)

    app = create_service_app(
        title=title,
        description=description,
        lifespan=lifespan,
        health=lambda: routes.health(rt),
        dependencies=[Depends(caller)],
        max_body_bytes=MAX_BODY_BYTES,
        max_json_depth=MAX_JSON_DEPTH,
    )
    app.state.runtime = rt
    metrics = Metrics(f"infoshare-{settings.agency_id}")
    app.state.agency_metrics = AgencyMetrics(rt, metrics)
    # Before any route: a request without this agency's key is refused before its body is read.
    app.add_middleware(
        AgencyGate,
        agency=rt.agency,
        lookup=lambda token: rt.keys.current().agency_credential(token),
    )
    app.include_router(routes.router)
    document_agency_api(app)

    app.add_middleware(_StateHeaders)

    @app.exception_handler(InputRejected)
    async def _rejected(_: Request, exc: InputRejected) -> JSONResponse:
        return _rejection(exc.loc, exc.msg, exc.rule)

    @app.exception_handler(InputTooLarge)
    async def _too_large(_: Request, exc: InputTooLarge) -> JSONResponse:
        return _rejection(exc.loc, exc.msg, exc.rule, status=413)

    @app.exception_handler(SchemaViolation)
    async def _invalid(_: Request, exc: SchemaViolation) -> JSONResponse:
        return _rejection(["event", *exc.path.split(".")], str(exc), f"schema.{exc.rule}")

    instrument_http(app, metrics, token=settings.scrape_token())
    return app


__all__ = ["AgencyServiceSettings", "create_agency_app"]
