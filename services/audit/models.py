"""Audit storage models (sqlmodel). The table model is never returned from the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, overload

from pydantic import field_validator
from sqlalchemy import JSON, BigInteger, Column, Integer, String
from sqlmodel import Field, SQLModel
from sqlmodel.sql.sqltypes import UTCDateTime

# Kafka offsets and the record count outgrow 32 bits; SQLite keeps INTEGER, so that seq
# stays the table's rowid there.
BIG = BigInteger().with_variant(Integer(), "sqlite")


class AuditEntryBase(SQLModel):
    audit_id: str = Field(max_length=36, unique=True, index=True)
    # sqlmodel's UTCDateTime, as every other table's times: aware UTC in and out, on SQLite
    # too (a plain DateTime there reads back without its offset).
    recorded_at: datetime = Field(index=True, sa_type=UTCDateTime())
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime())
    action: str = Field(max_length=32)
    decision: str = Field(max_length=32, index=True)
    reason_code: str = Field(max_length=64)
    reason: str
    actor: str = Field(max_length=128)
    event_id: str | None = Field(default=None, max_length=64, index=True)
    event_type: str | None = Field(default=None, max_length=128)
    source_agency: str | None = Field(default=None, max_length=64, index=True)
    recipient: str | None = Field(default=None, max_length=64, index=True)
    purpose: str | None = Field(default=None, max_length=64)
    protocol_id: str | None = Field(default=None, max_length=128)
    protocol_version: int | None = None
    lawful_basis: str | None = None
    identity_level: str | None = Field(default=None, max_length=32)
    subject_key: str | None = Field(default=None, max_length=64, index=True)
    subject_aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields_disclosed: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields_pseudonymised: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields_withheld: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields_tokenised: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    fields_encrypted: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    key_id: str | None = Field(default=None, max_length=128)
    token_key_id: str | None = Field(default=None, max_length=128)
    consent_record_id: str | None = Field(default=None, max_length=64)
    consent_version: int | None = None
    override_justification: str | None = None
    override_role: str | None = Field(default=None, max_length=80)
    topic_in: str | None = Field(default=None, max_length=255)
    partition_in: int | None = None
    offset_in: int | None = Field(default=None, sa_type=BIG)
    topic_out: str | None = Field(default=None, max_length=255)
    delivery_id: str | None = Field(default=None, max_length=64)
    trace_id: str | None = Field(default=None, max_length=32)
    refers_to: str | None = Field(default=None, max_length=36, index=True)


_NO_OFFSET = timedelta(0)


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
@overload
def as_utc(moment: datetime | None) -> datetime | None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """In UTC, as the store holds times: a time without an offset is read as UTC, one with an
    offset converted. Before it is hashed, so what is read back (in whatever zone the
    database gives, or none: SQLite keeps no zone) is the same instant the hash covered;
    before a search, so SQLite never compares wall-clock digits of two zones; and in every
    answer, so a time always carries its offset."""
    if moment is None or moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    # UTC by another name (pydantic's own, for every time it parses) is UTC already.
    return moment if moment.utcoffset() == _NO_OFFSET else moment.astimezone(UTC)


def in_utc(row: dict[str, Any]) -> None:
    """A record's times (its columns, as a dict) in UTC, in place, before it is sealed."""
    row["recorded_at"] = as_utc(row["recorded_at"])
    row["occurred_at"] = as_utc(row.get("occurred_at"))


CONTENT_FIELDS = tuple(AuditEntryBase.model_fields)
"""What a record's hash covers: every field of the record, none of the storage's own."""


class AuditEntry(AuditEntryBase, table=True):
    __tablename__ = "audit_entry"
    # Given by the store, 1, 2, 3 ... in the order records are sealed into the chain.
    seq: int | None = Field(
        default=None, primary_key=True, sa_type=BIG, sa_column_kwargs={"autoincrement": False}
    )
    entry_hash: str = Field(max_length=64, description="RFC 6962 leaf hash of seq and content")
    chain_hash: str = Field(max_length=64, description="HMAC chain link after this record")

    def content(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in CONTENT_FIELDS}


