"""Recall in an agency's inbox (services/backbone/recall.py): a notice read from the agency's
delivery topic deletes the item it withdraws, in the transaction that stores the notice
(inbox_store.py), and the purge is logged here, one row per notice, found or not held. Each
row's audit record goes to ``audit.activity`` afterwards (:func:`send_audits`), under an id
of the notice's Kafka record, so a record sent again after a crash is kept once.

An audit record names the agency, the notice's id and what was found (the recalled item's
type and protocol): never its id, key or content."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Engine, Index, UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from consent.core.retention import as_utc
from services.backbone import envelope, recall
from services.backbone.audit_contract import AuditRecord, audit_id_for
from services.backbone.purge_runs import SendAudit, committing, send_logged

# The word an inbox's recall purge adds to its audit id: the delivery service purges what
# the same notice record withdraws for the same recipient, and keeps its own record of it.
RECALL_PURGE_ID = "inbox-recall-purge"


def actor_of(agency: str) -> str:
    """The agency service's own principal, in the audit trail."""
    return f"infoshare-{agency}"


class InboxRecallPurgeRow(SQLModel, table=True):
    """One recall notice's purge of one inbox, logged in the transaction that stored the
    notice: the item it withdrew (found, or not held) and when its audit record went out
    (None: not yet). One per notice, however often it is read."""

    __tablename__ = "agency_inbox_recall_purge"
    __table_args__ = (
        UniqueConstraint("topic", "notice_id", name="uq_agency_inbox_recall_notice"),
        # An item withdrawn is not stored again if read again (a lapsed replica's batch).
        Index("ix_agency_inbox_recall_recalled", "topic", "recalled_id"),
    )
    id: str = Field(primary_key=True, max_length=36)  # its audit record's
    topic: str = Field(max_length=255)
    agency: str = Field(max_length=64)
    notice_id: str = Field(max_length=64)
    recalled_id: str = Field(max_length=64)
    recalled_type: str | None = Field(default=None, max_length=128)
    protocol: str | None = Field(default=None, max_length=128)
    kafka_partition: int  # where the notice was read: its audit record's coordinates
    kafka_offset: int
    found: bool
    purged_at: datetime
    audited_at: datetime | None = Field(default=None, index=True)


class Holder(Protocol):
    """An inbox, as far as its recall log needs one (inbox_store.Inbox)."""

    engine: Engine
    topic: str


def logged(
    *,
    topic: str,
    agency: str,
    notice: envelope.CloudEvent,
    recalls: str,
    place: tuple[int, int],
    found: tuple[str, str | None] | None,
    at: datetime,
) -> dict[str, Any]:
    """The log row of ``notice`` (read at ``place``, its partition and offset) withdrawing
    ``recalls``: ``found`` is the deleted item's (type, protocol), None if it was not held."""
    partition, offset = place
    named = notice.data.get("recalled_type")
    return {
        "id": audit_id_for(
            topic=topic,
            partition=partition,
            offset=offset,
            recipient=agency,
            protocol=RECALL_PURGE_ID,
        ),
        "topic": topic,
        "agency": agency,
        "notice_id": notice.id,
        "recalled_id": recalls,
        # What was deleted is known for sure; the notice's word stands in when nothing was.
        "recalled_type": found[0] if found else _fitting(named, 128),
        "protocol": notice.extensions.get(envelope.EXT_PROTOCOL) or (found[1] if found else None),
        "kafka_partition": partition,
        "kafka_offset": offset,
        "found": found is not None,
        "purged_at": at,
    }


def log_purge(s: Session, values: dict[str, Any]) -> None:
    """Log a purge in ``s``'s transaction, unless its notice was logged already."""
    dialect = s.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    s.execute(insert(InboxRecallPurgeRow).values(values).on_conflict_do_nothing())


def withdrawn(s: Session, topic: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` a notice already logged in ``topic``'s inbox withdrew."""
    recalled = col(InboxRecallPurgeRow.recalled_id)
    where = (col(InboxRecallPurgeRow.topic) == topic, recalled.in_(ids))
    return set(s.exec(select(recalled).where(*where)).all())


def purge_audit(row: InboxRecallPurgeRow) -> AuditRecord:
    """The audit record of a logged purge, under the row's id (the notice's coordinates)."""
    return recall.purge_audit(
        coordinates=(row.topic, row.kafka_partition, row.kafka_offset),
        store=RECALL_PURGE_ID,
        recipient=row.agency,
        at=as_utc(row.purged_at),
        found=row.found,
        reason=_FOUND if row.found else _NOT_HELD,
        actor=actor_of(row.agency),
        notice_id=row.notice_id,
        recalled_type=row.recalled_type,
        protocol=row.protocol,
    )


_FOUND = "a recall notice withdrew a received item: deleted from the inbox, the notice kept"
_NOT_HELD = (
    "a recall notice withdrew a received item the inbox did not hold (purged already, or "
    "never stored): the notice kept"
)


def unaudited(inbox: Holder) -> list[AuditRecord]:
    """The audit records of ``inbox``'s recall purges not yet marked sent, oldest first."""
    with Session(inbox.engine) as s:
        rows = s.exec(
            select(InboxRecallPurgeRow)
            .where(
                col(InboxRecallPurgeRow.topic) == inbox.topic,
                col(InboxRecallPurgeRow.audited_at).is_(None),
            )
            .order_by(col(InboxRecallPurgeRow.purged_at), col(InboxRecallPurgeRow.kafka_offset))
        ).all()
        return [purge_audit(r) for r in rows]


async def send_audits(inbox: Holder, send: SendAudit, *, now: Callable[[], datetime]) -> int:
    """Send every recall purge's audit record of ``inbox`` not yet sent, marking each once
    the broker took it; how many were sent."""
    return await send_logged(
        functools.partial(unaudited, inbox),
        functools.partial(committing, inbox.engine),
        InboxRecallPurgeRow,
        send,
        now=lambda: as_utc(now()),
    )


def _fitting(value: Any, length: int) -> str | None:
    return value if isinstance(value, str) and len(value) <= length else None
