"""A broker refuses a whole produce batch when it is larger than the topic allows
(``max.message.bytes``), failing every record in it with the same error. The relay must not
dead-letter the small records that happened to share a batch with a large one: it sends
the first refused record again alone, and dead-letters only a record refused alone.

The broker here is a stand-in producer that refuses, as Kafka does, any group of records
sent together whose size passes a limit: a real broker's batching cannot be made to put
two given records in one batch on demand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from services.outbox.relay import OutboxRelay, RelayTopics
from services.outbox.store import OutboxStore, Record

TOPICS = RelayTopics(source="source.la-northshire", dlq="dlq.outbox", audit="audit.decisions")
LIMIT = 1500


class Batching:
    """Records sent in one go form one batch, answered on the next turn of the loop."""

    def __init__(self) -> None:
        self.group: list[tuple[bytes, asyncio.Future[object]]] = []
        self.published: list[bytes] = []
        self.side: list[str] = []  # topics of dead letters and audit records
        self.settled = asyncio.Event()  # every record published or dead-lettered

    async def start(self) -> None:
        return None

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[object]:
        future = asyncio.get_running_loop().create_future()
        if not self.group:
            asyncio.get_running_loop().call_soon(self._answer)
        self.group.append((value, future))
        return future

    def _answer(self) -> None:
        group, self.group = self.group, []
        too_large = sum(len(v) for v, _ in group) > LIMIT
        for value, future in group:
            if too_large:
                future.set_exception(MessageSizeTooLargeError())
            else:
                self.published.append(value)
                future.set_result(None)
        self._check()

    def _check(self) -> None:
        if len(self.published) == 3 and len(self.side) == 2:
            self.settled.set()

    async def send_and_wait(self, topic: str, value: bytes | None, **_: Any) -> None:
        self.side.append(topic)
        self._check()

    async def stop(self) -> None:
        return None


async def test_only_the_record_too_large_alone_is_dead_lettered(tmp_path: Path) -> None:
    store = OutboxStore(f"sqlite:///{tmp_path / 'outbox.db'}")
    store.create_schema()
    values = [b"small-1", b"x" * 2000, b"small-2", b"small-3"]
    for n, value in enumerate(values):
        store.accept(
            agency="la-northshire",
            key_id="k1",
            idempotency_key=None,
            fingerprint=f"f{n}",
            records=[Record(f"e{n}", "t", TOPICS.source, b"k", value, ())],
            response={},
            now=datetime.now(UTC),
        )
    producer = Batching()
    relay = OutboxRelay(
        store,
        agency="la-northshire",
        topics=TOPICS,
        producer=lambda: cast(AIOKafkaProducer, producer),
        poll_s=0.05,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.wait_for(producer.settled.wait(), 10)
    stop.set()
    await task

    backlog = store.backlog(TOPICS.source)
    assert (backlog.pending, backlog.failed) == (0, 1)
    assert producer.published == [b"small-1", b"small-2", b"small-3"]
    assert producer.side == [TOPICS.dlq, TOPICS.audit]
