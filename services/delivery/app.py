"""Composition root of the delivery service: subscriptions, webhook push and the pull
inbox over every recipient's ``deliver.<agency>`` topic (read_committed).

The Kafka channel needs nothing from here: a recipient that speaks Kafka reads its own
``deliver.<agency>`` topic. This service reads them all into a durable notification log
and serves recipients that want a push (webhook) or a pull (inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from consent.core.retention import RetentionRules
from consent.policy.load import retention_rules
from services.backbone import kafka, telemetry
from services.backbone.audit_contract import AuditRecord
from services.backbone.http import create_service_app
from services.backbone.http_telemetry import instrument_http
from services.backbone.key_roles import Role
from services.backbone.lease import Lease
from services.backbone.metering import Metrics
from services.backbone.purge_runs import SendAudit
from services.backbone.tasks import critical_task
from services.delivery import retention, webhook, webhook_secrets
from services.delivery.addresses import AddressPolicy
from services.delivery.breaker import BreakerBoard
from services.delivery.dispatcher import PUSH_MARGIN_S, Changes, Dispatcher
from services.delivery.errors import (
    AckBeyondLast,
    DeliveryNotFound,
    InvalidSubscription,
    SubscriptionNotFound,
    WrongChannel,
)
from services.delivery.health import delivery_health
from services.delivery.kafka_edge import DeadLetters, ingest
from services.delivery.observe import DeliveryTelemetry
from services.delivery.resolving import EndpointGuard, Resolver, system_resolver
from services.delivery.routes_channels import channel_routes
from services.delivery.routes_recipients import recipient_routes
from services.delivery.runtime import Runtime
from services.delivery.secret_box import SecretBox
from services.delivery.settings import DeliverySettings
from services.delivery.store import DeliveryStore

log = logging.getLogger(__name__)
# Twice a subscription at its largest in ASCII (20 filters of 100 values of 256 characters).
MAX_BODY_BYTES = 1024 * 1024


def create_app(
    settings: DeliverySettings | None = None, *, resolver: Resolver = system_resolver
) -> FastAPI:
    """``resolver``: how webhook hosts are resolved (tests give their own)."""
    settings = settings or DeliverySettings()
    directory = settings.directory()
    topics = settings.topics()
    keys = settings.keyring_source(Role.DELIVERY)
    keyring = keys.current()
    if not keyring.agency_tokens:
        log.warning(
            "the keyring holds no agency tokens: no recipient can call this service "
            "(make a new keyring with `infoshare keys generate`)"
        )
    store = DeliveryStore(
        settings.delivery_database_url.get_secret_value(), secret_box=SecretBox.of(keyring)
    )
    store.create_schema()
    if moved := webhook_secrets.seal_clear_secrets(store):
        log.warning("encrypted %d webhook secrets an earlier version stored in clear", moved)
    resealed, unreadable = webhook_secrets.reseal_secrets(store)
    if resealed:
        log.info("sealed %d webhook secrets again under the active key", resealed)
    if unreadable:
        log.error(
            "%d webhook secrets are sealed under a key the keyring no longer holds: "
            "their subscriptions cannot be pushed",
            unreadable,
        )
    private = frozenset(settings.delivery_webhook_private_agencies)
    guard = EndpointGuard(
        AddressPolicy(
            allow_loopback=settings.delivery_webhook_allow_http_loopback, private_agencies=private
        ),
        resolver=resolver,
    )
    rt = Runtime(
        settings=settings,
        store=store,
        keys=keys,
        event_types=frozenset(settings.schemas().event_types),
        agencies=frozenset(a.id for a in directory),
        changes=Changes(),
        breakers=BreakerBoard(
            failure_threshold=settings.delivery_breaker_failures,
            cooldown_s=settings.delivery_breaker_cooldown_s,
        ),
        guard=guard,
    )
    seal = telemetry.TraceSeal.of(*keyring.keys_of("trace_seal"))
    metrics = Metrics("infoshare-delivery")
    seen = DeliveryTelemetry(metrics, rt.breakers, seal)
    rt.telemetry = seen
    deliver_topics = {topics.deliver(a.id): a.id for a in directory}
    needed = {*deliver_topics, topics.dlq("delivery"), topics.audit_activity}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        access = settings.kafka_access()
        await kafka.ensure_topics(
            access, [s for s in topics.all_specs(directory) if s.name in needed]
        )
        producer = kafka.producer(access)
        await producer.start()
        http = webhook.Clients(settings.delivery_webhook_timeout_s)
        dead_letters = DeadLetters(
            producer, dlq_topic=topics.dlq("delivery"), audit_topic=topics.audit_activity
        )
        dispatcher = Dispatcher(
            store=store,
            sender=webhook.WebhookSender(
                http, guard=guard, timeout_s=settings.delivery_webhook_timeout_s
            ),
            dead_letters=dead_letters,
            policy=settings.retry_policy(),
            breakers=rt.breakers,
            changes=rt.changes,
            base_url=settings.delivery_public_url,
            poll_s=settings.delivery_poll_s,
            telemetry=seen,
            # Replicas share the store: each subscription is pushed by one at a time.
            # twice the longest push, which a holder renews the lease ahead of
            leases=lambda name: Lease(
                store.engine,
                name=name,
                ttl=timedelta(seconds=2 * (settings.delivery_webhook_timeout_s + PUSH_MARGIN_S)),
            ),
        )
        tasks = [
            critical_task(
                ingest(
                    store,
                    topics=deliver_topics,
                    access=access,
                    dead_letters=dead_letters,
                    stop=stop,
                    on_new=rt.changes.notify,
                    seen=seen,
                    lease=Lease(store.engine, name="delivery-ingest"),
                    send_audit=_audit_sender(producer, topics.audit_activity, key=b"recall"),
                ),
                name="delivery reader",
            ),
            critical_task(dispatcher.run(stop), name="webhook dispatcher"),
        ]
        if settings.retention_purge_every_s:
            tasks.append(_purging(settings, store, producer, topics.audit_activity, stop))
        try:
            yield
        finally:
            stop.set()
            rt.changes.notify()
            await asyncio.gather(*tasks, return_exceptions=True)  # failures already reported
            await http.aclose()
            await producer.stop()
            metrics.shutdown()  # an OTLP reader sends its last interval

    async def recipient(token: str) -> bool:
        return keys.current().agency(token) is not None

    app = create_service_app(
        title="infoshare: delivery service",
        description="Subscriptions to each recipient's deliveries, modelled on FHIR R5 "
        "topic-based subscriptions: webhook push (signed, retried, dead-lettered at a "
        "horizon) and a pull inbox, both numbered exactly once per subscription. A delivery "
        "its publisher recalls is deleted, queued notifications of it included, and the "
        "recall notice (infoshare.record.recalled) is delivered to whoever was given it.",
        lifespan=lifespan,
        health=lambda: delivery_health(store, rt.breakers),
        max_body_bytes=MAX_BODY_BYTES,
        # A body from whom no route would admit is refused before it is read.
        body_callers=recipient,
    )
    _error_answers(app)
    app.include_router(recipient_routes(rt))
    app.include_router(channel_routes(rt))
    instrument_http(app, metrics, token=settings.scrape_token())
    return app


def _audit_sender(producer: AIOKafkaProducer, audit_topic: str, *, key: bytes) -> SendAudit:
    """Sends a purge's audit record to ``audit_topic`` (acks=all): under one ``key``, a
    kind of purge's records stay in order on one partition."""

    async def send(record: AuditRecord) -> None:
        await producer.send_and_wait(audit_topic, record.model_dump_json().encode(), key=key)

    return send


