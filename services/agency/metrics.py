"""An agency service's own metrics (``GET /metrics`` is added by ``instrument_http``).

Attributes are the agency and the event type: never a value from a request. The outbox's
backlog is read when the metrics are collected, so it is never stale.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from opentelemetry.metrics import CallbackOptions, Observation

from services.agency.runtime import AgencyRuntime
from services.backbone.metering import Metrics
from services.outbox.store import Backlog

BACKLOG_FRESH_S = 0.5  # one scrape reads its three gauges well within this


class AgencyMetrics:
    def __init__(self, rt: AgencyRuntime, metrics: Metrics) -> None:
        self.rt = rt
        self._read: tuple[float, Backlog] | None = None
        meter = metrics.meter("infoshare.agency")
        self.accepted = meter.create_counter(
            "infoshare.agency.events.accepted",
            description="Canonical events accepted into the outbox",
        )
        meter.create_observable_gauge(
            "infoshare.outbox.pending",
            [self._pending],
            description="Events accepted, not yet published",
        )
        meter.create_observable_gauge(
            "infoshare.outbox.oldest_pending",
            [self._age],
            unit="s",
            description="Age of the oldest event waiting to be published",
        )
        meter.create_observable_gauge(
            "infoshare.outbox.dead_lettered",
            [self._failed],
            description="Events Kafka refused for good (sent to dlq.outbox)",
        )
        meter.create_observable_gauge(
            "infoshare.outbox.kafka_connected",
            [lambda _: [self._observe(1.0 if rt.relay.connected else 0.0)]],
            description="1 while the relay reaches Kafka",
        )
        meter.create_observable_counter(
            "infoshare.outbox.published",
            [lambda _: [self._observe(float(rt.relay.published))]],
            description="Events the relay published",
        )

    def count_accepted(self, event_types: Iterable[str]) -> None:
        for event_type, count in Counter(event_types).items():  # one add per type, not event
            self.accepted.add(count, {"agency": self.rt.agency, "event_type": event_type})

    def _observe(self, value: float) -> Observation:
        return Observation(value, {"agency": self.rt.agency})

    def _backlog(self) -> Backlog:
        """The outbox's backlog, read once for the three gauges of one scrape."""
        now = time.monotonic()
        if self._read is None or now - self._read[0] > BACKLOG_FRESH_S:
            self._read = (now, self.rt.outbox.backlog(self.rt.source_topic))
        return self._read[1]

    def _pending(self, _: CallbackOptions) -> list[Observation]:
        return [self._observe(float(self._backlog().pending))]

    def _age(self, _: CallbackOptions) -> list[Observation]:
        oldest = self._backlog().oldest
        return [self._observe((datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)]

    def _failed(self, _: CallbackOptions) -> list[Observation]:
        return [self._observe(float(self._backlog().failed))]
