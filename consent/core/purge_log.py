"""A store's log of its purge runs, whatever the store (the delivery store's table, each
agency inbox's): the counts a run adds to as it deletes, its end, its audit record and the
operator's summary of it. Pure: the store reads and writes the rows."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from consent.core.retention import Tally, as_utc, purge_audit
from services.backbone.audit_contract import AuditRecord


@dataclass(frozen=True)
class LastPurge:
    """A store's last purge run: when, by whom, how many it removed (and of whose), and
    whether its audit record has gone out."""

    at: datetime
    total: int
    actor: str
    audited: bool
    by_recipient: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, run: PurgeLog) -> LastPurge:
        """What ``run``'s log says."""
        return cls(
            as_utc(run.purged_at),
            run.total,
            run.actor,
            run.audited_at is not None,
            Tally.of(run.counts).by_recipient(),
        )


class PurgeLog(typing.Protocol):
    """One purge run as a store logs it (a row of its table): its id (its audit record's
    too), when and by whom, its counts so far, whether they are final and when its audit
    record was sent."""

    id: str
    purged_at: datetime
    actor: str
    counts: list[list[str | int]]
    total: int
    finished: bool
    audited_at: datetime | None


def counted(run: PurgeLog, recipient: str, protocol: str | None, n: int) -> None:
    """``n`` more of ``recipient``'s items under ``protocol`` added to ``run``'s counts (in
    the transaction that deleted them)."""
    tally = Tally.of(run.counts)
    tally.count(recipient, protocol, n)
    run.counts, run.total = tally.rows(), tally.total


def finish(run: PurgeLog, at: datetime) -> None:
    """``run``'s counts final; a run that purged nothing has nothing to tell the trail, so
    counts as audited ``at`` its end."""
    run.finished = True
    if not run.total:
        run.audited_at = at


def run_audit(
    run: PurgeLog, *, noun: str, one: str | None = None, recipient: str | None = None
) -> AuditRecord:
    """The audit record of a logged run (:func:`purge_audit`), under the run's id."""
    return purge_audit(
        run_id=run.id,
        purged_at=as_utc(run.purged_at),
        tally=Tally.of(run.counts),
        noun=noun,
        one=one,
        actor=run.actor,
        recipient=recipient,
    )
