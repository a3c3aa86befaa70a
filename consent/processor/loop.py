"""The transactional stream loop: one Kafka transaction per input partition per batch holds
the deliveries, the audit records, the state changes and the consumer offsets, so each
input is decided exactly once as far as every read_committed reader can tell.

Fencing and recovery, in short (docs/decisions.md has the long form):
- the transactional id names the input partition (see producers.py), so whoever holds
  partition N fences every earlier holder before it reads N's committed offset;
- a rebalance waits for the batch in flight to commit or fail, and a batch fetched across a
  rebalance is dropped and re-read from the committed offsets;
- any Kafka failure (fenced, commit timeout, broker gone) ends the session: producers and
  consumer are thrown away and a new session starts from the committed offsets, restoring
  state first. Nothing half-done survives, because nothing uncommitted is ever read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import context as otel_context
from opentelemetry import trace

from consent.core.state import ProtectionPlan
from consent.processor.dedup import Seen, forget_expired
from consent.processor.disclosed import Disclosed
from consent.processor.disclosed import forget_expired as forget_disclosed
from consent.processor.handle import Context, Handled, handle
from consent.processor.observe import ProcessorMetrics, delivery_headers, note_decisions
from consent.processor.producers import PartitionProducers, quietly
from consent.processor.rebalance import Rebalance, rewind
from consent.registry.view import ConsentView
from services.backbone import kafka, sampling, telemetry
from services.backbone.kafka_access import KafkaAccess
from services.backbone.metering import Metrics
from services.backbone.reading import read_table
from services.backbone.records import ReadRecord
from services.backbone.topics import DISCLOSED, PROTECTION_PLANS, SEEN_EVENTS

log = logging.getLogger(__name__)
tracer = trace.get_tracer("infoshare.processor")

RETRY_FIRST_S = 0.5
ABORT_WAIT_S = 5.0
RETRY_MAX_S = 30.0
GIVE_UP_AFTER = 40  # failed sessions without progress: about 18 minutes of back-off
EVICT_EVERY_S = 3600.0  # how often the duplicate memory forgets ids past the window


@dataclass(frozen=True)
class LoopConfig:
    access: KafkaAccess
    group_id: str
    transactional_prefix: str
    source_topics: Sequence[str]
    batch_max: int = 500
    transaction_timeout_ms: int = 60000


@dataclass
class _Pending:
    """What a partition's transaction changes, applied to memory only once it commits."""

    plans: dict[str, ProtectionPlan | None]
    seen: dict[str, Seen]
    disclosed: dict[str, Disclosed]
    handled: list[tuple[str, list[tuple[str, bytes | None]], Handled]]


