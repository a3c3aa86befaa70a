"""The transactional stream loop: one Kafka transaction per batch holds the deliveries, the
audit records, the state changes and the consumer offsets, so each input is decided
exactly once as far as every read_committed reader can tell.
"""

from __future__ import annotations

import asyncio
import logging
from collections import ChainMap
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry import trace

from consent.core.state import ProtectionPlan
from consent.processor.handle import PLAN_STATE, Context, InRecord, handle
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
    def __init__(self, config: LoopConfig, ctx: Context) -> None:
        self.config = config
        self.ctx = ctx
        self.plans: dict[str, ProtectionPlan] = {}
        self.processed = 0

    async def restore_state(self) -> int:
        """Read the compacted plan changelog to its end; return how many subjects hold plans."""
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
                        self._apply_state(rec)
                for tp in list(pending):
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
        finally:
            await reader.stop()
        return len(self.plans)

    def _apply_state(self, rec: ConsumerRecord) -> None:
        key = rec.key.decode()
        if rec.value is None:
            self.plans.pop(key, None)
        else:
            self.plans[key] = ProtectionPlan.from_json(orjson.loads(rec.value))

    async def run(self, stop: asyncio.Event) -> None:
        restored = await self.restore_state()
        log.info("restored %d active protection plans", restored)
        consumer = kafka.consumer(
            *self.config.source_topics,
            bootstrap=self.config.bootstrap,
            group_id=self.config.group_id,
        )
        producer = kafka.producer(
            self.config.bootstrap, transactional_id=self.config.transactional_id
        )
        await producer.start()
        await consumer.start()
        log.info("processing %s", ", ".join(self.config.source_topics))
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=self.config.batch_max)
                if batch:
                    await self._process_batch(batch, producer)
        finally:
            await consumer.stop()
            await producer.stop()

    async def _process_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], producer: AIOKafkaProducer
    ) -> None:
        pending: dict[str, ProtectionPlan | None] = {}
        view: ChainMap[str, ProtectionPlan | None] = ChainMap(pending, self.plans)  # type: ignore[arg-type]
        offsets: dict[TopicPartition, int] = {}
        async with producer.transaction():
            for tp, records in batch.items():
                for rec in records:
                    await self._process_one(rec, view, pending, producer)
                offsets[tp] = records[-1].offset + 1
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
            handled = handle(
                InRecord(rec.topic, rec.partition, rec.offset, rec.key, rec.value, headers),
                self.ctx,
                view,
                telemetry.current_trace_id(),
                telemetry.inject_headers(),
            )
            span.set_attribute("infoshare.decisions", len(handled.decisions))
            if handled.dead_letter_reason:
                span.set_attribute("infoshare.dead_lettered", True)
                log.warning("dead-lettered %s[%d]@%d", rec.topic, rec.partition, rec.offset)
            for out in handled.records:
                await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
            pending.update(handled.state_changes)
