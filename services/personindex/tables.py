"""The person index's tables (sqlmodel). Identifiers are never stored in clear: a link's
key is a keyed hash of the canonical identifier, and a person's subject identity (the
identifier events about them are keyed by) is sealed (AES-SIV) under a key only the hub's
services derive."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


class PersonRow(SQLModel, table=True):
    __tablename__ = "person_index_person"
    id: str = Field(primary_key=True, max_length=64)  # keyed hash of the founding identifier
    subject_sealed: str = Field(max_length=512, repr=False)
    created_at: datetime


class LinkRow(SQLModel, table=True):
    """One identifier (or demographic key) linked to one person, for good (links never move)."""

    __tablename__ = "person_index_link"
    key: str = Field(primary_key=True, max_length=64)  # keyed hash of the canonical key
    person: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=16)  # nhs | upn | la | demo
    source_agency: str = Field(max_length=64)
    linked_at: datetime


class ReviewRow(SQLModel, table=True):
    """A match a person should look at: a record whose identifiers name two people (nothing
    was linked), or a link made on demographics alone."""

    __tablename__ = "person_index_review"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)  # conflict | demographic_match | demographics_elsewhere
    reason: str = Field(max_length=200)
    persons: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    key_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    source_agency: str = Field(max_length=64)
    # The event whose record raised it: the agency finds and corrects the record by it.
    event_id: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="pending", max_length=16, index=True)
    created_at: datetime
    resolved_by: str | None = Field(default=None, max_length=128)
    resolved_at: datetime | None = None
    note: str | None = Field(default=None, max_length=2000)