class AuditCheckpoint(SQLModel, table=True):
    """A signed Merkle tree head over the first ``tree_size`` records (also in a file)."""

    __tablename__ = "audit_checkpoint"
    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(index=True, sa_type=BIG)
    root: str = Field(max_length=64)
    chain_head: str = Field(max_length=64)
    created_at: str = Field(max_length=40)
    key_id: str = Field(max_length=128)
    signature: str = Field(max_length=128)
    # Not signed: the Merkle compact range at this size, so that the next checkpoint hashes
    # only the records after it. Checked against ``root`` before it is used.
    peaks: list[list[Any]] | None = Field(default=None, sa_column=Column(JSON))


class AuditMerkleBlock(SQLModel, table=True):
    """The Merkle tree head of one complete block of records (blocks.py): derived from the
    records' hashes, so that a proof reads one row per block instead of every record's.
    Never trusted: ``infoshare audit verify`` recomputes it."""

    __tablename__ = "audit_merkle_block"
    block: int = Field(primary_key=True, sa_type=BIG, sa_column_kwargs={"autoincrement": False})
    root: str = Field(max_length=64)


class AuditEntryPublic(AuditEntryBase):
    seq: int

    @field_validator("recorded_at", "occurred_at", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)

    @field_validator(
        "subject_aliases",
        "fields_disclosed",
        "fields_pseudonymised",
        "fields_withheld",
        "fields_tokenised",
        "fields_encrypted",
        mode="before",
    )
    @classmethod
    def _no_null_lists(cls, value: Any) -> Any:
        """A null list is an empty one (they hash alike; older rows may hold either)."""
        return [] if value is None else value


class AuditPage(SQLModel):
    items: list[AuditEntryPublic]
    total: int
    limit: int
    offset: int


OVERRIDE_CODE = "shared.safeguarding_override"


class ReviewOutcome(StrEnum):
    JUSTIFIED = "justified"  # the override was right: nothing more to do
    NOT_JUSTIFIED = "not_justified"  # it should not have been made: taken up with the agency
    FOLLOW_UP = "follow_up"  # open questions: followed up before a finding


class OverrideReviewNote(SQLModel):
    # No NUL: PostgreSQL cannot store one in text (a 500 where a 422 is due).
    note: str = Field(
        min_length=2,
        max_length=4000,
        schema_extra={"pattern": r"^[^\x00]*$"},  # sqlmodel's own regex= checks nothing
        description="the IG officer's finding",
    )


class OverrideReviewIn(OverrideReviewNote):
    outcome: ReviewOutcome = Field(description="what the IG officer found of the override")


class OverrideReviewPublic(OverrideReviewNote):
    reviewer: str = Field(description="the IG officer, from their token")
    outcome: ReviewOutcome | None = Field(
        default=None,
        sa_type=String(32),
        description="what the IG officer found (none: reviewed before outcomes were kept)",
    )


class OverrideReview(OverrideReviewPublic, table=True):
    """An IG officer's review of a decision shared under a safeguarding override: an index
    of the review records sealed in the chain (action ``override_review``, ``refers_to`` the
    decision), stored in their transaction; ``infoshare audit verify`` compares the two, so
    a review edited here is found. The decision's own record is never changed."""

    __tablename__ = "override_review"
    id: int | None = Field(default=None, primary_key=True)
    audit_id: str = Field(max_length=36, unique=True, index=True)
    reviewed_at: datetime = Field(sa_type=UTCDateTime())


class SubjectAlias(SQLModel, table=True):
    """Another identifier of a child (UPN, LA person id), keyed like the subject key, and
    the subject key its decisions are stored under: how an IG officer's search by UPN or LA
    id finds them. Derived from the records' ``subject_aliases``; never an identifier."""

    __tablename__ = "audit_subject_alias"
    alias_key: str = Field(max_length=64, primary_key=True)
    subject_key: str = Field(max_length=64, primary_key=True)
    # The agency whose record made the link ("" if the record named none): an agency
    # searching by alias follows only its own links.
    source_agency: str = Field(max_length=64, primary_key=True)


class OverridePublic(SQLModel):
    decision: AuditEntryPublic
    review: OverrideReviewPublic | None = None
    reviewed_at: datetime | None = None

    @field_validator("reviewed_at", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value)


class OverrideReviewed(SQLModel):
    """The answer to a review: which decision, and when it was reviewed."""

    audit_id: str
    reviewed_at: datetime

    @field_validator("reviewed_at", mode="after")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return as_utc(value)
