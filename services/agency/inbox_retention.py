"""Retention in an agency's inbox: an item it received is purged once the retention of the
protocol rule it was shared under has run, counted from when the inbox stored it (an item
stored before that was kept counts from its event's time, which is never later), as the
delivery service does with what it holds (consent/core/retention.py decides).

Each run is logged beside the inbox, in the transactions that delete, with counts by
protocol; its audit record (counts only) goes to ``audit.activity`` afterwards, and a run
whose record could not be sent is sent by the next one under the same audit id."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, update
from sqlmodel import Session, col, select

from consent.core.purge_log import LastPurge, counted, finish, run_audit
from consent.core.retention import (
    Held,
    Holding,
    RetentionRules,
    Tally,
    as_utc,
    due,
    is_due,
)
from consent.policy.load import ProtocolError
from services.agency.inbox_recall import actor_of
from services.agency.inbox_store import Inbox, InboxItemRow, InboxPurgeRow
from services.backbone.audit_contract import AuditRecord
from services.backbone.lease import Lease
from services.backbone.purge_runs import (
    SendAudit,
    between_sends,
    committing,
    keep_running,
    send_logged,
)

NOUN, ONE = "received items", "received item"
LEASE_TTL = timedelta(hours=1)  # long enough for a run over a large backlog
BATCH = 1000  # items looked at, and at most deleted, per transaction
log = logging.getLogger(__name__)

# When an item's retention counts from: its receipt, or for one stored before receipts were
# kept, its event's time (never later than its receipt).
_RECEIVED = func.coalesce(col(InboxItemRow.received_at), col(InboxItemRow.time))


def lease_name(inbox: Inbox) -> str:
    """The lease whoever purges this inbox holds (a replica of its service, or the
    operator's command), so one run at a time writes its log."""
    return f"retention:{inbox.topic}"


def _protocols(inbox: Inbox) -> list[str | None]:
    with Session(inbox.engine) as s:
        found = s.exec(
            select(InboxItemRow.protocol).where(col(InboxItemRow.topic) == inbox.topic).distinct()
        ).all()
    return sorted(found, key=lambda p: p or "")


def _of(inbox: Inbox, protocol: str | None) -> list[ColumnElement[bool]]:
    column = col(InboxItemRow.protocol)
    return [
        col(InboxItemRow.topic) == inbox.topic,
        column == protocol if protocol else column.is_(None),
    ]


def purge(
    inbox: Inbox,
    agency: str,
    rules: RetentionRules,
    *,
    now: datetime,
    actor: str | None = None,
    batch: int = BATCH,
) -> tuple[str, Tally]:
    """Delete every item of ``agency``'s inbox held past its retention at ``now``; log the
    run (its id and counts). An item with no retention is kept."""
    run_id, tally, stamp = str(uuid.uuid4()), Tally(), as_utc(now)
    with Session(inbox.engine) as s:
        # A run cut short (a crash) deleted what its counts say: final now, sent below.
        s.exec(
            update(InboxPurgeRow)
            .where(col(InboxPurgeRow.topic) == inbox.topic)
            .values(finished=True)
        )
        run = InboxPurgeRow(
            id=run_id, topic=inbox.topic, purged_at=stamp, actor=actor or actor_of(agency)
        )
        s.add(run)
        s.commit()
    for protocol in _protocols(inbox):
        kept = rules.retention(protocol, agency)
        if kept is None:
            continue
        after = 0
        while True:
            with Session(inbox.engine) as s:
                rows = s.exec(
                    select(InboxItemRow.number, _RECEIVED)
                    .where(*_of(inbox, protocol))
                    .where(stamp - kept.shortest() >= _RECEIVED)
                    .where(col(InboxItemRow.number) > after)
                    .order_by(col(InboxItemRow.number))
                    .limit(batch)
                ).all()
            if not rows:
                break
            after = int(rows[-1][0] or 0)
            held = [Held(int(n or 0), agency, protocol, at) for n, at in rows]
            gone = {h.key for h in due(held, rules, now)}
            if gone:
                tally.count(agency, protocol, _delete(inbox, run_id, agency, protocol, gone))
    with Session(inbox.engine) as s:
        done = s.get(InboxPurgeRow, run_id)
        assert done is not None
        finish(done, stamp)
        s.add(done)
        s.commit()
    return run_id, tally


def _delete(inbox: Inbox, run_id: str, agency: str, protocol: str | None, numbers: set[int]) -> int:
    with Session(inbox.engine) as s:
        deleted = int(
            s.exec(delete(InboxItemRow).where(col(InboxItemRow.number).in_(numbers))).rowcount
        )
        run = s.get(InboxPurgeRow, run_id, with_for_update=True)
        assert run is not None  # written before any deletion
        counted(run, agency, protocol, deleted)
        s.add(run)
        s.commit()
    return deleted


def unaudited(inbox: Inbox, agency: str) -> list[AuditRecord]:
    """The audit records of ``agency``'s inbox's runs not yet marked sent, oldest first."""
    with Session(inbox.engine) as s:
        runs = s.exec(
            select(InboxPurgeRow)
            .where(
                col(InboxPurgeRow.topic) == inbox.topic,
                col(InboxPurgeRow.finished),
                col(InboxPurgeRow.audited_at).is_(None),
            )
            .order_by(col(InboxPurgeRow.purged_at))
        ).all()
        return [run_audit(r, noun=NOUN, one=ONE, recipient=agency) for r in runs]


async def send_audits(
    inbox: Inbox, send: SendAudit, *, agency: str, now: Callable[[], datetime]
) -> int:
    """Send every run's audit record of ``agency``'s inbox not yet sent, marking each once
    the broker took it; how many were sent."""
    return await send_logged(
        functools.partial(unaudited, inbox, agency),
        functools.partial(committing, inbox.engine),
        InboxPurgeRow,
        send,
        now=lambda: as_utc(now()),
    )


async def purge_and_audit(
    inbox: Inbox,
    agency: str,
    rules: Callable[[], RetentionRules],
    send: SendAudit,
    *,
    now: Callable[[], datetime],
    actor: str | None = None,
) -> Tally:
    """One run: what an earlier run could not send, the protocols read afresh (a set that
    does not load purges nothing), the purge, then its audit record."""
    return await between_sends(
        lambda: purge(inbox, agency, rules(), now=now(), actor=actor)[1],
        lambda: send_audits(inbox, send, agency=agency, now=now),
    )


async def keep_purging(
    inbox: Inbox,
    agency: str,
    rules: Callable[[], RetentionRules],
    send: SendAudit,
    *,
    every_s: float,
    stop: asyncio.Event,
    lease: Lease | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    also: Callable[[datetime], object] | None = None,
) -> None:
    """Purge when started and every ``every_s`` after, until ``stop``, only while holding
    ``lease`` (replicas share the database); a failure is logged and tried again next time.
    ``also``: another of the service's purges, run first (in a thread) each time."""

    async def run() -> Tally:
        if also is not None:
            await asyncio.to_thread(also, now())
        return await purge_and_audit(inbox, agency, rules, send, now=now)

    await keep_running(
        run,
        noun=NOUN,
        one=ONE,
        every_s=every_s,
        stop=stop,
        lease=lease,
        errors=(ProtocolError, OSError),
        log=log,
    )


def holdings(inbox: Inbox, agency: str, rules: RetentionRules, *, now: datetime) -> list[Holding]:
    """The inbox's items: held, due for purge at ``now``, and without a retention."""
    stamp, holding = as_utc(now), Holding(agency)
    for protocol in _protocols(inbox):
        kept = rules.retention(protocol, agency)
        with Session(inbox.engine) as s:
            count = select(func.count()).select_from(InboxItemRow).where(*_of(inbox, protocol))
            held = int(s.exec(count).one())
            holding.held += held
            if kept is None:
                holding.kept += held
                continue
            holding.due += int(s.exec(count.where(stamp - kept.longest() >= _RECEIVED)).one())
            band = s.exec(
                select(_RECEIVED)
                .where(*_of(inbox, protocol))
                .where(stamp - kept.longest() < _RECEIVED, stamp - kept.shortest() >= _RECEIVED)
            ).all()
        holding.due += sum(is_due(Held(0, agency, protocol, at), rules, now) for at in band)
    return [holding] if holding.held else []


def last_purge(inbox: Inbox) -> LastPurge | None:
    with Session(inbox.engine) as s:
        run = s.exec(
            select(InboxPurgeRow)
            .where(col(InboxPurgeRow.topic) == inbox.topic)
            .order_by(col(InboxPurgeRow.purged_at).desc())
            .limit(1)
        ).first()
    return None if run is None else LastPurge.of(run)
