"""Composition root of the audit service: ingestion and periodic verification tasks plus the
IG search API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as InPath
from pydantic import Field, SecretStr

from services.audit import anchoring
from services.audit.console.pages import ConsoleOptions, add_console
from services.audit.console.protocol_pages import protocol_source
from services.audit.console.signing import SignInOptions
from services.audit.console.web import PREFIX as CONSOLE
from services.audit.health import audit_health
from services.audit.ingest import ingest
from services.audit.integrity import Integrity
from services.audit.models import (
    AuditEntryPublic,
    OverridePublic,
    OverrideReviewed,
    OverrideReviewIn,
    OverrideReviewPublic,
)
from services.audit.observe import AuditTelemetry
from services.audit.overlap import workers_for
from services.audit.reviews import (
    AlreadyReviewed,
    NotAnOverride,
    overrides,
    review_override,
    seal_unchained_reviews,
)
from services.audit.rotation import record_rotation
from services.audit.routes_ig import add_ig_routes
from services.audit.routes_search import add_search_routes
from services.audit.sealing import sealing_from
from services.audit.store import AuditStore
from services.audit.verify_schedule import verify_every
from services.audit.witnessing import witness
from services.backbone import kafka
from services.backbone.bearer import PersonAuthorization
from services.backbone.http import create_service_app
from services.backbone.http_telemetry import instrument_http
from services.backbone.key_roles import Role
from services.backbone.metering import Metrics
from services.backbone.offload import Offload
from services.backbone.openapi_responses import answers
from services.backbone.people import PersonRole
from services.backbone.people_http import is_person, person_of
from services.backbone.settings import HttpSettings
from services.backbone.tasks import critical_task

MAX_BODY_BYTES = 64 * 1024  # a child's identifier and filters, or a review's note


class AuditSettings(HttpSettings):
    audit_database_url: SecretStr = Field(
        SecretStr("sqlite:///infoshare-audit.db"),
        description="SQLAlchemy URL of the audit store (it may hold a password: kept secret)",
    )
    audit_checkpoint_file: Path = Field(
        Path("infoshare-audit-checkpoints.jsonl"),
        description="signed checkpoints are also appended here, outside the database",
    )
    audit_checkpoint_every: int = Field(
        1,
        ge=1,
        description="records between signed checkpoints, each signed in its batch's own "
        "transaction; 1 (the default): every batch, so no record is committed unsigned",
    )
    audit_witness_url: str | None = Field(
        None,
        description="a witness (services/witness) that cosigns the trail's checkpoints as it "
        "grows; none: no witness",
    )
    audit_verify_every_s: float = Field(
        300.0,
        ge=0,
        description="seconds between the service's own verifications of the whole trail "
        "(one right after start; the gauge infoshare_audit_chain_verified shows the last "
        "verdict); 0 turns them off",
    )
    audit_verify_full_every_s: float = Field(
        3600.0,
        ge=0,
        description="the service's own verification walks every record again at least this "
        "often (seconds); between, each one walks only the records sealed since the last "
        "intact one (as `infoshare audit verify --resume` does); 0: every one walks them all",
    )
    audit_prepare_workers: int | None = Field(
        None,
        ge=0,
        le=1,
        description="worker processes that parse and prepare each batch from Kafka while "
        "the batch before is written, so the two overlap (0: prepare them in the service, "
        "in turn with the writes); default: 1 on SQLite, 0 on PostgreSQL, whose server "
        "already stores a batch on the second CPU while the service seals it",
    )

    protocols_dir: Path | None = Field(
        None,
        description="the protocol directory the processor decides with, for the console's "
        "sharing map and protocol pages; default: the bundled protocols",
    )
    audit_console_client_id: str | None = Field(
        None,
        description="the IG console's OAuth client id at the identity provider; default: "
        "the audience people's tokens name (INFOSHARE_OIDC_AUDIENCE)",
    )
    audit_console_client_secret: SecretStr | None = Field(
        None,
        description="the console's client secret, if the identity provider registered it "
        "as a confidential client; none: a public client (PKCE alone)",
    )
    audit_console_url: str | None = Field(
        None,
        description="the audit service's public base URL, for the console's sign-in "
        "redirect (<url>/console/callback, registered at the identity provider); default: "
        "the URL each request came in on",
    )
    audit_console_idle_s: float = Field(
        900.0, gt=0, description="a console session ends after this long without a request"
    )
    audit_console_max_s: float = Field(
        8 * 3600.0, gt=0, description="and this long after sign-in, however busy"
    )


class ReviewFilter(StrEnum):
    PENDING = "pending"
    REVIEWED = "reviewed"
    ALL = "all"


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()
    # The audit keys; agencies' token hashes, read again when the file changes.
    keys = settings.keyring_source(Role.AUDIT)
    keyring = keys.current()
    people = settings.people()  # IG officers, as themselves

    async def known(token: str) -> bool:
        return keys.current().agency(token) is not None or await is_person(people, token)

    sealing = sealing_from(
        keyring,
        settings.audit_checkpoint_file,
        checkpoint_every=settings.audit_checkpoint_every,
    )
    store = AuditStore(settings.audit_database_url.get_secret_value(), sealing)
    store.create_schema()
    seal_unchained_reviews(store)  # reviews made before they were chained
    record_rotation(store)  # a new signing key is said in the trail before it signs
    stop = asyncio.Event()
    group = settings.topics().audit_group
    metrics = Metrics("infoshare-audit")
    seen = AuditTelemetry(metrics, group=group, checkpoint_age=lambda: _checkpoint_age(store))
    integrity = Integrity(store)  # the last verdict, and the console's "verify now"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workers = settings.audit_prepare_workers
        preparing = Offload(workers_for(store.engine.dialect.name) if workers is None else workers)
        task = critical_task(
            ingest(
                store,
                topic=settings.topics().audit,
                activity=settings.topics().audit_activity,
                access=settings.kafka_access(),
                group_id=group,
                dlq_topic=settings.topics().dlq("audit"),
                stop=stop,
                seen=seen,
                offload=preparing,
            ),
            name="audit ingestion",
        )
        anchors = critical_task(anchor(settings, store, stop), name="audit anchoring")
        witnessed = (
            asyncio.create_task(
                witness(store.engine, store.sealing, settings.audit_witness_url, stop=stop),
                name="audit witness",
            )
            if settings.audit_witness_url
            else None
        )
        checks: asyncio.Task[None] | None = None
        if settings.audit_verify_every_s > 0:
            checks = asyncio.create_task(
                verify_every(
                    settings.audit_verify_every_s,
                    store,
                    stop=stop,
                    report=seen.verification,
                    full_every_s=settings.audit_verify_full_every_s,
                    noted=integrity.noted,
                ),
                name="audit verification",
            )
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):  # already reported by critical_task
                await task
            await asyncio.to_thread(preparing.close)
            with contextlib.suppress(Exception):  # (ingestion's last checkpoint included)
                await anchors
            if witnessed is not None:
                await witnessed
            if checks is not None:
                await checks  # it ends at the next record it walks
            integrity.close()  # so does a walk begun from the console
            metrics.shutdown()  # an OTLP reader sends its last interval

    app = create_service_app(
        title="infoshare: audit service",
        description="Every sharing decision, shared or withheld, with its reason. "
        "Never a payload, never an identifier in clear.",
        lifespan=lifespan,
        health=lambda: audit_health(store),
        max_body_bytes=MAX_BODY_BYTES,
        # A body from whom no route would admit is refused before it is read.
        body_callers=lambda token: known(token),
        open_body_prefixes=(f"{CONSOLE}/",),  # its forms: by session, never a bearer token
    )

    @app.get(
        "/audit/overrides",
        response_model=list[OverridePublic],
        tags=["IG review"],
        summary="Decisions shared under a safeguarding override, with their review",
    )
    def list_overrides(
        authorization: PersonAuthorization,
        status: ReviewFilter = Query(ReviewFilter.PENDING),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[OverridePublic]:
        person_of(people, authorization, PersonRole.IG_OFFICER)  # the review queue is IG's
        reviewed = {"pending": False, "reviewed": True, "all": None}[status.value]
        return [
            OverridePublic(
                decision=AuditEntryPublic.model_validate(entry, from_attributes=True),
                review=OverrideReviewPublic(reviewer=r.reviewer, note=r.note, outcome=r.outcome)
                if r
                else None,
                reviewed_at=r.reviewed_at if r else None,
            )
            for entry, r in overrides(store, reviewed=reviewed, limit=limit)
        ]

    @app.post(
        "/audit/overrides/{audit_id}/review",
        status_code=201,
        response_model=OverrideReviewed,
        tags=["IG review"],
        summary="Record an IG officer's review of an override (once)",
        responses=answers(
            {
                404: "no decision shared under an override has this audit id",
                409: "this override has been reviewed already",
            }
        ),
    )
    def review(
        audit_id: Annotated[str, InPath(max_length=36)],
        body: OverrideReviewIn,
        authorization: PersonAuthorization,
    ) -> OverrideReviewed:
        officer = person_of(people, authorization, PersonRole.IG_OFFICER).actor
        try:
            row = review_override(store, audit_id, body, reviewer=officer)
        except NotAnOverride:
            raise HTTPException(
                404, detail="no decision shared under an override has this audit id"
            ) from None
        except AlreadyReviewed:
            raise HTTPException(409, detail="this override has been reviewed already") from None
        return OverrideReviewed(audit_id=row.audit_id, reviewed_at=row.reviewed_at)

    add_ig_routes(app, store, keyring, people)
    add_search_routes(app, store, keys, people)
    secret = settings.audit_console_client_secret
    add_console(
        app,
        store,
        keys,
        people,
        integrity=integrity,
        protocols=protocol_source(settings.protocols_dir, settings.directory, settings.schemas),
        options=ConsoleOptions(
            SignInOptions(
                client_id=settings.audit_console_client_id,
                client_secret=secret.get_secret_value() if secret else None,
                public_url=settings.audit_console_url,
                max_s=settings.audit_console_max_s,
            ),
            idle_s=settings.audit_console_idle_s,
            max_s=settings.audit_console_max_s,
        ),
    )
    app.state.audit_store = store  # for benchmarks and operators' tools in process
    instrument_http(app, metrics, token=settings.scrape_token())
    return app


async def anchor(settings: AuditSettings, store: AuditStore, stop: asyncio.Event) -> None:
    """Publish every checkpoint the store signs to the anchor topic (anchoring.py), from
    where the topic left off, until ``stop``."""
    access = settings.kafka_access()
    topics = settings.topics()
    directory = settings.directory()
    wanted = topics.audit_checkpoints
    await kafka.ensure_topics(access, [s for s in topics.all_specs(directory) if s.name == wanted])
    producer = kafka.producer(access)
    await producer.start()
    try:
        after = await anchoring.last_published(access, wanted)
        await anchoring.publish(
            store.engine, store.sealing, producer, wanted, after=after, stop=stop
        )
    finally:
        await producer.stop()


def _checkpoint_age(store: AuditStore) -> float | None:
    newest = audit_health(store)["last_checkpoint"]
    return None if newest is None else newest["age_s"]
