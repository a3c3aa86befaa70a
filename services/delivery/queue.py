"""A subscription's notification log as a queue: the head to push next, what happened to
each push, ranges to re-read or send again, and what was given up (the alerts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, case, func, update
from sqlmodel import Session, col, select

from services.backbone.records import StoredHeaders
from services.delivery.model import State
from services.delivery.store import DeliveryStore, db_time, utc
from services.delivery.tables import DeliveryRow, NotificationRow, SubscriptionRow

_NOTIFICATION: Table = NotificationRow.__table__  # type: ignore[attr-defined]
_SUBSCRIPTION: Table = SubscriptionRow.__table__  # type: ignore[attr-defined]
_DELIVERY: Table = DeliveryRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Pending:
    """A notification as a worker or a reader read it (a row of NotificationRow's table)."""

    id: int
    subscription_id: str
    event_number: int
    state: str
    attempts: int
    queued_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Stored:
    """A delivery as read with its notification (a row of DeliveryRow's table, less what
    nobody reading a queue needs)."""

    event_id: str
    event_type: str
    source: str
    event_time: datetime
    protocol: str | None
    identity_level: str | None
    supersedes: str | None
    recalls: str | None
    kafka_topic: str
    kafka_partition: int
    kafka_offset: int
    record_key: bytes | None
    record_value: bytes
    record_headers: StoredHeaders


@dataclass(frozen=True, slots=True)
class Queued:
    notification: Pending
    delivery: Stored


_N = _NOTIFICATION.c
_D = _DELIVERY.c
# Read by SQLAlchemy Core into the two plain records above: loading ORM objects cost a
# worker more than the rest of reading its window (bench delivery).
_READ = select(
    *(_N[f.name] for f in fields(Pending)), *(_D[f.name] for f in fields(Stored))
).join_from(_NOTIFICATION, _DELIVERY, _D.seq == _N.delivery_seq)
_SPLIT = len(fields(Pending))


def _read(store: DeliveryStore, stmt: Select[Any]) -> list[Queued]:
    with store.read() as s:
        rows = s.connection().execute(stmt).all()
    return [Queued(Pending(*r[:_SPLIT]), Stored(*r[_SPLIT:])) for r in rows]


def head(store: DeliveryStore, sub_id: str) -> Queued | None:
    """The pending notification with the lowest event number: pushes go one at a time, in
    order, so a child's events arrive in the order they happened."""
    first = window(store, sub_id, 1)
    return first[0] if first else None


def window(store: DeliveryStore, sub_id: str, size: int) -> list[Queued]:
    """The ``size`` pending notifications with the lowest event numbers, in order: the
    head, and those to push after it if it is taken."""
    return _read(
        store,
        _READ.where(_N.subscription_id == sub_id, _N.state == State.PENDING.value)
        .order_by(_N.event_number)
        .limit(size),
    )


def entries(store: DeliveryStore, sub_id: str, low: int, high: int) -> list[Queued]:
    """Notifications numbered ``low`` to ``high`` (inclusive), in order, in any state."""
    return _read(
        store,
        _READ.where(
            _N.subscription_id == sub_id, _N.event_number >= low, _N.event_number <= high
        ).order_by(_N.event_number),
    )


def _as_read(s: Session, queued: Pending) -> NotificationRow | None:
    """The row, locked, if it is still what the worker read: pending, with the same attempt
    count and horizon start. A resend, a switch back on or a deletion meanwhile changed it,
    and the worker's outcome must not undo that."""
    row = s.get(NotificationRow, queued.id, with_for_update=True)
    if (
        row is None
        or row.state != State.PENDING.value
        or row.attempts != queued.attempts
        or utc(row.queued_at) != utc(queued.queued_at)
    ):
        return None
    return row


def start(store: DeliveryStore, queued: Pending, *, now: datetime) -> bool:
    """The notification became the head of its queue at ``now``: its retry horizon counts
    from here. False if it changed meanwhile."""
    with store.write() as s:
        row = _as_read(s, queued)
        if row is None:
            return False
        row.queued_at = row.next_attempt_at = db_time(now)
        s.add(row)
        return True


def mark_delivered(store: DeliveryStore, queued: Pending, *, now: datetime) -> bool:
    """The endpoint answered 2xx: delivered and acknowledged. False (nothing changed) if
    the row is no longer as the worker read it."""
    return mark_delivered_all(store, [queued], now=now) == 1


def mark_delivered_all(store: DeliveryStore, queued: Sequence[Pending], *, now: datetime) -> int:
    """:func:`mark_delivered` for each of ``queued`` (one subscription's), in one write;
    how many were still as the worker read them, and so marked. The rows are read locked
    and checked (pending, the same attempts and horizon start), and those still as read are
    changed by one UPDATE that checks them again, so a resend or a switch back on meanwhile
    is never undone. (An UPDATE a row cost more than the rest of recording a window.)"""
    if not queued:
        return 0
    table, subs = _NOTIFICATION, _SUBSCRIPTION
    wanted = {one.id: one for one in queued}
    with store.write() as s:
        conn = s.connection()
        now_rows = conn.execute(
            select(table.c.id, table.c.state, table.c.attempts, table.c.queued_at)
            .where(table.c.id.in_(sorted(wanted)))
            .with_for_update()
        ).all()
        marked = [
            wanted[row_id]
            for row_id, state, attempts, queued_at in now_rows
            if state == State.PENDING.value
            and attempts == wanted[row_id].attempts
            and utc(queued_at) == utc(wanted[row_id].queued_at)
        ]
        if not marked:
            return 0
        done = conn.execute(
            update(table)
            .where(
                table.c.id.in_(sorted(one.id for one in marked)),
                table.c.state == State.PENDING.value,
            )
            .values(state=State.DELIVERED.value, acknowledged=True, settled_at=db_time(now))
            .values(last_error=None)
        )
        if done.rowcount != len(marked):  # cannot be, the rows being locked: never half
            raise RuntimeError("notifications changed while locked; nothing recorded")
        highest = max(n.event_number for n in marked)
        conn.execute(
            update(subs)
            .where(subs.c.id == marked[0].subscription_id)
            .values(
                acked_through=case(
                    (subs.c.acked_through < highest, highest), else_=subs.c.acked_through
                ),
                last_error=None,
            )
        )
    return len(marked)


def mark_failed(
    store: DeliveryStore,
    queued: Pending,
    *,
    attempts: int,
    started: datetime,
    next_attempt_at: datetime,
    error: str,
) -> bool:
    """A try failed: try again at ``next_attempt_at``; the horizon counts from ``started``
    (when it became the head). False if the row is no longer as the worker read it."""
    with store.write() as s:
        row = _as_read(s, queued)
        if row is None:
            return False
        row.attempts, row.last_error = attempts, error
        row.queued_at = db_time(started)
        row.next_attempt_at = db_time(next_attempt_at)
        s.add(row)
        sub = s.get(SubscriptionRow, row.subscription_id)
        if sub is not None:
            sub.last_error = error
            s.add(sub)
        return True


def mark_dead_lettered(
    store: DeliveryStore,
    queued: Pending,
    *,
    attempts: int,
    error: str | None,
    now: datetime,
) -> bool:
    """Given up on. False if the row is no longer as the worker read it."""
    with store.write() as s:
        row = _as_read(s, queued)
        if row is None:
            return False
        row.state, row.attempts = State.DEAD_LETTERED.value, attempts
        row.last_error, row.settled_at = error, db_time(now)
        s.add(row)
        return True


def requeue(store: DeliveryStore, sub_id: str, low: int, high: int, *, now: datetime) -> int:
    """Queue ``low``..``high`` for pushing again, dead-lettered ones included, with a fresh
    retry horizon; how many were queued."""
    with store.write() as s:
        result = s.exec(
            update(NotificationRow)
            .where(
                col(NotificationRow.subscription_id) == sub_id,
                col(NotificationRow.event_number) >= low,
                col(NotificationRow.event_number) <= high,
            )
            .values(
                state=State.PENDING.value,
                attempts=0,
                next_attempt_at=None,
                queued_at=db_time(now),
                settled_at=None,
            )
        )
        return int(result.rowcount)


@dataclass(frozen=True)
class Alert:
    subscription_id: str
    agency: str
    event_number: int
    event_id: str
    dead_lettered_at: datetime | None
    reason: str | None


def alerts(store: DeliveryStore, *, agency: str, limit: int = 100) -> list[Alert]:
    """``agency``'s dead-lettered notifications, newest first: ids and reasons, never a
    payload."""
    with store.read() as s:
        rows = s.exec(
            select(NotificationRow, SubscriptionRow.agency, DeliveryRow.event_id)
            .join(SubscriptionRow, col(SubscriptionRow.id) == col(NotificationRow.subscription_id))
            .join(DeliveryRow, col(DeliveryRow.seq) == col(NotificationRow.delivery_seq))
            .where(
                col(NotificationRow.state) == State.DEAD_LETTERED.value,
                col(SubscriptionRow.agency) == agency,
            )
            .order_by(col(NotificationRow.settled_at).desc(), col(NotificationRow.id).desc())
            .limit(limit)
        ).all()
    return [
        Alert(n.subscription_id, agency, n.event_number, event_id, n.settled_at, n.last_error)
        for n, agency, event_id in rows
    ]


def alert_count(store: DeliveryStore) -> int:
    with store.read() as s:
        stmt = (
            select(func.count())
            .select_from(NotificationRow)
            .where(col(NotificationRow.state) == State.DEAD_LETTERED.value)
        )
        return int(s.exec(stmt).one())
