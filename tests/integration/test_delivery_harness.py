"""What the delivery service's integration tests share (no tests of its own): the service
run in-process with its real lifespan (Kafka reader, webhook dispatcher) over a SQLite file,
delivery records published as the processor writes them, a real webhook receiver on a
local port, and waiting on conditions."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from deploy.devstack.ports import listen_socket
from services.backbone import envelope, kafka
from services.backbone.kafka_access import KafkaAccess
from services.delivery import subscriptions
from services.delivery.app import create_app
from services.delivery.filters import parse_filters
from services.delivery.model import Channel, Content
from services.delivery.resolving import Resolver, system_resolver
from services.delivery.settings import DeliverySettings
from services.delivery.signing import IDEMPOTENCY_HEADER
from services.delivery.store import DeliveryStore
from services.delivery.tables import SubscriptionRow

ATTENDANCE = "health.unscheduled_care.attendance"
PLAN = "socialcare.child_protection_plan.started"
LA, ED, PH = "la-northshire", "nhs-riverside-ed", "ph-northshire"


def database_url(tmp_path: Path) -> str:
    """A fresh SQLite file for the service's store. The store's own tests take the
    ``database_url`` fixture instead, and so run on PostgreSQL as well."""
    return f"sqlite:///{tmp_path / 'delivery.db'}"


def inbox_subscription(
    store: DeliveryStore,
    agency: str = LA,
    *,
    content: Content = Content.FULL,
    now: datetime | None = None,
) -> SubscriptionRow:
    """An inbox subscription of ``agency`` to attendances, every one (no filters)."""
    spec = subscriptions.NewSubscription(
        agency=agency,
        event_types=[ATTENDANCE],
        filters=parse_filters([]),
        content=content,
        channel=Channel.INBOX,
    )
    return subscriptions.create(store, spec, now=now or datetime.now(UTC))


def fast_settings(
    *, tmp_path: Path, keyring_path: Path, access: KafkaAccess, namespace: str, **overrides: Any
) -> DeliverySettings:
    """Settings with retries, breakers and horizons in fractions of a second."""
    values: dict[str, Any] = {
        **access.settings(),
        "topic_namespace": namespace,
        "keyring_file": keyring_path,
        "delivery_database_url": database_url(tmp_path),
        "delivery_webhook_allow_http_loopback": True,
        "delivery_webhook_timeout_s": 2.0,
        "delivery_retry_base_s": 0.05,
        "delivery_retry_factor": 2.0,
        "delivery_retry_cap_s": 0.4,
        "delivery_breaker_failures": 3,
        "delivery_breaker_cooldown_s": 0.3,
        "delivery_poll_s": 0.2,
        **overrides,
    }
    return DeliverySettings(**values)


def token(keyring_path: Path, agency: str) -> dict[str, str]:
    """The Authorization header of ``agency`` (``infoshare keys generate`` wrote its token)."""
    text = (keyring_path.parent / "agency-tokens" / f"{agency}.token").read_text().strip()
    return {"Authorization": f"Bearer {text}"}


@asynccontextmanager
async def running(
    settings: DeliverySettings, *, resolver: Resolver = system_resolver
) -> AsyncIterator[httpx.AsyncClient]:
    """The delivery service with its lifespan running; an HTTP client to it."""
    app = create_app(settings, resolver=resolver)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://delivery"
        ) as client,
    ):
        yield client


def delivery(
    event_type: str = ATTENDANCE, *, site: str = "RVR01", n: int = 0, key: str | None = "k1"
) -> tuple[envelope.CloudEvent, tuple[bytes | None, bytes, envelope.Headers]]:
    """A delivery record as the processor writes it (see consent/processor/records.py)."""
    if event_type == ATTENDANCE:
        data: dict[str, Any] = {
            "subject": {"pseudonym": f"ps-{uuid.uuid4().hex[:12]}", "age_band": "5-9"},
            "attendance": {"site": {"ods_code": site}, "sequence": n},
        }
    else:
        data = {"plan": {"category": "neglect", "sequence": n}}
    event = envelope.CloudEvent(
        type=event_type,
        source=envelope.agency_source(ED if event_type == ATTENDANCE else LA),
        data=data,
        key=key or "",
        id=str(uuid.uuid4()),
        time=datetime(2026, 11, 20, 21, 14, tzinfo=UTC),
        extensions={
            envelope.EXT_PROTOCOL: "cpis-attendance@1",
            envelope.EXT_IDENTITY: "identified",
        },
    )
    k, value, headers = envelope.encode(event)
    return event, (k if key else None, value, headers)


async def publish(
    access: KafkaAccess, topic: str, records: list[tuple[bytes | None, bytes, envelope.Headers]]
) -> None:
    """Publish in one transaction, as the processor does (the service reads committed)."""
    producer = kafka.producer(access, transactional_id=f"test-{uuid.uuid4().hex}")
    await producer.start()
    try:
        async with producer.transaction():
            for key, value, headers in records:
                await producer.send(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


@dataclass
class Received:
    key: str
    body: bytes
    signed: bool


@dataclass
class Receiver:
    """A webhook endpoint on a real local port: it verifies signatures as a recipient would
    (the Standard Webhooks library), drops repeats by Idempotency-Key, and can answer 503
    for a stretch, fail after accepting (so the sender retries what it already has), answer
    410, or be stopped for good.

    Its port, below the ephemeral range, is held from the moment the receiver is made: bound
    but not listening until ``start``, so a sender is refused as by an endpoint that is down,
    and nothing else on the machine (another test worker's server, a client's outgoing
    connection) can take the port meanwhile; the server is handed that very socket."""

    secret: str = ""
    answer: int = 200
    fail_after_accept: set[int] = field(default_factory=set)  # event numbers
    requests: list[Received] = field(default_factory=list)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # deduplicated, in order
    heartbeats: list[dict[str, Any]] = field(default_factory=list)
    port: int = field(init=False)
    _socket: socket.socket | None = field(default_factory=listen_socket, repr=False)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        assert self._socket is not None
        self.port = int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                Webhook(self.secret).verify(body, dict(request.headers), json_parse=False)
                signed = True
            except WebhookVerificationError:
                signed = False
            key = request.headers.get(IDEMPOTENCY_HEADER, "")
            self.requests.append(Received(key, body, signed))
            if self.answer != 200 or not signed:
                return Response(status_code=self.answer if signed else 401)
            note = orjson.loads(body)
            if note["type"] == "heartbeat":
                self.heartbeats.append(note)
                return Response(status_code=200)
            self.kept.setdefault(key, note)  # the receiver's own deduplication
            number = note["notification_events"][0]["event_number"]
            if number in self.fail_after_accept:
                self.fail_after_accept.discard(number)
                return Response(status_code=500)  # took it, but the sender never hears so
            return Response(status_code=200)

        return app

    async def start(self) -> None:
        # Once only: its connections outlive a stop (FIN_WAIT, TIME_WAIT) and would keep a
        # second socket from binding the port without SO_REUSEADDR, which would let another
        # server bind it beside this one.
        assert self._socket is not None, "a receiver serves once: make another"
        config = uvicorn.Config(self.app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stop serving for good and let the port go (the server closes the socket)."""
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server, self._task, self._socket = None, None, None
