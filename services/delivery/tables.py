"""The delivery service's tables (sqlmodel). Never returned from the API: routes build the
public models of ``api_models`` from them.

Only portable types and SQL (no SQLite or PostgreSQL dialect features): times are UTC
(sqlmodel's UTCDateTime), record bytes LargeBinary, lists JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from services.backbone.records import StoredHeaders


class SubscriptionRow(SQLModel, table=True):
    __tablename__ = "delivery_subscription"
    id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(index=True, max_length=64)
    status: str = Field(max_length=16)
    channel: str = Field(max_length=16)
    content: str = Field(max_length=16)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    filters: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    endpoint: str | None = Field(default=None, max_length=2048)
    # A secret in clear, as versions before encryption at rest stored it: sealed into
    # WebhookSecretRow when the service starts (webhook_secrets.seal_clear_secrets), then NULL.
    legacy_secret: str | None = Field(
        default=None, sa_column=Column("secret", String(128), nullable=True), repr=False
    )
    heartbeat_period_s: int | None = None
    events_since_start: int = 0  # the last event number given out
    acked_through: int = 0  # inbox: acknowledged; webhook: last one the endpoint took
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime
    updated_at: datetime


class WebhookSecretRow(SQLModel, table=True):
    """A webhook subscription's signing secret, encrypted (secret_box.py): the key's id, the
    nonce and the ciphertext. Never in clear, never returned from the API."""

    __tablename__ = "delivery_webhook_secret"
    subscription_id: str = Field(primary_key=True, max_length=36)
    key_id: str = Field(max_length=128)
    nonce: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)


class DeliveryRow(SQLModel, table=True):
    """A delivered event, stored once per recipient and event id (a replayed or duplicated
    record is not stored or notified again). ``number`` orders one recipient's deliveries
    for the all-deliveries inbox view."""

    __tablename__ = "delivery_event"
    __table_args__ = (
        UniqueConstraint("agency", "event_id", name="uq_delivery_event_id"),
        UniqueConstraint("agency", "number", name="uq_delivery_event_number"),
        # Rows are purged once their retention runs (retention.py): SQLite must not give the
        # seq of a purged row to a new one (PostgreSQL's sequence never does).
        {"sqlite_autoincrement": True},
    )
    seq: int | None = Field(default=None, primary_key=True)
    agency: str = Field(index=True, max_length=64)
    number: int
    event_id: str = Field(max_length=64)
    event_type: str = Field(max_length=128)
    source: str = Field(max_length=255)
    event_time: datetime
    protocol: str | None = Field(default=None, max_length=160)
    identity_level: str | None = Field(default=None, max_length=32)
    supersedes: str | None = Field(default=None, max_length=64)  # an amendment's
    recalls: str | None = Field(default=None, max_length=64)  # a recall notice's
    kafka_topic: str = Field(max_length=255)
    kafka_partition: int
    kafka_offset: int
    record_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    record_value: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)
    record_headers: StoredHeaders = Field(default_factory=list, sa_column=Column(JSON))
    received_at: datetime


class NotificationRow(SQLModel, table=True):
    """One event in one subscription's log under its event number."""

    __tablename__ = "delivery_notification"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_number", name="uq_notification_number"),
        # A webhook worker's window: a subscription's pending ones in number order, found
        # directly (by the unique index above, it stepped past every one delivered before).
        Index("ix_delivery_notification_queue", "subscription_id", "state", "event_number"),
        {"sqlite_autoincrement": True},  # purged with their delivery: ids never given twice
    )
    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(index=True, max_length=36)
    event_number: int
    delivery_seq: int = Field(index=True)
    state: str = Field(index=True, max_length=16)
    attempts: int = 0
    queued_at: datetime  # the retry horizon counts from here (reset by a resend)
    next_attempt_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    acknowledged: bool = False
    created_at: datetime
    settled_at: datetime | None = None  # delivered, acknowledged or dead-lettered


class ConsumerOffsetRow(SQLModel, table=True):
    """The next offset to read per delivery topic partition: advanced in the same
    transaction that stores what was read."""

    __tablename__ = "delivery_consumer_offset"
    topic: str = Field(primary_key=True, max_length=255)
    kafka_partition: int = Field(primary_key=True)
    next_offset: int


class NumberFloorRow(SQLModel, table=True):
    """The highest number any purged delivery of a recipient had: a number is never given
    twice, even after every delivery that had one is purged (a cursor past it would skip
    the next ones)."""

    __tablename__ = "delivery_number_floor"
    agency: str = Field(primary_key=True, max_length=64)
    number: int


class RetentionPurgeRow(SQLModel, table=True):
    """One retention purge run of the store: when, who ran it, what it removed in counts by
    recipient and protocol (``[[recipient, protocol, n], ...]``, never an id), and when its
    audit record went out (None: not yet; the next run sends it). A run that purged nothing
    is kept here only (marked audited: there is nothing to say in the trail)."""

    __tablename__ = "delivery_retention_purge"
    id: str = Field(primary_key=True, max_length=36)  # also its audit record's id
    purged_at: datetime = Field(index=True)
    actor: str = Field(max_length=128)
    counts: list[list[str | int]] = Field(default_factory=list, sa_column=Column(JSON))
    total: int = 0
    finished: bool = False  # its audit record is sent only once its counts are final
    audited_at: datetime | None = None


class RecallPurgeRow(SQLModel, table=True):
    """What one recall notice withdrew from the store (recall_purge.py), written in the
    transaction that stored the notice: the delivery it names deleted (``found``) or not held
    (purged already, never stored), with how many notifications went with it; and when its
    audit record went out (None: not yet). Also the memory that keeps a withdrawn delivery
    from being stored again if it is delivered again. Ids and counts only, never a value."""

    __tablename__ = "delivery_recall_purge"
    __table_args__ = (Index("ix_delivery_recall_purge_recalls", "agency", "recalls"),)
    id: str = Field(primary_key=True, max_length=36)  # also its audit record's id
    agency: str = Field(max_length=64)
    notice_id: str = Field(max_length=64)
    recalls: str = Field(max_length=64)  # the recipient's id of the delivery withdrawn
    recalled_type: str | None = Field(default=None, max_length=128)
    protocol: str | None = Field(default=None, max_length=160)
    found: bool
    notifications: int = 0  # the deleted delivery's, queued or settled
    kafka_topic: str = Field(max_length=255)  # where the notice was read: its audit id's
    kafka_partition: int
    kafka_offset: int
    purged_at: datetime
    audited_at: datetime | None = Field(default=None, index=True)
