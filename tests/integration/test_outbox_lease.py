"""Replicas of one agency's service share its outbox, and one relay publishes at a time: the
lease, on SQLite and on PostgreSQL. Time is given, never slept."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from services.backbone.database import engine_for
from services.backbone.lease import Lease
from services.outbox.store import OutboxStore

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
TTL = timedelta(seconds=15)


def _two(url: str) -> tuple[Lease, Lease]:
    OutboxStore(url).create_schema()
    return (
        Lease(engine_for(url), name="source.la-northshire", ttl=TTL, holder="a"),
        Lease(engine_for(url), name="source.la-northshire", ttl=TTL, holder="b"),
    )


def test_one_holds_until_it_lapses_and_the_taker_raises_the_epoch(database_url: str) -> None:
    a, b = _two(database_url)
    assert a.hold(T0) and a.epoch == 1
    assert not b.hold(T0 + timedelta(seconds=1)) and b.epoch is None
    assert a.hold(T0 + timedelta(seconds=10))  # renewed: lasts to 0:25
    assert not b.hold(T0 + timedelta(seconds=20))
    assert b.hold(T0 + timedelta(seconds=26)) and b.epoch == 2  # a hung: b takes over
    assert not a.hold(T0 + timedelta(seconds=27)) and a.epoch is None  # a learns it lost


def test_a_released_lease_is_taken_at_once(database_url: str) -> None:
    a, b = _two(database_url)
    assert a.hold(T0)
    a.release()
    assert b.hold(T0 + timedelta(seconds=1)) and b.epoch == 2


def test_replicas_racing_for_a_new_lease_get_one_holder(database_url: str) -> None:
    OutboxStore(database_url).create_schema()
    leases = [
        Lease(engine_for(database_url), name="source.x", ttl=TTL, holder=f"r{i}") for i in range(6)
    ]
    gate, held = threading.Barrier(len(leases)), []

    def take(lease: Lease) -> None:
        gate.wait()
        if lease.hold(T0):
            held.append(lease.holder)

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(held) == 1


def test_work_that_takes_a_while_gets_the_lease_renewed_for_it_first(database_url: str) -> None:
    a, b = _two(database_url)
    assert a.hold(T0)  # until 0:15
    push = timedelta(seconds=12)
    # At 0:05, 10 s are left: too few for a 12 s push, so the lease is renewed (to 0:20) ...
    assert a.held(T0 + timedelta(seconds=5), push)
    # ... and the standby cannot take it before the push could have ended.
    assert not b.hold(T0 + timedelta(seconds=5) + push)
    assert not a.held(T0 + timedelta(seconds=6), TTL)  # work longer than a lease: refused