def _purging(
    settings: DeliverySettings,
    store: DeliveryStore,
    producer: AIOKafkaProducer,
    audit_topic: str,
    stop: asyncio.Event,
) -> asyncio.Task[None]:
    """Deliveries held past their retention purged at start and every period after, each
    run audited on ``audit_topic`` in counts."""

    audited = _audit_sender(producer, audit_topic, key=b"retention")

    def rules() -> RetentionRules:  # read afresh each run, as the processor reloads them
        return retention_rules(
            settings.protocols_dir, directory=settings.directory(), schemas=settings.schemas()
        )

    return critical_task(
        retention.keep_purging(
            store,
            rules,
            audited,
            every_s=settings.retention_purge_every_s,
            stop=stop,
            # Replicas share the store: one purges at a time.
            lease=Lease(store.engine, name=retention.LEASE, ttl=retention.LEASE_TTL),
        ),
        name="retention purge",
    )


def _error_answers(app: FastAPI) -> None:
    """Our exceptions as HTTP answers; none quotes a value that was sent or delivered."""

    @app.exception_handler(InvalidSubscription)
    async def _invalid(_: Request, exc: InvalidSubscription) -> JSONResponse:
        detail = [{"loc": ["body", *exc.loc], "msg": exc.message, "type": exc.rule}]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.exception_handler(SubscriptionNotFound)
    async def _no_subscription(_: Request, exc: SubscriptionNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": "no subscription has this id"})

    @app.exception_handler(DeliveryNotFound)
    async def _no_delivery(_: Request, exc: DeliveryNotFound) -> JSONResponse:
        return JSONResponse(
            status_code=404, content={"detail": "this recipient has no delivery with this id"}
        )

    @app.exception_handler(WrongChannel)
    async def _wrong_channel(_: Request, exc: WrongChannel) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(AckBeyondLast)
    async def _beyond(_: Request, exc: AckBeyondLast) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})
