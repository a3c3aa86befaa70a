"""The outbox's tables (sqlmodel). Never returned from the API.

Portable types only: times are UTC (sqlmodel's UTCDateTime), record bytes LargeBinary,
header lists JSON. The tables are created by :meth:`OutboxStore.create_schema`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from services.backbone.records import StoredHeaders


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


def _partial(name: str, columns: tuple[str, ...], where: str) -> Index:
    """An index of the rows ``where`` holds only, on SQLite and PostgreSQL alike."""
    return Index(name, *columns, sqlite_where=text(where), postgresql_where=text(where))


class OutboxRow(SQLModel, table=True):
    """An encoded Kafka record waiting for, or sent by, the relay; ``seq`` is the order it
    is published in. Once published, its key, value and headers are blanked: the outbox is
    not a second store of what agencies sent."""

    __tablename__ = "outbox_event"
    # The backlog the health check and the metrics read, without going over what was
    # published: the outbox keeps published rows for the recall window (millions, for a
    # busy agency), and counting the refused records scanned them all (0.9 s a health
    # check with 1,000,000 rows); the backlog itself, 1,000,000 records while Kafka was
    # down, took 0.8 s to count and date, and 0.07 s on this index. Partial: it holds only
    # what waits, so publishing keeps it small.
    __table_args__ = (
        _partial(
            "ix_outbox_event_waiting",
            ("topic", "seq"),
            "published_at IS NULL AND failed_at IS NULL",
        ),
        _partial("ix_outbox_event_refused", ("topic",), "failed_at IS NOT NULL"),
    )
    seq: int | None = Field(default=None, primary_key=True)
    submission_id: str = Field(index=True, max_length=36)
    event_id: str = Field(max_length=64, index=True)
    event_type: str = Field(max_length=128)
    topic: str = Field(max_length=255)
    record_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    record_value: bytes = Field(sa_column=Column(LargeBinary, nullable=False), repr=False)
    record_headers: StoredHeaders = Field(default_factory=list, sa_column=Column(JSON))
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
