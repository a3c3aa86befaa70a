"""The durable notification log (sqlmodel): SQLite by default, any SQLAlchemy URL the
settings give. :meth:`DeliveryStore.ingest` is the heart of exactly-once numbering: one
transaction stores a batch of deliveries, numbers them for every subscription that wants
them, and advances the Kafka offsets the batch was read up to."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import orjson
from sqlalchemy import Engine, Table, and_, func, or_, union_all
from sqlmodel import Session, SQLModel, col, select

from services.backbone.bulk import insert_rows
from services.backbone.database import create_tables, engine_for
from services.backbone.errors import ConfigurationError
from services.backbone.lease import LEASE_TABLE
from services.backbone.records import Header, StoredHeaders, headers_from_stored, stored_headers
from services.delivery import recall_purge
from services.delivery.filters import parse_filters
from services.delivery.model import Channel, Delivered, Incoming, State, Status
from services.delivery.numbering import Subscriber, assign_numbers
from services.delivery.recalls import withdrawals
from services.delivery.secret_box import SecretBox
from services.delivery.tables import (
    ConsumerOffsetRow,
    DeliveryRow,
    NotificationRow,
    NumberFloorRow,
    RecallPurgeRow,
    RetentionPurgeRow,
    SubscriptionRow,
    WebhookSecretRow,
)

TopicPartition = tuple[str, int]
_DELIVERY: Table = DeliveryRow.__table__  # type: ignore[attr-defined]
_NOTIFICATION: Table = NotificationRow.__table__  # type: ignore[attr-defined]

_CHANGING = ("SELECT", "INSERT", "UPDATE", "DELETE")
# What the delivery service's own database role may do (the operator owns the schema): a
# delivery, once stored, is never changed, and removed only when its retention has run
# (retention.py) or its publisher recalled it (recall_purge.py); subscriptions, their secrets
# and their queues are (a recipient changes or ends a subscription, a secret is re-sealed).
# Purges are logged and marked audited.
DELIVERY_PRIVILEGES = {
    str(DeliveryRow.__tablename__): ("SELECT", "INSERT", "DELETE"),
    str(SubscriptionRow.__tablename__): _CHANGING,
    str(WebhookSecretRow.__tablename__): _CHANGING,
    str(NotificationRow.__tablename__): _CHANGING,
    str(ConsumerOffsetRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    LEASE_TABLE: ("SELECT", "INSERT", "UPDATE"),
    str(NumberFloorRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    str(RetentionPurgeRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    str(RecallPurgeRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
}


def db_time(moment: datetime) -> datetime:
    """UTC with its offset: sqlmodel stores it as UTC on every database (and refuses a
    time without an offset); a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc(moment: datetime) -> datetime:
    """A time read back, in UTC (sqlmodel returns it so; this only guards the type)."""
    return db_time(moment)


class HeldDelivery(Protocol):
    """What :func:`delivered` and :func:`headers_of` read of a stored delivery: a
    DeliveryRow, or a queue's plain record of one (queue.Stored)."""

    @property
    def event_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def event_time(self) -> datetime: ...
    @property
    def protocol(self) -> str | None: ...
    @property
    def identity_level(self) -> str | None: ...
    @property
    def supersedes(self) -> str | None: ...
    @property
    def recalls(self) -> str | None: ...
    @property
    def record_value(self) -> bytes: ...
    @property
    def record_headers(self) -> StoredHeaders: ...


def delivered(row: HeldDelivery) -> Delivered:
    return Delivered(
        event_id=row.event_id,
        type=row.event_type,
        source=row.source,
        time=utc(row.event_time),
        protocol=row.protocol,
        identity_level=row.identity_level,
        data=orjson.loads(row.record_value),
        supersedes=row.supersedes,
        recalls=row.recalls,
    )


def headers_of(row: HeldDelivery) -> list[Header]:
    return headers_from_stored(row.record_headers)


def _last_number(s: Session, agency: str) -> int:
    """The highest number ``agency``'s deliveries were given, purged ones included: one
    statement, so a purge committing meanwhile is seen whole or not at all."""
    given = union_all(
        select(func.max(DeliveryRow.number).label("n")).where(col(DeliveryRow.agency) == agency),
        select(col(NumberFloorRow.number).label("n")).where(col(NumberFloorRow.agency) == agency),
    ).subquery()
    return int(s.exec(select(func.max(given.c.n))).one() or 0)


