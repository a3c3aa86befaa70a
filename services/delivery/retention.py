"""Retention in the delivery store: a delivery is purged, with its notifications (the webhook
queue's and the pull inbox's entries), once the retention of the protocol rule it was shared
under has run, counted from when the store received it (consent/core/retention.py decides).

Each run is logged in the store, in the transactions that delete, with counts by recipient
and protocol; its audit record (counts only) goes to ``audit.activity`` afterwards. A run
whose record could not be sent (Kafka away, a crash) is sent by the next one, under the same
audit id, so the trail has every purge once."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, update
from sqlmodel import col, func, select

from consent.core.purge_log import LastPurge, counted, finish, run_audit
from consent.core.retention import (
    Held,
    Holding,
    RetentionRules,
    Tally,
    due,
    is_due,
)
from consent.policy.load import ProtocolError
from services.backbone.audit_contract import AuditRecord
from services.backbone.lease import Lease
from services.backbone.purge_runs import SendAudit, between_sends, keep_running, send_logged
from services.delivery.deadletter import ACTOR
from services.delivery.store import DeliveryStore, db_time
from services.delivery.tables import (
    DeliveryRow,
    NotificationRow,
    NumberFloorRow,
    RetentionPurgeRow,
)

NOUN, ONE = "deliveries", "delivery"
# Held by whoever purges the store (a replica of the service, or the operator's command), so
# one run at a time writes its log: long enough for a run over a large backlog.
LEASE, LEASE_TTL = "delivery-retention", timedelta(hours=1)
BATCH = 1000  # deliveries looked at, and at most deleted, per transaction
log = logging.getLogger(__name__)


def _groups(store: DeliveryStore) -> list[tuple[str, str | None]]:
    """Every (recipient, protocol) the store holds deliveries of."""
    with store.read() as s:
        rows = s.exec(select(DeliveryRow.agency, DeliveryRow.protocol).distinct()).all()
    return sorted(((a, p) for a, p in rows), key=lambda g: (g[0], g[1] or ""))


def _of(agency: str, protocol: str | None) -> list[ColumnElement[bool]]:
    column = col(DeliveryRow.protocol)
    return [col(DeliveryRow.agency) == agency, column == protocol if protocol else column.is_(None)]


def purge(
    store: DeliveryStore,
    rules: RetentionRules,
    *,
    now: datetime,
    actor: str = ACTOR,
    batch: int = BATCH,
) -> tuple[str, Tally]:
    """Delete every delivery held past its retention at ``now``, and its notifications;
    log the run (its id and counts). A delivery with no retention is kept."""
    run_id, tally, stamp = str(uuid.uuid4()), Tally(), db_time(now)
    with store.write() as s:
        # A run cut short (a crash) deleted what its counts say: final now, sent below.
        s.exec(update(RetentionPurgeRow).values(finished=True))
        s.add(RetentionPurgeRow(id=run_id, purged_at=stamp, actor=actor))
    for agency, protocol in _groups(store):
        kept = rules.retention(protocol, agency)
        if kept is None:
            continue
        after = 0
        while True:
            with store.read() as s:
                rows = s.exec(
                    select(DeliveryRow.seq, DeliveryRow.number, DeliveryRow.received_at)
                    .where(*_of(agency, protocol))
                    .where(col(DeliveryRow.received_at) <= stamp - kept.shortest())
                    .where(col(DeliveryRow.seq) > after)
                    .order_by(col(DeliveryRow.seq))
                    .limit(batch)
                ).all()
            if not rows:
                break
            after = int(rows[-1][0] or 0)
            held = [Held(int(seq or 0), agency, protocol, at) for seq, _, at in rows]
            gone = {h.key for h in due(held, rules, now)}
            if gone:
                highest = max(number for seq, number, _ in rows if seq in gone)
                deleted = _delete(store, run_id, agency, protocol, gone, highest)
                tally.count(agency, protocol, deleted)
    with store.write() as s:
        run = s.get(RetentionPurgeRow, run_id)
        assert run is not None
        finish(run, stamp)
        s.add(run)
    return run_id, tally


def _delete(
    store: DeliveryStore,
    run_id: str,
    agency: str,
    protocol: str | None,
    seqs: set[int],
    highest: int,
) -> int:
    """One transaction: the deliveries and their notifications gone, the recipient's number
    floor raised, the run's counts added to."""
    with store.write() as s:
        s.exec(delete(NotificationRow).where(col(NotificationRow.delivery_seq).in_(seqs)))
        deleted = int(s.exec(delete(DeliveryRow).where(col(DeliveryRow.seq).in_(seqs))).rowcount)
        floor = s.get(NumberFloorRow, agency)
        if floor is None:
            floor = NumberFloorRow(agency=agency, number=highest)
        floor.number = max(floor.number, highest)
        s.add(floor)
        run = s.get(RetentionPurgeRow, run_id, with_for_update=True)
        assert run is not None  # written before any deletion
        counted(run, agency, protocol, deleted)
        s.add(run)
    return deleted


