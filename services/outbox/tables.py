"""The outbox's tables (sqlmodel). Never returned from the API.

Portable types only: times are UTC (sqlmodel's UTCDateTime), record bytes LargeBinary,
header lists JSON. The tables are created by :meth:`OutboxStore.create_schema`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class SubmissionRow(SQLModel, table=True):
    """One accepted request. ``idempotency_key`` (unique per agency) and ``fingerprint``
    (a hash of the request) let a retried request be answered with ``response`` instead of
    publishing again."""

    __tablename__ = "outbox_submission"
    __table_args__ = (
        UniqueConstraint("agency", "idempotency_key", name="uq_outbox_idempotency_key"),
    )
    id: str = Field(primary_key=True, max_length=36)
    agency: str = Field(index=True, max_length=64)
    key_id: str = Field(max_length=128)  # the API key that made it
    idempotency_key: str | None = Field(default=None, max_length=255)
    fingerprint: str = Field(max_length=64)
    response: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    received_at: datetime


class OutboxRow(SQLModel, table=True):
    """An encoded Kafka record waiting for, or sent by, the relay; ``seq`` is the order it
    is published in. Once published, its key, value and headers are blanked: the outbox is
    not a second store of what agencies sent."""

    __tablename__ = "outbox_event"
    seq: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(index=True, max_length=36)
    event_id: str = Field(max_length=64, index=True)
    event_type: str = Field(max_length=128)
    topic: str = Field(max_length=255)
    record_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    record_value: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)
    record_headers: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON))
    created_at: datetime
    published_at: datetime | None = Field(default=None, index=True)
    # Set when the broker refused the record for good (its type, never its text); the
    # record went to dlq.outbox instead.
    failed_at: datetime | None = None
    failure: str | None = Field(default=None, max_length=120)


class NativeVersionRow(SQLModel, table=True):
    """The latest version of each record of an agency's own system: an amended record (the
    same native id, different content) is published as a new event, one version on, that
    says which event it supersedes. Keyed by the first version's event id (a keyed value,
    never the native id, which may hold an identifier); ``digest`` is a hash of the content
    the agency sent, so an identical re-send is told apart from an amendment."""

    __tablename__ = "outbox_native_version"
    agency: str = Field(primary_key=True, max_length=64)
    first_event_id: str = Field(primary_key=True, max_length=64)
    version: int
    digest: str = Field(max_length=64)
    event_id: str = Field(max_length=64)  # the latest version's
    updated_at: datetime
