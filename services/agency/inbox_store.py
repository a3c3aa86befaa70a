"""What an agency has received, kept in its service's database: every delivery read from
its ``deliver.<agency>`` topic, numbered in arrival order, with the offsets read up to.

A batch and its offsets are stored in one transaction, so the inbox is exactly the topic's
committed records, once each (a delivery seen before, by event id, is not stored again),
across restarts and with no cap in memory. Replicas of the service sharing the database
fill it one at a time (the reader's lease).

A recall notice (services/backbone/recall.py) is kept like any delivery, and in the same
transaction the item it withdraws is deleted and the purge logged (its audit record is sent
afterwards: inbox_recall.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Engine, UniqueConstraint, delete, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from services.agency import inbox_recall
from services.agency.inbox_recall import InboxRecallPurgeRow
from services.backbone import envelope, recall
from services.backbone.database import create_tables, too_long
from services.backbone.lease import LEASE_TABLE


class InboxItemRow(SQLModel, table=True):
    __tablename__ = "agency_inbox"
    __table_args__ = (
        UniqueConstraint("topic", "event_id", name="uq_agency_inbox_event"),
        # Items are purged once their retention runs (inbox_retention.py): SQLite must not
        # give a purged item's number to a new one (a reader's cursor is past it).
        {"sqlite_autoincrement": True},
    )
    number: int | None = Field(default=None, primary_key=True)
    topic: str = Field(index=True, max_length=255)
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=128)
    source: str = Field(max_length=255)
    time: datetime
    protocol: str | None = Field(default=None, max_length=128)
    identity_level: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # An amendment: this agency's own id of the delivery it supersedes.
    supersedes: str | None = Field(default=None, max_length=64)
    # When it was stored, from which its retention counts (inbox_retention.py); None for
    # items stored before receipts were kept (their event's own time stands in).
    received_at: datetime | None = None


class InboxOffsetRow(SQLModel, table=True):
    __tablename__ = "agency_inbox_offset"
    topic: str = Field(primary_key=True, max_length=255)
    kafka_partition: int = Field(primary_key=True)
    next_offset: int


@dataclass(frozen=True)
class Received:
    number: int
    event_id: str
    type: str
    source: str
    time: datetime
    protocol: str | None
    identity_level: str | None
    data: dict[str, Any]
    supersedes: str | None = None


class InboxPurgeRow(SQLModel, table=True):
    """One retention purge run of one inbox: when, who ran it, what it removed in counts by
    protocol (``[[agency, protocol, n], ...]``, never an id), and when its audit record went
    out (None: not yet; the next run sends it). A run that purged nothing is kept here only
    (marked audited: there is nothing to say in the trail)."""

    __tablename__ = "agency_inbox_purge"
    id: str = Field(primary_key=True, max_length=36)  # also its audit record's id
    topic: str = Field(index=True, max_length=255)
    purged_at: datetime
    actor: str = Field(max_length=128)
    counts: list[list[str | int]] = Field(default_factory=list, sa_column=Column(JSON))
    total: int = 0
    finished: bool = False  # its audit record is sent only once its counts are final
    audited_at: datetime | None = None


RECALL_PURGE_TABLE = str(InboxRecallPurgeRow.__tablename__)
INBOX_TABLES = (
    str(InboxItemRow.__tablename__),
    str(InboxOffsetRow.__tablename__),
    LEASE_TABLE,
    str(InboxPurgeRow.__tablename__),
    RECALL_PURGE_TABLE,
)
# What the agency service's role may do with its inbox (in the outbox's database): items
# are never changed, and removed only once their retention has run or a notice recalled them.
INBOX_PRIVILEGES = {
    str(InboxItemRow.__tablename__): ("SELECT", "INSERT", "DELETE"),
    str(InboxOffsetRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    LEASE_TABLE: ("SELECT", "INSERT", "UPDATE"),
    str(InboxPurgeRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    RECALL_PURGE_TABLE: ("SELECT", "INSERT", "UPDATE"),
}


class Inbox:
    """One delivery topic's inbox in ``engine``'s database; ``agency``: whose (default: the
    name ending its topic, ``deliver.<agency>``)."""

    def __init__(self, engine: Engine, topic: str, *, agency: str | None = None) -> None:
        self.engine = engine
        self.topic = topic
        self.agency = agency or topic.rpartition("deliver.")[2]

    def create_schema(self) -> None:
        create_tables(self.engine, tables=[SQLModel.metadata.tables[n] for n in INBOX_TABLES])

    def offsets(self) -> dict[int, int]:
        with Session(self.engine) as s:
            rows = s.exec(select(InboxOffsetRow).where(col(InboxOffsetRow.topic) == self.topic))
            return {r.kafka_partition: r.next_offset for r in rows}

    def add(
        self,
        events: Sequence[envelope.CloudEvent],
        offsets: Mapping[int, int],
        *,
        now: datetime | None = None,
        at: Mapping[str, tuple[int, int]] | None = None,
    ) -> int:
        """Store the events not seen before, received ``now`` (default: the clock's now),
        and advance the offsets (never back), all or nothing; how many were new. Two
        replicas storing the same batch at once (one whose lease lapsed mid-batch, and its
        successor) both succeed, and store it once.

        Each recall notice among them (its ``(partition, offset)`` in ``at``, by event id)
        deletes the item it names, even one stored in this batch, and logs the purge once;
        an item a logged notice withdrew is not stored again."""
        received = now or datetime.now(UTC)
        rows, ids, notices = [], set(), []
        for event in events:
            if event.id not in ids:
                ids.add(event.id)
                rows.append({**_row(self.topic, event), "received_at": received})
                notice = recall.notice_of(event.type, event.extensions, event.data)
                if notice is not None:
                    notices.append((event, notice))
        insert = _dialect_insert(self.engine)
        new = 0
        with Session(self.engine) as s:
            if rows:
                withdrawn = inbox_recall.withdrawn(s, self.topic, ids)
                rows = [r for r in rows if r["event_id"] not in withdrawn]
            if rows:
                added = insert(InboxItemRow).values(rows)
                added = added.on_conflict_do_nothing(index_elements=["topic", "event_id"])
                # The rows inserted, not the copies skipped (a driver's rowcount may not say).
                new = len(s.execute(added.returning(col(InboxItemRow.number))).all())
            for event, notice in notices:
                # Every copy of a notice deletes (a lapsed replica may have stored the item
                # again); only its first is logged.
                self._recall(s, event, notice, at, received)
            if offsets:
                advanced = insert(InboxOffsetRow).values(
                    [
                        {"topic": self.topic, "kafka_partition": p, "next_offset": o}
                        for p, o in offsets.items()
                    ]
                )
                larger = func.greatest if self.engine.dialect.name == "postgresql" else func.max
                advanced = advanced.on_conflict_do_update(
                    index_elements=["topic", "kafka_partition"],
                    set_={
                        "next_offset": larger(
                            col(InboxOffsetRow.next_offset), advanced.excluded.next_offset
                        )
                    },
                )
                s.execute(advanced)
            s.commit()
        return new

    def _recall(
        self,
        s: Session,
        event: envelope.CloudEvent,
        notice: recall.Notice,
        at: Mapping[str, tuple[int, int]] | None,
        now: datetime,
    ) -> None:
        place = (at or {}).get(event.id)
        if place is None:  # its audit id is its position's
            raise ValueError(f"recall notice {event.id} given without its position")
        gone = s.execute(
            delete(InboxItemRow)
            .where(
                col(InboxItemRow.topic) == self.topic,
                col(InboxItemRow.event_id) == notice.recalls,
            )
            .returning(col(InboxItemRow.type), col(InboxItemRow.protocol))
        ).first()
        found = None if gone is None else (str(gone[0]), gone[1])
        values = inbox_recall.logged(
            topic=self.topic,
            agency=self.agency,
            notice=event,
            recalls=notice.recalls,
            place=place,
            found=found,
            at=now,
        )
        inbox_recall.log_purge(s, values)

    def after(self, cursor: int = 0, limit: int = 100) -> list[Received]:
        with Session(self.engine) as s:
            rows = s.exec(
                select(InboxItemRow)
                .where(col(InboxItemRow.topic) == self.topic, col(InboxItemRow.number) > cursor)
                .order_by(col(InboxItemRow.number))
                .limit(limit)
            ).all()
        return [
            Received(
                number=r.number or 0,
                event_id=r.event_id,
                type=r.type,
                source=r.source,
                time=r.time,
                protocol=r.protocol,
                identity_level=r.identity_level,
                supersedes=r.supersedes,
                data=r.data,
            )
            for r in rows
        ]

    def count(self) -> int:
        with Session(self.engine) as s:
            found = s.exec(
                select(func.count())
                .select_from(InboxItemRow)
                .where(col(InboxItemRow.topic) == self.topic)
            ).one()
        return int(found)


def acceptable(topic: str, event: envelope.CloudEvent) -> str | None:
    """Why the inbox cannot keep ``event`` (an attribute longer than its column), or None."""
    row = _row(topic, event)
    bounded = ("topic", "event_id", "type", "source", "protocol", "identity_level", "supersedes")
    problem = too_long(InboxItemRow, {column: row[column] for column in bounded})
    notice = recall.notice_of(event.type, event.extensions, event.data)
    if problem is None and notice is not None:
        problem = too_long(InboxRecallPurgeRow, {"recalled_id": notice.recalls})
    return problem


def _row(topic: str, event: envelope.CloudEvent) -> dict[str, Any]:
    return {
        "topic": topic,
        "event_id": event.id,
        "type": event.type,
        "source": event.source,
        "time": event.time,
        "protocol": event.extensions.get(envelope.EXT_PROTOCOL),
        "identity_level": event.extensions.get(envelope.EXT_IDENTITY),
        "supersedes": event.extensions.get(envelope.EXT_SUPERSEDES),
        "data": dict(event.data),
    }


def _dialect_insert(engine: Engine) -> Any:
    """INSERT with ON CONFLICT, as the database speaks it (SQLite and PostgreSQL alike)."""
    return pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
