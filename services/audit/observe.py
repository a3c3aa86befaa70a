"""What the audit service tells operators: records ingested, how long they took to reach
the store, dead letters, the age of the newest signed checkpoint and whether the trail last
verified; and the audit write as a span in each event's trace.

A batch holds records of many events: each event's trace gets one ``write audit`` span
(over the batch's database write) for the records of it in the batch. Counts and times
only: nothing a record says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation

from services.audit.prepared import Ready
from services.backbone import telemetry
from services.backbone.consumer_lag import ConsumerLag
from services.backbone.metering import LATENCY_BUCKETS, Metrics, dead_letter_counter

tracer = trace.get_tracer("infoshare.audit")
log = logging.getLogger(__name__)


class AuditTelemetry:
    def __init__(
        self, metrics: Metrics, *, group: str, checkpoint_age: Callable[[], float | None]
    ) -> None:
        self.metrics = metrics
        self.checkpoint_age = checkpoint_age
        self.verified: bool | None = None  # None until the first verification
        meter = metrics.meter("infoshare.audit")
        self.ingested = meter.create_counter(
            "infoshare.audit.records.ingested", description="Audit records stored"
        )
        self.delay = meter.create_histogram(
            "infoshare.audit.ingestion.delay",
            unit="s",
            description="From a decision recorded to its audit record stored",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.dead_lettered = dead_letter_counter(meter, "audit")
        self.failures = meter.create_counter(
            "infoshare.audit.verification.failures",
            description="Verifications of the trail that found it tampered with",
        )
        self.failures.add(0)
        meter.create_observable_gauge(
            "infoshare.audit.checkpoint.age",
            [self._age],
            unit="s",
            description="Age of the newest signed checkpoint",
        )
        meter.create_observable_gauge(
            "infoshare.audit.chain_verified",
            [self._verified],
            description="1 if the last verification found the trail intact, 0 if not",
        )
        self.lag = ConsumerLag(meter, group)

    def stored(self, batch: Sequence[tuple[ConsumerRecord, Ready]], *, started_ns: int) -> None:
        """After a batch is committed to the store: count it and end its spans. Never
        raises: what is stored is stored, whatever its telemetry makes of it."""
        try:
            self._stored(batch, started_ns)
        except Exception as exc:
            log.error("audit telemetry failed (%s); ingestion goes on", type(exc).__name__)

    def _stored(self, batch: Sequence[tuple[ConsumerRecord, Ready]], started_ns: int) -> None:
        now = datetime.now(UTC)
        self.ingested.add(len(batch))
        for _, record in batch:
            recorded = record.recorded_at
            if recorded.tzinfo is not None:  # a time without a zone says nothing
                self.delay.record(max(0.0, (now - recorded).total_seconds()))
        spans: dict[bytes, list[ConsumerRecord]] = {}
        for msg, _ in batch:
            parent = dict(msg.headers or ()).get("traceparent")
            if parent:
                spans.setdefault(parent, []).append(msg)
        end = time.time_ns()
        for msgs in spans.values():
            first = msgs[0]
            span = tracer.start_span(
                "write audit",
                context=telemetry.extract_context(first.headers or ()),
                kind=trace.SpanKind.CONSUMER,
                start_time=started_ns,
                attributes={
                    **telemetry.messaging("process", first.topic, first),
                    "infoshare.audit.records": len(msgs),
                    "db.operation.name": "INSERT",
                },
            )
            span.end(end_time=end)

    def verification(self, ok: bool) -> None:
        self.verified = ok
        if not ok:
            self.failures.add(1)

    def _age(self, _: CallbackOptions) -> list[Observation]:
        age = self.checkpoint_age()
        return [] if age is None else [Observation(age)]

    def _verified(self, _: CallbackOptions) -> list[Observation]:
        return [] if self.verified is None else [Observation(1.0 if self.verified else 0.0)]