def unaudited(store: DeliveryStore) -> list[AuditRecord]:
    """The audit records of the runs not yet marked sent, oldest first."""
    with store.read() as s:
        runs = s.exec(
            select(RetentionPurgeRow)
            .where(col(RetentionPurgeRow.finished), col(RetentionPurgeRow.audited_at).is_(None))
            .order_by(col(RetentionPurgeRow.purged_at))
        ).all()
    return [run_audit(r, noun=NOUN, one=ONE) for r in runs]


async def send_audits(store: DeliveryStore, send: SendAudit, *, now: Callable[[], datetime]) -> int:
    """Send every run's audit record not yet sent, marking each once the broker took it;
    how many were sent."""
    return await send_logged(
        functools.partial(unaudited, store),
        store.write,
        RetentionPurgeRow,
        send,
        now=lambda: db_time(now()),
    )


async def purge_and_audit(
    store: DeliveryStore,
    rules: Callable[[], RetentionRules],
    send: SendAudit,
    *,
    now: Callable[[], datetime],
    actor: str = ACTOR,
) -> Tally:
    """One run: the protocols read afresh (a set that does not load purges nothing), the
    purge, then its audit record and any an earlier run could not send."""
    return await between_sends(
        lambda: purge(store, rules(), now=now(), actor=actor)[1],
        lambda: send_audits(store, send, now=now),
    )


async def keep_purging(
    store: DeliveryStore,
    rules: Callable[[], RetentionRules],
    send: SendAudit,
    *,
    every_s: float,
    stop: asyncio.Event,
    lease: Lease | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Purge when started and every ``every_s`` after, until ``stop``: only the replica
    holding ``lease``. A failure (the store or Kafka away, the protocols unreadable) is
    logged and the next run tries again; nothing is purged on a protocol set that does not
    load."""
    await keep_running(
        lambda: purge_and_audit(store, rules, send, now=now),
        noun=NOUN,
        one=ONE,
        every_s=every_s,
        stop=stop,
        lease=lease,
        errors=(ProtocolError,),
        log=log,
    )


def holdings(store: DeliveryStore, rules: RetentionRules, *, now: datetime) -> list[Holding]:
    """Per recipient: deliveries held, due for purge at ``now``, and without a retention."""
    stamp = db_time(now)
    found: dict[str, Holding] = {}
    for agency, protocol in _groups(store):
        holding = found.setdefault(agency, Holding(agency))
        kept = rules.retention(protocol, agency)
        with store.read() as s:
            count = select(func.count()).select_from(DeliveryRow).where(*_of(agency, protocol))
            held = int(s.exec(count).one())
            holding.held += held
            if kept is None:
                holding.kept += held
                continue
            surely = count.where(col(DeliveryRow.received_at) <= stamp - kept.longest())
            holding.due += int(s.exec(surely).one())
            band = s.exec(
                select(DeliveryRow.received_at)
                .where(*_of(agency, protocol))
                .where(col(DeliveryRow.received_at) > stamp - kept.longest())
                .where(col(DeliveryRow.received_at) <= stamp - kept.shortest())
            ).all()
        holding.due += sum(is_due(Held(0, agency, protocol, at), rules, now) for at in band)
    return sorted(found.values(), key=lambda h: h.recipient)


def last_purge(store: DeliveryStore) -> LastPurge | None:
    with store.read() as s:
        run = s.exec(
            select(RetentionPurgeRow).order_by(col(RetentionPurgeRow.purged_at).desc()).limit(1)
        ).first()
    return None if run is None else LastPurge.of(run)
