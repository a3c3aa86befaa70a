"""While Kafka keeps the relay waiting for acknowledgements, the relay keeps renewing its
lease, so an outage longer than a lease does not hand the outbox to a standby (which would
publish the same records beside it); and a relay whose lease was taken over stops waiting
and leaves the records to the new holder.

The broker here is a stand-in producer that accepts records and never acknowledges them:
the one behaviour of a broker gone silent that a test cannot get from a real one without
stopping it for everyone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaProducer

from services.backbone.lease import Lease
from services.outbox.relay import OutboxRelay, RelayTopics
from services.outbox.store import OutboxStore, Record

TOPICS = RelayTopics(source="source.la-northshire", dlq="dlq.outbox", audit="audit.decisions")


class Silent:
    """A producer whose broker took the records and went quiet."""

    def __init__(self) -> None:
        self.sent = 0
        self.first = asyncio.Event()
        self.stopped = asyncio.Event()

    async def start(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[object]:
        self.sent += 1
        self.first.set()
        return asyncio.get_running_loop().create_future()

    async def stop(self) -> None:
        self.stopped.set()


def _store(tmp_path: Path) -> OutboxStore:
    store = OutboxStore(f"sqlite:///{tmp_path / 'outbox.db'}")
    store.create_schema()
    store.accept(
        agency="la-northshire",
        key_id="k1",
        idempotency_key=None,
        fingerprint="f",
        records=[Record("e1", "t", TOPICS.source, b"k", b"{}", ())],
        response={},
        now=datetime.now(UTC),
    )
    return store


TTL = timedelta(seconds=0.6)


async def _relay_waiting(
    store: OutboxStore, producer: Silent
) -> tuple[OutboxRelay, Lease, asyncio.Task[None]]:
    """A relay holding the lease, its record sent and not acknowledged."""
    mine = Lease(store.engine, name=TOPICS.source, ttl=TTL, holder="mine")
    relay = OutboxRelay(
        store,
        agency="la-northshire",
        topics=TOPICS,
        producer=lambda: cast(AIOKafkaProducer, producer),
        stall_s=0.1,
        lease=mine,
    )
    task = asyncio.create_task(relay.run(asyncio.Event()))
    await asyncio.wait_for(producer.first.wait(), 10)
    return relay, mine, task


async def test_a_relay_waiting_on_a_silent_broker_keeps_its_lease(tmp_path: Path) -> None:
    store, producer = _store(tmp_path), Silent()
    _relay, _mine, task = await _relay_waiting(store, producer)
    standby = Lease(store.engine, name=TOPICS.source, ttl=TTL, holder="standby")
    deadline = asyncio.get_running_loop().time() + 4 * TTL.total_seconds()
    while asyncio.get_running_loop().time() < deadline:  # several lease lengths
        assert not await asyncio.to_thread(standby.hold)
        await asyncio.sleep(0.05)
    assert not task.done() and producer.sent == 1  # still waiting, nothing sent twice
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_relay_that_lost_its_lease_stops_waiting_and_stands_by(tmp_path: Path) -> None:
    store, producer = _store(tmp_path), Silent()
    relay, mine, task = await _relay_waiting(store, producer)
    # Another replica takes the lease (as after this one hung past it).
    taker = Lease(store.engine, name=TOPICS.source, ttl=timedelta(minutes=5), holder="taker")
    mine.release()
    assert await asyncio.to_thread(taker.hold)
    await asyncio.wait_for(producer.stopped.wait(), 10)  # it closes its producer, and ...
    assert relay.standing_by and producer.sent == 1  # ... stands by
    assert [p.seq for p in store.pending(TOPICS.source, 10)]  # left for the new holder
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