class Processor:
    def __init__(
        self,
        config: LoopConfig,
        ctx: Context,
        *,
        reload: Callable[[Context], Context | None] | None = None,
        reload_every: float = 2.0,
        metrics: ProcessorMetrics | None = None,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.metrics = metrics or ProcessorMetrics(
            Metrics("infoshare-processor"),
            group=config.group_id,
            known_types=ctx.schemas.event_types,
        )
        self.seal = telemetry.TraceSeal.of(ctx.trace_seal)
        # Most records' traces are not recorded (sampling.py): under a sampler that follows
        # the parent, such a record gets no span of ours at all, which would be dropped.
        self.skip_unrecorded = sampling.follows_parent()
        self.reload = reload
        self.reload_every = reload_every
        self._next_reload = 0.0
        self._next_evict = time.monotonic() + EVICT_EVERY_S
        self.plans: dict[str, ProtectionPlan] = {}
        self.seen: dict[str, Seen] = {}
        self.disclosed: dict[str, Disclosed] = {}
        self.processed = 0
        self.sessions = 0
        # Set once state matches the current assignment; cleared on revocation.
        self.state_ready = asyncio.Event()
        self.restore_failed: BaseException | None = None
        # Bumped by every revocation and assignment: a batch fetched under another
        # generation may straddle a rebalance and is re-read instead.
        self.generation = 0
        # Held while a batch is decided and committed; a revocation waits for it.
        self.batch_lock = asyncio.Lock()
        self.consents = ConsentView(topic=ctx.topics.consent_records, access=config.access)

    def co_partitioned_topics(self) -> list[str]:
        """The topics whose partition N this processor reads or writes as one unit."""
        topics = self.ctx.topics
        return [
            *self.config.source_topics,
            topics.state(PROTECTION_PLANS),
            topics.state(SEEN_EVENTS),
            topics.state(DISCLOSED),
        ]

    async def restore_state(self, partitions: Iterable[int]) -> int:
        """Rebuild plan state, the duplicate memory and the memory of who received what
        (for recalls) of ``partitions`` from their changelogs; return how many subjects hold
        plans."""
        numbers = set(partitions)
        access, topics = self.config.access, self.ctx.topics
        plans = await read_table(
            access, topics.state(PROTECTION_PLANS), ProtectionPlan.from_bytes, partitions=numbers
        )
        seen = await read_table(
            access, topics.state(SEEN_EVENTS), Seen.from_bytes, partitions=numbers
        )
        disclosed = await read_table(
            access, topics.state(DISCLOSED), Disclosed.from_bytes, partitions=numbers
        )
        now = datetime.now(UTC)
        self.plans, self.seen = plans, forget_expired(seen, now)
        self.disclosed = forget_disclosed(disclosed, now)
        return len(plans)

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop``. A failed session is started again after a back-off; after
        ``GIVE_UP_AFTER`` failed sessions in a row without progress the error is raised, the
        process exits non-zero, and its supervisor (``infoshare up``, systemd, Kubernetes)
        decides what next, so a permanent fault is loud rather than retried forever."""
        delay = RETRY_FIRST_S
        fruitless = 0
        while not stop.is_set():
            before = self.processed
            try:
                await self._session(stop)
            except Exception as exc:
                fruitless = 0 if self.processed > before else fruitless + 1
                if fruitless == 0:
                    delay = RETRY_FIRST_S
                if fruitless >= GIVE_UP_AFTER:
                    log.error("%d sessions in a row made no progress; giving up", fruitless)
                    raise
                # Kafka's messages name topics and errors, never record values; others
                # might, so only their type is logged.
                detail = str(exc) if isinstance(exc, KafkaError | RestoreFailed) else ""
                log.warning(
                    "processing session ended by %s %s; starting again in %.1fs",
                    type(exc).__name__,
                    detail,
                    delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, RETRY_MAX_S)

    async def _session(self, stop: asyncio.Event) -> None:
        self.sessions += 1
        self.state_ready.clear()
        self.restore_failed = None
        consumer = kafka.consumer(access=self.config.access, group_id=self.config.group_id)
        producers = PartitionProducers(
            access=self.config.access,
            prefix=self.config.transactional_prefix,
            transaction_timeout_ms=self.config.transaction_timeout_ms,
        )
        consumer.subscribe(
            list(self.config.source_topics), listener=Rebalance(self, consumer, producers)
        )
        try:
            await self.consents.start()
            await consumer.start()
            self.metrics.lag.attach(consumer)
            log.info(
                "processing %s (session %d)", ", ".join(self.config.source_topics), self.sessions
            )
            while not stop.is_set():
                self._maybe_reload()
                generation = self.generation
                # Before the poll: the position then covers only what was processed (or
                # rewound), not a batch fetched and still to be decided.
                await self.metrics.lag.refresh()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.config.batch_max)
                if not batch:
                    continue
                await self._until_ready(stop)
                async with self.batch_lock:
                    if generation != self.generation or not self.state_ready.is_set():
                        await rewind(consumer, batch)
                        continue
                    # Consent first: a withdrawal committed before this batch applies to it.
                    await self.consents.catch_up()
                    await self._process_batch(batch, producers)
        finally:
            self.state_ready.clear()
            self.metrics.lag.attach(None)
            await quietly(consumer.stop())
            await quietly(self.consents.stop())
            await producers.close()

    async def _until_ready(self, stop: asyncio.Event) -> None:
        while not self.state_ready.is_set() and not stop.is_set():
            try:
                await asyncio.wait_for(self.state_ready.wait(), 1.0)
            except TimeoutError:
                continue
        if self.restore_failed is not None:
            raise RestoreFailed("cannot restore state") from self.restore_failed

    def _maybe_reload(self) -> None:
        """Between batches only: a batch is decided under one protocol set."""
        now = time.monotonic()
        if self.reload is None or now < self._next_reload:
            return
        self._next_reload = now + self.reload_every
        try:
            fresh = self.reload(self.ctx)
        except Exception as exc:
            log.error("protocol reload failed (%s); keeping the current set", type(exc).__name__)
            return
        if fresh is not None:
            self.ctx = fresh

    async def _process_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], producers: PartitionProducers
    ) -> None:
        """One transaction per input partition number, all in flight together: their
        children are disjoint, so they commit (or fail) independently, and their round trips
        to the broker overlap instead of adding up."""
        by_number: dict[int, dict[TopicPartition, list[ConsumerRecord]]] = {}
        for tp, records in batch.items():
            by_number.setdefault(tp.partition, {})[tp] = records
        outcomes = await asyncio.gather(
            *(self._partition(producers[n], part) for n, part in sorted(by_number.items())),
            return_exceptions=True,
        )
        if time.monotonic() >= self._next_evict:
            self._next_evict = time.monotonic() + EVICT_EVERY_S
            self.seen = forget_expired(self.seen, datetime.now(UTC))
            self.disclosed = forget_disclosed(self.disclosed, datetime.now(UTC))
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        if failed:
            raise failed[0]

    async def _partition(
        self, producer: AIOKafkaProducer, part: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        pending = _Pending({}, {}, {}, [])
        try:
            async with asyncio.timeout(self.config.transaction_timeout_ms / 1000):
                await self._transaction(producer, part, pending)
        except BaseException:
            # Best effort, briefly: an open transaction holds back every read_committed
            # reader of the partitions it wrote to until the broker's timeout. A fenced or
            # broken producer cannot abort; the next holder of its transactional id will.
            await quietly(producer.abort_transaction(), ABORT_WAIT_S)
            raise
        # Only what Kafka committed becomes state.
        for key, plan in pending.plans.items():
            if plan is None:
                self.plans.pop(key, None)
            else:
                self.plans[key] = plan
        self.seen.update(pending.seen)
        self.disclosed.update(pending.disclosed)
        self.processed += sum(len(records) for records in part.values())
        self.metrics.committed(pending.handled)

    async def _transaction(
        self,
        producer: AIOKafkaProducer,
        part: dict[TopicPartition, list[ConsumerRecord]],
        pending: _Pending,
    ) -> None:
        await producer.begin_transaction()
        sent: list[asyncio.Future[object]] = []
        offsets: dict[TopicPartition, int] = {}
        plans: ChainMap[str, ProtectionPlan | None] = ChainMap(pending.plans, self.plans)  # type: ignore[arg-type]
        seen: ChainMap[str, Seen] = ChainMap(pending.seen, self.seen)
        disclosed = ChainMap(pending.disclosed, self.disclosed)
        for tp, records in part.items():
            for rec in records:
                handled = self._decide(rec, plans, seen, disclosed)
                for out in handled.records:
                    sent.append(
                        await producer.send(
                            out.topic,
                            out.value,
                            key=out.key,
                            headers=out.headers,
                            partition=out.partition,
                        )
                    )
                pending.plans.update(handled.state_changes)
                pending.seen.update(handled.seen_changes)
                pending.disclosed.update(handled.disclosed_changes)
                pending.handled.append((rec.topic, list(rec.headers or ()), handled))
            offsets[tp] = records[-1].offset + 1
        # aiokafka does not fail a transaction when the broker refuses one of its records
        # (too large, not authorised): wait for every send, so a refusal fails the batch.
        await asyncio.gather(*sent)
        await producer.send_offsets_to_transaction(offsets, self.config.group_id)
        await producer.commit_transaction()

    def _decide(
        self,
        rec: ConsumerRecord,
        plans: ChainMap[str, ProtectionPlan | None],
        seen: ChainMap[str, Seen],
        disclosed: ChainMap[str, Disclosed],
    ) -> Handled:
        headers = list(rec.headers or ())
        parent = telemetry.extract_context(headers)
        if self.skip_unrecorded and sampling.unrecorded_parent(parent):
            token = otel_context.attach(parent)
            try:
                return self._handle(rec, headers, plans, seen, disclosed)
            finally:
                otel_context.detach(token)
        with telemetry.consumer_span(tracer, rec, context=parent) as span:
            handled = self._handle(rec, headers, plans, seen, disclosed)
            note_decisions(span, handled)
            return handled

    def _handle(
        self,
        rec: ConsumerRecord,
        headers: list[tuple[str, bytes]],
        plans: ChainMap[str, ProtectionPlan | None],
        seen: ChainMap[str, Seen],
        disclosed: ChainMap[str, Disclosed],
    ) -> Handled:
        """One record decided in the current trace context."""
        started = time.perf_counter()
        handled = handle(
            ReadRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value, headers),
            self.ctx,
            plans,
            telemetry.current_trace_id(),
            partial(delivery_headers, self.seal),
            self.consents.by_subject,
            seen,
            audit_trace=telemetry.inject_headers(),
            disclosed=disclosed,
        )
        self.metrics.decided(time.perf_counter() - started)
        if handled.dead_letter_reason:
            log.warning("dead-lettered %s[%d]@%d", rec.topic, rec.partition, rec.offset)
        return handled


class RestoreFailed(Exception):
    """State could not be rebuilt for the assigned partitions."""
