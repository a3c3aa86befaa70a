"""Replicas of one agency's service share its outbox, and one relay publishes at a time: the
lease, on SQLite and on PostgreSQL. Time is given, never slept: one clock stands for the
database's, which judges who holds the lease; each holder counts its own time from when it
asked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from sqlmodel import Session

from services.backbone import lease as lease_module
from services.backbone.database import engine_for
from services.backbone.lease import Lease
from services.outbox.store import OutboxStore

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


class Time:
    """The database's clock and the replicas' elapsed time, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)

    def database(self, _session: Session) -> datetime:
        return self.now

    def elapsed(self) -> float:
        return (self.now - T0).total_seconds()


def _lease(url: str, holder: str, time: Time, name: str = "source.la-northshire") -> Lease:
    return Lease(
        engine_for(url),
        name=name,
        ttl=TTL,
        holder=holder,
        clock=time.database,
        monotonic=time.elapsed,
    )


def _two(url: str) -> tuple[Lease, Lease, Time]:
    OutboxStore(url).create_schema()
    time = Time()
    return _lease(url, "a", time), _lease(url, "b", time), time


def test_one_holds_until_it_lapses_and_the_taker_raises_the_epoch(database_url: str) -> None:
    a, b, time = _two(database_url)
    assert a.hold() and a.epoch == 1
    time.at(1)
    assert not b.hold() and b.epoch is None
    time.at(10)
    assert a.hold()  # renewed: lasts to 0:25
    time.at(20)
    assert not b.hold()
    time.at(26)
    assert b.hold() and b.epoch == 2  # a hung: b takes over
    time.at(27)
    assert not a.hold() and a.epoch is None  # a learns it lost


def test_a_released_lease_is_taken_at_once(database_url: str) -> None:
    a, b, time = _two(database_url)
    assert a.hold()
    a.release()
    time.at(1)
    assert b.hold() and b.epoch == 2


def test_replicas_racing_for_a_new_lease_get_one_holder(database_url: str) -> None:
    OutboxStore(database_url).create_schema()
    time = Time()
    leases = [_lease(database_url, f"r{i}", time, name="source.x") for i in range(6)]
    gate, held = threading.Barrier(len(leases)), []

    def take(lease: Lease) -> None:
        gate.wait()
        if lease.hold():
            held.append(lease.holder)

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 1


def test_work_that_takes_a_while_gets_the_lease_renewed_for_it_first(database_url: str) -> None:
    a, b, time = _two(database_url)
    assert a.hold()  # until 0:15
    push = timedelta(seconds=12)
    # At 0:05, 10 s are left: too few for a 12 s push, so the lease is renewed (to 0:20) ...
    time.at(5)
    assert a.held(push)
    # ... and the standby cannot take it before the push could have ended.
    time.at(5 + push.total_seconds())
    assert not b.hold()
    time.at(6)
    assert not a.held(TTL)  # work longer than a lease: refused


def test_surely_held_answers_from_memory_and_says_no_when_only_the_database_can_tell(
    database_url: str,
) -> None:
    a, _, time = _two(database_url)
    push = timedelta(seconds=5)
    assert not a.surely_held(push)  # never held
    assert a.hold()  # until 0:15
    a.engine.dispose()
    a.engine = None  # type: ignore[assignment]  # any database call now fails
    time.at(2)
    assert a.surely_held(timedelta(seconds=12))  # 13 s left: a 12 s push fits
    time.at(4)
    assert not a.surely_held(timedelta(seconds=12))  # 11 s left: it would not
    time.at(7)
    assert a.surely_held() and a.surely_held(push)  # 8 s left: more than half, and the push
    time.at(8)
    assert not a.surely_held()  # less than half left: a renewal is due


def test_the_holder_renews_before_the_database_would_let_it_lapse(database_url: str) -> None:
    a, b, time = _two(database_url)
    assert a.hold()
    time.at(7)
    assert a.held()  # more than half the lease left by its own count: no write
    time.at(8)
    assert a.held()  # less than half: renewed, to 0:23
    time.at(22)
    assert not b.hold()


def test_a_replica_whose_clock_runs_ahead_takes_no_lease_on_postgresql(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the database's clock judges, so a replica whose machine's clock runs an
    hour ahead still sees the lease held. (On SQLite, one machine, its clock is the one: the
    same skew lets it through, which shows the skew is real.)"""
    OutboxStore(database_url).create_schema()
    engine = engine_for(database_url)
    a, b = Lease(engine, name="source.clock", holder="a"), Lease(engine, name="source.clock")
    assert a.hold()

    class Ahead(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Ahead:
            moved = datetime.now(tz) + timedelta(hours=1)
            return cls.fromtimestamp(moved.timestamp(), tz)

    monkeypatch.setattr(lease_module, "datetime", Ahead)
    on_postgresql = database_url.startswith("postgresql")
    assert b.hold() is not on_postgresql
