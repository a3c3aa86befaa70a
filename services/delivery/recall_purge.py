"""Recall purges inside the delivery store's ingest transaction (store.py): finding what the
batch's notices name, deleting it with its notifications, keeping its number from being
given again, and logging each purge (tables.RecallPurgeRow) for its audit record, which
recall_audit.py sends once the transaction has committed. Who is told of each notice is
numbering.py's to say; what each withdraws, recalls.py's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from services.delivery.model import Incoming
from services.delivery.recalls import Key, Withdrawal, purge_audit_id, recalled_type
from services.delivery.tables import DeliveryRow, NotificationRow, NumberFloorRow, RecallPurgeRow


@dataclass(frozen=True)
class Held:
    """A delivery a notice names, as the store holds it."""

    seq: int
    number: int
    event_type: str
    protocol: str | None
    notified: frozenset[str] = frozenset()  # the subscriptions given it


def held(s: Session, notices: Sequence[Incoming]) -> dict[Key, Held]:
    """The deliveries ``notices`` name that the store holds, each with the subscriptions it
    was given to (read before they are deleted: each of them is told)."""
    found: dict[Key, Held] = {}
    for agency in sorted({i.agency for i in notices}):
        ids = sorted({i.event.recalls for i in notices if i.agency == agency and i.event.recalls})
        rows = s.exec(
            select(DeliveryRow).where(
                col(DeliveryRow.agency) == agency, col(DeliveryRow.event_id).in_(ids)
            )
        ).all()
        given: dict[int, set[str]] = defaultdict(set)
        seqs = [int(r.seq or 0) for r in rows]
        if seqs:
            stmt = select(NotificationRow.delivery_seq, NotificationRow.subscription_id).where(
                col(NotificationRow.delivery_seq).in_(seqs)
            )
            for seq, sub_id in s.exec(stmt):
                given[seq].add(sub_id)
        for r in rows:
            found[(agency, r.event_id)] = _held(r, frozenset(given[int(r.seq or 0)]))
    return found


def withdrawn(s: Session, batch: Sequence[Incoming]) -> set[Key]:
    """The deliveries of ``batch`` that a recall already withdrew: delivered again (a
    replay), they are not stored again."""
    out: set[Key] = set()
    for agency in sorted({i.agency for i in batch}):
        ids = sorted({i.event.event_id for i in batch if i.agency == agency})
        stmt = select(RecallPurgeRow.recalls).where(
            col(RecallPurgeRow.agency) == agency, col(RecallPurgeRow.recalls).in_(ids)
        )
        out |= {(agency, event_id) for event_id in s.exec(stmt)}
    return out


def purge(
    s: Session,
    plan: Sequence[Withdrawal],
    *,
    fresh: Sequence[Incoming],
    rows: Sequence[Held],
    held_before: dict[Key, Held],
    stamp: datetime,
) -> int:
    """Delete what each notice of ``plan`` withdraws (``held_before`` the batch, or one of
    its ``rows``) and log each purge; how many were logged. The notifications of the batch
    must be flushed: a delivery stored earlier in the batch goes with its own."""
    logged = 0
    for w in plan:
        notice = fresh[w.notice]
        target = None
        if w.found:
            key = (w.agency, w.recalls)
            target = held_before[key] if w.earlier is None else rows[w.earlier]
        notifications = _delete(s, w.agency, target) if target is not None else None
        if notifications is None:  # not held, or purged by retention since it was read
            target = None
        log_id = purge_audit_id(
            topic=notice.topic, partition=notice.partition, offset=notice.offset, agency=w.agency
        )
        if s.get(RecallPurgeRow, log_id) is not None:
            continue  # the notice read again after a retention purge took it: logged already
        s.add(
            RecallPurgeRow(
                id=log_id,
                agency=w.agency,
                notice_id=notice.event.event_id,
                recalls=w.recalls,
                recalled_type=target.event_type if target else recalled_type(notice.event),
                protocol=target.protocol if target else notice.event.protocol,
                found=target is not None,
                notifications=notifications or 0,
                kafka_topic=notice.topic,
                kafka_partition=notice.partition,
                kafka_offset=notice.offset,
                purged_at=stamp,
            )
        )
        logged += 1
    return logged


def _held(row: DeliveryRow, notified: frozenset[str] = frozenset()) -> Held:
    assert row.seq is not None  # stored, or flushed
    return Held(row.seq, row.number, row.event_type, row.protocol, notified)


def _delete(s: Session, agency: str, target: Held) -> int | None:
    """The delivery and its notifications gone, the recipient's number floor raised to its
    number (never given again, even once every delivery above it is purged); how many
    notifications went, or None if the delivery was gone already (a retention purge that
    committed since it was read)."""
    gone = s.exec(delete(NotificationRow).where(col(NotificationRow.delivery_seq) == target.seq))
    deleted = s.exec(delete(DeliveryRow).where(col(DeliveryRow.seq) == target.seq))
    floor = s.get(NumberFloorRow, agency, with_for_update=True)
    if floor is None:
        floor = NumberFloorRow(agency=agency, number=target.number)
    floor.number = max(floor.number, target.number)
    s.add(floor)
    return int(gone.rowcount) if deleted.rowcount else None