def subscriber(row: SubscriptionRow) -> Subscriber:
    return Subscriber(
        id=row.id,
        agency=row.agency,
        status=Status(row.status),
        event_types=frozenset(row.event_types),
        filters=parse_filters(row.filters),
        events_since_start=row.events_since_start,
    )


@dataclass
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    notified: dict[str, int] = field(default_factory=dict)  # subscription id -> last number
    recall_purges: int = 0  # logged, their audit records to send (recall_audit.py)


class DeliveryStore:
    def __init__(self, url: str, *, secret_box: SecretBox | None = None) -> None:
        """``secret_box`` seals and opens webhook secrets; a store without one serves
        inboxes only."""
        self.engine: Engine = engine_for(url)
        self._secret_box = secret_box
        # One writer at a time in this process: SQLite would otherwise refuse a second
        # writer outright; on PostgreSQL the unique constraints guard other processes.
        self._write_lock = threading.RLock()

    def create_schema(self) -> None:
        create_tables(self.engine, [SQLModel.metadata.tables[n] for n in DELIVERY_PRIVILEGES])

    @property
    def secret_box(self) -> SecretBox:
        if self._secret_box is None:
            raise ConfigurationError("this delivery store has no key for webhook secrets")
        return self._secret_box

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            yield session
            self._before_commit(session)
            session.commit()

    def _before_commit(self, session: Session) -> None:
        """A seam for tests that crash a transaction at its last moment."""

    def offsets(self) -> dict[TopicPartition, int]:
        with self.read() as s:
            rows = s.exec(select(ConsumerOffsetRow)).all()
        return {(r.topic, r.kafka_partition): r.next_offset for r in rows}

    def ingest(
        self,
        batch: Sequence[Incoming],
        offsets: Mapping[TopicPartition, int],
        *,
        now: datetime,
    ) -> IngestResult:
        """Store ``batch``, append a numbered notification for every active subscription
        that wants each new delivery, and advance ``offsets``: all or nothing. A recall
        notice in the batch deletes the delivery it names, and its notifications, in the
        same transaction, and is numbered for every subscription that was given it
        (numbering.takes_notice); each such purge is logged for its audit record."""
        result = IngestResult()
        stamp = db_time(now)
        with self.write() as s:
            fresh = self._fresh(s, batch)
            result.duplicates = len(batch) - len(fresh)
            events = [(i.agency, i.event) for i in fresh]
            held = recall_purge.held(s, [i for i in fresh if i.event.recalls is not None])
            plan = withdrawals(events, {k: h.notified for k, h in held.items()})
            rows = self._store_deliveries(s, fresh, stamp)
            result.stored = len(rows)
            told = {sub_id for h in held.values() for sub_id in h.notified}
            subs = self._subscriptions(s, {i.agency for i in fresh}, told)
            numbered = assign_numbers(
                [subscriber(r) for r in subs.values()], events, withdrawals=plan
            )
            if numbered:
                pending = State.PENDING.value
                insert_rows(
                    s.connection(),
                    _NOTIFICATION,
                    (
                        {
                            "subscription_id": n.subscription_id,
                            "event_number": n.event_number,
                            "delivery_seq": rows[n.index].seq,
                            "state": pending,
                            "attempts": 0,
                            "queued_at": stamp,
                            "acknowledged": False,
                            "created_at": stamp,
                        }
                        for n in numbered
                    ),
                )
            for n in numbered:
                result.notified[n.subscription_id] = n.event_number
            for sub_id, last in result.notified.items():
                subs[sub_id].events_since_start = last
                s.add(subs[sub_id])
            if plan:
                s.flush()  # a delivery withdrawn in its own batch goes with its notifications
                result.recall_purges = recall_purge.purge(
                    s, plan, fresh=fresh, rows=rows, held_before=held, stamp=stamp
                )
            self._advance(s, offsets)
        return result

    def _subscriptions(
        self, s: Session, agencies: set[str], told: set[str]
    ) -> dict[str, SubscriptionRow]:
        """The active subscriptions of ``agencies``, and those ``told`` of a delivery a
        notice withdraws even if switched off (the notice waits in their queue)."""
        stmt = select(SubscriptionRow).where(
            or_(
                and_(
                    col(SubscriptionRow.agency).in_(sorted(agencies)),
                    col(SubscriptionRow.status) == Status.ACTIVE.value,
                ),
                col(SubscriptionRow.id).in_(sorted(told)),
            )
        )
        return {r.id: r for r in s.exec(stmt)}

    def _fresh(self, s: Session, batch: Sequence[Incoming]) -> list[Incoming]:
        """The deliveries not stored before (by recipient and event id), first copy only,
        and none a recall withdrew (before, or earlier in the batch)."""
        known = recall_purge.withdrawn(s, batch)
        for agency in {i.agency for i in batch}:
            ids = [i.event.event_id for i in batch if i.agency == agency]
            stmt = select(DeliveryRow.event_id).where(
                col(DeliveryRow.agency) == agency, col(DeliveryRow.event_id).in_(ids)
            )
            known |= {(agency, e) for e in s.exec(stmt)}
        fresh = []
        for i in batch:
            if (i.agency, i.event.event_id) not in known:
                known.add((i.agency, i.event.event_id))
                fresh.append(i)
                if i.event.recalls is not None:
                    known.add((i.agency, i.event.recalls))
        return fresh

    def _store_deliveries(
        self, s: Session, fresh: Sequence[Incoming], stamp: datetime
    ) -> list[recall_purge.Held]:
        """Store ``fresh`` under each recipient's next numbers in one statement (the
        driver's executemany, or COPY: plain rows, not ORM objects, and without
        SQLAlchemy's bookkeeping per row, which cost more than the writing); each as it is
        held, with its seq, read back by the numbers just given."""
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        values: list[dict[str, object]] = []
        held: list[tuple[int, str, str | None]] = []  # number, type, protocol
        for i in fresh:
            if i.agency not in last:
                last[i.agency] = _last_number(s, i.agency)
                first[i.agency] = last[i.agency] + 1
            last[i.agency] += 1
            e = i.event
            held.append((last[i.agency], e.type, e.protocol))
            values.append(
                {
                    "agency": i.agency,
                    "number": last[i.agency],
                    "event_id": e.event_id,
                    "event_type": e.type,
                    "source": e.source,
                    "event_time": db_time(e.time),
                    "protocol": e.protocol,
                    "identity_level": e.identity_level,
                    "supersedes": e.supersedes,
                    "recalls": e.recalls,
                    "kafka_topic": i.topic,
                    "kafka_partition": i.partition,
                    "kafka_offset": i.offset,
                    "record_key": i.key,
                    "record_value": i.value,
                    "record_headers": stored_headers(i.headers),
                    "received_at": stamp,
                }
            )
        if not values:
            return []
        insert_rows(s.connection(), _DELIVERY, values)
        seqs: dict[tuple[str, int], int] = {}
        c = _DELIVERY.c
        for agency, low in first.items():
            given = select(c.number, c.seq).where(
                c.agency == agency, c.number >= low, c.number <= last[agency]
            )
            seqs.update(((agency, n), seq) for n, seq in s.connection().execute(given))
        return [
            recall_purge.Held(seqs[(i.agency, kept[0])], *kept)
            for i, kept in zip(fresh, held, strict=True)
        ]

    def _advance(self, s: Session, offsets: Mapping[TopicPartition, int]) -> None:
        for (topic, partition), next_offset in offsets.items():
            row = s.get(ConsumerOffsetRow, (topic, partition))
            if row is None:
                row = ConsumerOffsetRow(
                    topic=topic, kafka_partition=partition, next_offset=next_offset
                )
            row.next_offset = max(row.next_offset, next_offset)
            s.add(row)

    def delivery(self, agency: str, event_id: str) -> DeliveryRow | None:
        with self.read() as s:
            return s.exec(
                select(DeliveryRow).where(
                    col(DeliveryRow.agency) == agency, col(DeliveryRow.event_id) == event_id
                )
            ).first()

    def deliveries_after(self, agency: str, after: int, limit: int) -> list[DeliveryRow]:
        """One recipient's deliveries numbered after ``after``, in order."""
        with self.read() as s:
            stmt = (
                select(DeliveryRow)
                .where(col(DeliveryRow.agency) == agency, col(DeliveryRow.number) > after)
                .order_by(col(DeliveryRow.number))
                .limit(limit)
            )
            return list(s.exec(stmt).all())

    def delivered_count(self) -> int:
        with self.read() as s:
            return int(s.exec(select(func.count()).select_from(DeliveryRow)).one())

    def active_webhooks(self) -> list[str]:
        with self.read() as s:
            stmt = select(SubscriptionRow.id).where(
                col(SubscriptionRow.channel) == Channel.WEBHOOK.value,
                col(SubscriptionRow.status) == Status.ACTIVE.value,
            )
            return list(s.exec(stmt).all())
