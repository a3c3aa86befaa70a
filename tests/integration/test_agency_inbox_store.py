"""An agency's inbox is kept in its service's database: numbered in arrival order, each
delivery once, with the offsets it was read up to; the same after a restart, and as large
as the topic (no window in memory). On SQLite and on PostgreSQL."""

from __future__ import annotations

import threading

from services.agency.inbox_store import Inbox, acceptable
from services.backbone.database import engine_for
from services.backbone.envelope import CloudEvent

TOPIC = "deliver.la-northshire"


def _event(n: int) -> CloudEvent:
    return CloudEvent(
        type="health.unscheduled_care.attendance",
        source="/agencies/nhs-riverside-ed",
        data={"attendance": {"sequence": n}},
        key=f"k{n % 3}",
    )


def test_numbers_offsets_and_copies_survive_a_restart(database_url: str) -> None:
    inbox = Inbox(engine_for(database_url), TOPIC)
    inbox.create_schema()
    first = [_event(n) for n in range(3)]
    assert inbox.add(first, {0: 2, 1: 1}) == 3
    assert inbox.add([first[1], _event(3)], {1: 3}) == 1  # a copy read again is kept once
    assert inbox.add([], {0: 1}) == 0  # offsets never go back
    again = Inbox(engine_for(database_url), TOPIC)  # the service restarted
    items = again.after(0, 10)
    assert [i.event_id for i in items] == [e.id for e in first] + [items[3].event_id]
    assert [i.number for i in items] == sorted(i.number for i in items)
    assert again.offsets() == {0: 2, 1: 3}
    assert again.count() == 4
    assert [i.event_id for i in again.after(items[1].number, 1)] == [first[2].id]
    assert Inbox(engine_for(database_url), "deliver.other").after(0, 10) == []


def test_there_is_no_window(database_url: str) -> None:
    inbox = Inbox(engine_for(database_url), TOPIC)
    inbox.create_schema()
    for start in range(0, 12_000, 1000):
        inbox.add([_event(n) for n in range(start, start + 1000)], {0: start + 1000})
    assert inbox.count() == 12_000  # the in-memory inbox kept the last 10,000
    assert inbox.after(0, 1)[0].data == {"attendance": {"sequence": 0}}


def test_two_replicas_storing_the_same_batch_at_once_store_it_once(database_url: str) -> None:
    """One whose lease lapsed mid-batch and its successor: neither fails, nothing twice."""
    engine = engine_for(database_url)
    Inbox(engine, TOPIC).create_schema()
    batch = [_event(n) for n in range(50)]
    gate, added = threading.Barrier(2), []

    def store(partition_offset: int) -> None:
        inbox = Inbox(engine_for(database_url), TOPIC)
        gate.wait()
        added.append(inbox.add(batch, {0: partition_offset}))

    threads = [threading.Thread(target=store, args=(o,)) for o in (50, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(added) == 50  # each event new to exactly one of them
    inbox = Inbox(engine, TOPIC)
    assert inbox.count() == 50
    assert inbox.offsets() == {0: 50}  # the further of the two


def test_a_delivery_longer_than_the_inbox_keeps_is_turned_away_by_name() -> None:
    long = CloudEvent(type="x" * 129, source="/agencies/nhs-riverside-ed", data={}, key="k")
    assert acceptable(TOPIC, long) == "type is longer than 128 characters"
    assert acceptable(TOPIC, _event(1)) is None
