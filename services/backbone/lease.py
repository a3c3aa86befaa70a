"""One replica at a time does a piece of work: a lease in the database the replicas share.

Replicas of a service share its database (PostgreSQL). Work that must not run twice at
once (an agency's outbox relay; the delivery service's ingest, and each webhook
subscription's pushes) is done by the replica holding its lease, which renews it as it
works; the others stand by and take over once it lapses (a replica that stopped or hangs),
or at once when it is released. Taking a lease over raises its epoch, so a holder learns it
lost the lease at its next renewal.

A holder that hangs longer than the lease can overlap its successor for one step; each
user of a lease says what that costs it. SQLite allows one writer process anyway: there,
one replica is all there is.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, case, or_, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select, update


class LeaseRow(SQLModel, table=True):
    """Who holds a lease (``name``) until ``expires_at``; ``epoch`` rises with each
    takeover."""

    __tablename__ = "lease"
    name: str = Field(primary_key=True, max_length=255)
    holder: str = Field(max_length=64)
    epoch: int
    expires_at: datetime


LEASE_TABLE = str(LeaseRow.__tablename__)


Clock = Callable[[Session], datetime]


def database_clock(session: Session) -> datetime:
    """The time by which every replica judges a lease: the database's own clock on
    PostgreSQL, so that replicas on machines whose clocks disagree never both hold it; this
    machine's on SQLite, where one process on one machine is all there is."""
    if session.get_bind().dialect.name == "postgresql":
        now: datetime = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return now
    return datetime.now(UTC)


@dataclass
class Lease:
    engine: Engine
    name: str
    ttl: timedelta = timedelta(seconds=15)
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    epoch: int | None = None  # the epoch held, None when not held
    clock: Clock = database_clock  # judges who holds it (tests give their own)
    monotonic: Callable[[], float] = time.monotonic  # the holder's own view of how long
    _until: float | None = None  # held until then (``monotonic``), counted from the ask

    def held(self, need: timedelta | None = None) -> bool:
        """Whether we hold it for at least ``need`` more (default: half the lease),
        renewing it only when less is left (a write a few times a lease, not on every pass
        of the work). Work that may take a while (a webhook push) asks for its longest."""
        if self.surely_held(need):
            return True
        return self.hold() and (need is None or need < self.ttl)

    def surely_held(self, need: timedelta | None = None) -> bool:
        """:meth:`held`'s answer when it needs no renewal, without touching the database
        (an event loop can ask it itself); False when only :meth:`held` can tell."""
        margin = max(self.ttl / 2, need or timedelta(0)).total_seconds()
        return self._until is not None and self.monotonic() < self._until - margin

    def hold(self) -> bool:
        """Take or renew the lease if it is ours or has lapsed; whether we hold it now."""
        # The holder counts its time from before it asked, so it always believes the lease
        # ends no later than the database does.
        asked = self.monotonic()
        with Session(self.engine) as s:
            now = self.clock(s)
            taken = s.exec(
                update(LeaseRow)
                .where(
                    col(LeaseRow.name) == self.name,
                    or_(col(LeaseRow.holder) == self.holder, col(LeaseRow.expires_at) < now),
                )
                .values(
                    holder=self.holder,
                    expires_at=now + self.ttl,
                    epoch=case(
                        (col(LeaseRow.holder) == self.holder, col(LeaseRow.epoch)),
                        else_=col(LeaseRow.epoch) + 1,
                    ),
                )
            ).rowcount
            s.commit()
            if not taken and s.get(LeaseRow, self.name) is None:  # the first relay ever
                s.add(
                    LeaseRow(name=self.name, holder=self.holder, epoch=1, expires_at=now + self.ttl)
                )
                try:
                    s.commit()
                except IntegrityError:  # another relay made it first
                    s.rollback()
            row = s.exec(select(LeaseRow).where(col(LeaseRow.name) == self.name)).one()
            held = row.holder == self.holder
            self.epoch = row.epoch if held else None
            self._until = asked + self.ttl.total_seconds() if held else None
            return held

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby takes over at its next
        pass rather than after the lease lapses."""
        with Session(self.engine) as s:
            s.exec(
                update(LeaseRow)
                .where(col(LeaseRow.name) == self.name, col(LeaseRow.holder) == self.holder)
                .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
            )
            s.commit()
        self.epoch = self._until = None
