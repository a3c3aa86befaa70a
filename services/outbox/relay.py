"""The outbox relay: publish accepted records to Kafka in the order they were accepted, and
mark each one published when the broker has acknowledged it.

While Kafka is down the relay waits and tries again (backing off up to
``max_backoff_s``); requests are still accepted meanwhile, and the backlog shows in the
service's health. Delivery to Kafka is at least once: a record whose acknowledgement was
lost in a crash is sent again after the restart, with the same event id, and the processor
suppresses (and audits) the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.outbox.store import OutboxStore, Pending

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        *,
        producer: Callable[[], AIOKafkaProducer],
        batch_size: int = 500,
        poll_s: float = 1.0,
        max_backoff_s: float = 5.0,
        stall_s: float = 5.0,
    ) -> None:
        self.store = store
        self._new_producer = producer
        self._producer: AIOKafkaProducer | None = None
        self.batch_size = batch_size
        self.poll_s = poll_s  # also picks up what another process or an earlier run accepted
        self.max_backoff_s = max_backoff_s
        self.stall_s = stall_s  # unacknowledged this long: Kafka is reported unreachable
        self.wake = asyncio.Event()
        self.connected = False
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        try:
            while not stop.is_set():
                self.wake.clear()  # before looking, so that an accept meanwhile wakes us
                try:
                    sent = await self._relay_once(stop)
                except KafkaError as exc:
                    self.connected = False
                    # The type only: a Kafka error may quote a record.
                    log.warning(
                        "outbox relay: Kafka unavailable (%s); retrying", type(exc).__name__
                    )
                    await self._close_producer()
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                backoff = 0.1
                if sent == 0:
                    await _wait_any(stop, self.wake, self.poll_s)
        finally:
            await self._close_producer()

    async def _relay_once(self, stop: asyncio.Event) -> int:
        batch = await asyncio.to_thread(self.store.pending, self.batch_size)
        if not batch:
            return 0
        producer = await self._started_producer()
        # Send the whole batch, then wait: the idempotent producer keeps their order per
        # partition. Each record is marked published only once the broker has taken it.
        futures = [await _send(producer, p) for p in batch]
        # While the broker is away the producer keeps these records and retries them; we
        # wait for it rather than send them again (which would publish them twice), and say
        # meanwhile that Kafka cannot be reached.
        pending: set[asyncio.Future[object]] = set(futures)
        while pending and not stop.is_set():
            _done, pending = await asyncio.wait(pending, timeout=self.stall_s)
            if pending:
                self.connected = False
        if pending:  # stopping: what is unacknowledged is sent again after the restart
            return 0
        failed = [f.exception() for f in futures if f.exception() is not None]
        done = [p.seq for p, f in zip(batch, futures, strict=True) if f.exception() is None]
        await asyncio.to_thread(self.store.mark_published, done, now=datetime.now(UTC))
        self.published += len(done)
        if failed:
            raise failed[0]  # type: ignore[misc]
        self.connected = True
        return len(done)

    async def _started_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._new_producer()
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            # stop() waits for what the producer still holds; the broker may be gone.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), self.stall_s)


async def _send(producer: AIOKafkaProducer, p: Pending) -> asyncio.Future[object]:
    future: asyncio.Future[object] = await producer.send(
        p.topic, p.value, key=p.key, headers=p.headers
    )
    return future


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
