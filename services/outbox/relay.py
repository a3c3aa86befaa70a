"""The outbox relay: publish one agency's accepted records to its source topic in the order
they were accepted, and mark each one published when the broker has acknowledged it.

- **Kafka away.** The producer keeps what it was given and retries it; the relay waits for
  it rather than send anything again (that would publish it twice), says meanwhile that
  Kafka cannot be reached, and requests are still accepted. The backlog shows in health.
- **Order.** Records are marked published only up to the first one not acknowledged; the
  rest of the batch is sent again. A record sent twice that way keeps its event id, and the
  processor suppresses (and audits) the copy.
- **Refused for good** (a non-retriable broker error such as an authorisation failure):
  the record goes to ``dlq.outbox`` with why, is audited, and is not sent again.
- **Database trouble** is logged and retried with back-off; it never stops the service.
- **Replicas.** With a lease (services/backbone/lease.py), only the relay holding it
  publishes; the others stand by and take over when it lapses. A holder that hangs past its
  lease may overlap its successor for one batch: the copies keep their event ids, and the
  processor suppresses (and audits) them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    UnknownProducerId,
)
from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError

from services.backbone import telemetry
from services.backbone.lease import Lease
from services.outbox import deadletter
from services.outbox.store import OutboxStore, Pending

log = logging.getLogger(__name__)
tracer = trace.get_tracer("infoshare.outbox")
# Errors of the producer's own state, not of a record: cured by a new producer.
_PRODUCER_STATE = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)


@dataclass(frozen=True)
class RelayTopics:
    source: str  # the agency's source topic: the only one this relay publishes to
    dlq: str
    audit: str


class OutboxRelay:
    def __init__(
        self,
        store: OutboxStore,
        *,
        agency: str,
        topics: RelayTopics,
        producer: Callable[[], AIOKafkaProducer],
        batch_size: int = 500,
        poll_s: float = 1.0,
        max_backoff_s: float = 5.0,
        stall_s: float = 5.0,
        gather_s: float = 0.005,
        lease: Lease | None = None,
    ) -> None:
        self.store = store
        self.agency = agency
        self.topics = topics
        self._new_producer = producer
        self._producer: AIOKafkaProducer | None = None
        self.batch_size = batch_size
        self.poll_s = poll_s  # also picks up what an earlier run accepted
        self.max_backoff_s = max_backoff_s
        self.stall_s = stall_s  # unacknowledged this long: Kafka is reported unreachable
        # Woken by an accept, wait this long before a pass, so that one pass takes the
        # records of many requests (not one pass, one query and one commit per request).
        self.gather_s = gather_s
        self.wake = asyncio.Event()
        self.connected = False
        self.published = 0
        self.lease = lease
        self.standing_by = False  # another replica's relay holds the lease
        # The broker refused a produce batch for good: which of its records was at fault
        # is not said (a batch over max.message.bytes fails every record in it), so the
        # next pass sends one record alone, and only a record refused alone is
        # dead-lettered.
        self._alone = False

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        try:
            while not stop.is_set():
                self.wake.clear()  # before looking, so that an accept meanwhile wakes us
                try:
                    if not await self._hold_lease():
                        await _wait(stop, self.poll_s)
                        continue
                    sent = await self._relay_once(stop)
                except (KafkaError, SQLAlchemyError) as exc:
                    self.connected = self.connected and isinstance(exc, SQLAlchemyError)
                    # The type only: an error's text may quote a record.
                    log.warning("outbox relay: %s; retrying", type(exc).__name__)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
                    continue
                backoff = 0.1
                if sent == 0:
                    await _wait_any(stop, self.wake, self.poll_s)
                if sent < self.batch_size:  # a full batch: more wait already
                    await _wait(stop, self.gather_s)
        finally:
            await self._close_producer()
            if self.lease is not None and self.lease.epoch is not None:
                with contextlib.suppress(SQLAlchemyError):
                    await asyncio.to_thread(self.lease.release)

    async def _hold_lease(self) -> bool:
        """Whether this relay may publish now (always, without a lease)."""
        if self.lease is None:
            return True
        held = await asyncio.to_thread(self.lease.held)
        if not held and not self.standing_by:
            await self._close_producer()
            log.info("outbox relay: another replica holds the lease; standing by")
        elif held and self.standing_by:
            log.info("outbox relay: took the lease (epoch %s); publishing", self.lease.epoch)
        self.standing_by = not held
        return held

    async def _relay_once(self, stop: asyncio.Event) -> int:
        limit = 1 if self._alone else self.batch_size
        batch = await asyncio.to_thread(self.store.pending, self.topics.source, limit)
        self._alone = False
        if not batch:
            return 0
        producer = await self._started_producer()
        futures: list[asyncio.Future[object]] = []
        refused: KafkaError | None = None
        for p in batch:  # the idempotent producer keeps their order per partition
            sent = telemetry.end_when_sent(tracer, p.topic, p.headers)
            try:
                future = await producer.send(p.topic, p.value, key=p.key, headers=p.headers)
            except KafkaError as exc:  # refused before it left (too large?), or no metadata
                sent(exc)
                refused = exc
                break
            except BaseException as exc:  # stopping: the span ends all the same
                sent(exc)
                raise
            future.add_done_callback(sent)
            futures.append(future)
        if futures:
            if not await self._settled(futures, stop):
                # Stopping, or the lease lost: what is unacknowledged stays pending, and is
                # sent again after a restart, or by the lease's new holder.
                return 0
            if not await self._settle(producer, batch[: len(futures)], futures):
                return len(futures)
        if refused is not None:
            if getattr(refused, "retriable", True):
                raise refused
            await self._dead_letter(producer, batch[len(futures)], type(refused).__name__)
        return len(futures)

    async def _settled(
        self, futures: Sequence[asyncio.Future[object]], stop: asyncio.Event
    ) -> bool:
        """Wait until the broker answered for every record (True), or we are stopping, or
        (False) lost the lease meanwhile. While Kafka keeps us waiting the lease is renewed,
        so that an outage longer than the lease does not hand the outbox to a standby."""
        pending = set(futures)
        while pending and not stop.is_set():
            _done, pending = await asyncio.wait(pending, timeout=self.stall_s)
            if pending:
                self.connected = False
                if not await self._hold_lease():  # taken over: its holder sends them again
                    break
        for future in pending:  # abandoned: their outcome is not ours to read any more
            future.add_done_callback(_discard)
        return not pending

    async def _settle(
        self,
        producer: AIOKafkaProducer,
        batch: Sequence[Pending],
        futures: Sequence[asyncio.Future[object]],
    ) -> bool:
        """Mark published what was acknowledged before the first failure (True if all
        was); dead-letter a record refused for good; raise a retriable error so the rest
        is sent again, in order."""
        done: list[int] = []
        for i, (p, f) in enumerate(zip(batch, futures, strict=True)):
            error = f.exception()
            if error is None:
                done.append(p.seq)
                continue
            for later in futures[i + 1 :]:
                later.exception()  # retrieved: they are sent again, in order
            await asyncio.to_thread(self.store.mark_published, done, now=datetime.now(UTC))
            self.published += len(done)
            if getattr(error, "retriable", True) or isinstance(error, _PRODUCER_STATE):
                # A broken sequence follows a refused record on its partition: a producer
                # with a new id starts the partition afresh, nothing is dead-lettered for it.
                await self._close_producer()
                raise error
            if len(batch) > 1:
                self._alone = True  # this one alone next, to learn whether it is at fault
            else:
                await self._dead_letter(producer, p, type(error).__name__)
            await self._close_producer()  # the refused record left its partition's sequence
            return False  # the records after it are sent again, in order, on the next pass
        await asyncio.to_thread(self.store.mark_published, done, now=datetime.now(UTC))
        self.published += len(done)
        self.connected = True
        return True

    async def _dead_letter(self, producer: AIOKafkaProducer, p: Pending, failure: str) -> None:
        now = datetime.now(UTC)
        key, value, headers = deadletter.dlq_record(p, failure)
        audit = deadletter.refused_audit(
            p, failure=failure, agency=self.agency, now=now, dlq_topic=self.topics.dlq
        )
        try:
            await producer.send_and_wait(self.topics.dlq, value, key=key, headers=headers)
        except KafkaError:  # the dead letter refused too (its size?): keep why, not what
            await producer.send_and_wait(self.topics.dlq, None, key=key, headers=headers)
        await producer.send_and_wait(
            self.topics.audit, audit.model_dump_json().encode(), key=(p.key or b"")
        )
        await asyncio.to_thread(self.store.mark_failed, p.seq, failure=failure, now=now)
        log.error("outbox relay: a record was refused for good (%s); dead-lettered", failure)

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


def _discard(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()
