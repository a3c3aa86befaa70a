"""The transactional stream loop: one Kafka transaction per batch holds the deliveries, the
audit records, the state changes and the consumer offsets, so each input is decided
exactly once as far as every read_committed reader can tell.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import ChainMap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from opentelemetry import trace

from consent.core.state import ProtectionPlan
from consent.processor.consents import ConsentView
from consent.processor.handle import PLAN_STATE, Context, handle
from consent.processor.records import InRecord
from services.backbone import kafka, telemetry

log = logging.getLogger(__name__)
tracer = trace.get_tracer("infoshare.processor")


@dataclass(frozen=True)
class LoopConfig:
    bootstrap: str
    group_id: str
    transactional_id: str
    source_topics: Sequence[str]
    batch_max: int = 500


class Processor:
    def __init__(
        self,
        config: LoopConfig,
        ctx: Context,
        *,
        reload: Callable[[Context], Context | None] | None = None,
        reload_every: float = 2.0,
    ) -> None:
        self.config = config
        self.ctx = ctx
        self.reload = reload
        self.reload_every = reload_every
        self._next_reload = 0.0
        self.plans: dict[str, ProtectionPlan] = {}
        self.processed = 0
        # Set once state matches the current assignment. aiokafka may fetch (and getmany
        # return) records while the rebalance listener is still restoring, so the loop waits.
        self.state_ready = asyncio.Event()
        self.restore_failed: BaseException | None = None
        self.consents = ConsentView(topic=ctx.topics.consent_records, bootstrap=config.bootstrap)

    async def restore_state(self) -> int:
        """Rebuild plan state from the compacted changelog, read to its end; return how many
        subjects hold plans. Runs on every partition assignment, so an instance that takes
        over partitions never decides on stale state."""
        plans: dict[str, ProtectionPlan] = {}
        topic = self.ctx.topics.state(PLAN_STATE)
        # No group: a group-less subscription is assigned every partition of the topic.
        reader = kafka.consumer(topic, bootstrap=self.config.bootstrap, group_id=None)
        await reader.start()
        try:
            partitions = list(reader.assignment())
            if not partitions:
                raise RuntimeError(f"state topic {topic} has no partitions")
            ends = await reader.end_offsets(partitions)
            pending = {tp for tp in partitions if ends[tp] > 0}
            while pending:
                batch = await reader.getmany(*pending, timeout_ms=1000)
                for records in batch.values():
                    for rec in records:
                        _apply_state(plans, rec)
                for tp in list(pending):
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
        finally:
            await reader.stop()
        self.plans = plans
        return len(plans)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = kafka.consumer(bootstrap=self.config.bootstrap, group_id=self.config.group_id)
        consumer.subscribe(list(self.config.source_topics), listener=_RestoreOnAssign(self))
        producer = kafka.producer(
            self.config.bootstrap, transactional_id=self.config.transactional_id
        )
        await producer.start()
        await self.consents.start()
        await consumer.start()
        log.info("processing %s", ", ".join(self.config.source_topics))
        try:
            while not stop.is_set():
                self._maybe_reload()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.config.batch_max)
                if batch:
                    await self.state_ready.wait()
                    if self.restore_failed is not None:
                        raise RuntimeError("cannot restore plan state") from self.restore_failed
                    # Consent first: a withdrawal committed before this batch applies to it.
                    await self.consents.catch_up()
                    await self._process_batch(batch, producer)
        finally:
            await consumer.stop()
            await self.consents.stop()
            await producer.stop()

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
        self, batch: dict[TopicPartition, list[ConsumerRecord]], producer: AIOKafkaProducer
    ) -> None:
        pending: dict[str, ProtectionPlan | None] = {}
        view: ChainMap[str, ProtectionPlan | None] = ChainMap(pending, self.plans)  # type: ignore[arg-type]
        offsets: dict[TopicPartition, int] = {}
        sent: list[asyncio.Future[object]] = []
        async with producer.transaction():
            for tp, records in batch.items():
                for rec in records:
                    await self._process_one(rec, view, pending, producer, sent)
                offsets[tp] = records[-1].offset + 1
            # aiokafka does not fail a transaction when the broker refuses one of its records
            # (too large, not authorised): wait for every send, so a refusal aborts the batch.
            await asyncio.gather(*sent)
            await producer.send_offsets_to_transaction(offsets, self.config.group_id)
        # Only what Kafka committed becomes state: an aborted batch raises above and the
        # process restarts from the changelog and the committed offsets.
        for key, plan in pending.items():
            if plan is None:
                self.plans.pop(key, None)
            else:
                self.plans[key] = plan
        self.processed += sum(len(r) for r in batch.values())

    async def _process_one(
        self,
        rec: ConsumerRecord,
        view: ChainMap[str, ProtectionPlan | None],
        pending: dict[str, ProtectionPlan | None],
        producer: AIOKafkaProducer,
        sent: list[asyncio.Future[object]],
    ) -> None:
        headers = list(rec.headers or ())
        parent = telemetry.extract_context(headers)
        with tracer.start_as_current_span(
            f"process {rec.topic}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": rec.topic,
                "messaging.destination.partition.id": str(rec.partition),
                "messaging.kafka.offset": rec.offset,
            },
        ) as span:
            here = span.get_span_context()
            handled = handle(
                InRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value, headers),
                self.ctx,
                view,
                telemetry.current_trace_id(),
                lambda: telemetry.new_trace_headers("deliver", link_to=here),
                self.consents.by_subject,
            )
            span.set_attribute("infoshare.decisions", len(handled.decisions))
            if handled.dead_letter_reason:
                span.set_attribute("infoshare.dead_lettered", True)
                log.warning("dead-lettered %s[%d]@%d", rec.topic, rec.partition, rec.offset)
            for out in handled.records:
                sent.append(
                    await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                )
            pending.update(handled.state_changes)


class _RestoreOnAssign(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: object) -> None:
        """Nothing to flush (every batch commits in its own transaction); state is stale
        from here until the next assignment has restored it."""
        self.processor.state_ready.clear()

    async def on_partitions_assigned(self, assigned: object) -> None:
        try:
            restored = await self.processor.restore_state()
        except Exception as exc:
            # aiokafka would only log a listener's error; the loop must stop instead.
            self.processor.restore_failed = exc
            raise
        finally:
            self.processor.state_ready.set()
        log.info("partitions assigned; restored %d active protection plans", restored)


def _apply_state(plans: dict[str, ProtectionPlan], rec: ConsumerRecord) -> None:
    key = rec.key.decode()
    if rec.value is None:
        plans.pop(key, None)
    else:
        plans[key] = ProtectionPlan.from_json(orjson.loads(rec.value))
