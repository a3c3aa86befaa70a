"""What the processor tells operators: its metrics, and the spans of one record's path.

Labels and span attributes are agencies, event types (only those the schema registry
knows: a header is the publisher's word), outcomes and reason codes: never a value from
an event, never a key.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from opentelemetry import trace

from consent.processor.handle import Handled
from consent.processor.records import header_text
from services.backbone import envelope, telemetry
from services.backbone.consumer_lag import ConsumerLag
from services.backbone.errors import EnvelopeError
from services.backbone.metering import LATENCY_BUCKETS, Metrics, dead_letter_counter

tracer = trace.get_tracer("infoshare.processor")

Headers = list[tuple[str, bytes]]
Headers_ = Sequence[tuple[str, bytes | None]]


def delivery_headers(seal: telemetry.TraceSeal | None, topic: str) -> Headers:
    """A delivery's trace headers, made under a ``create deliver.<recipient>`` span of this
    event's trace: the recipient's own trace (linked to that span) and, sealed, ours. When
    this event's trace is not recorded, no span is made for the delivery either; it still
    gets a trace of its own (unrecorded too), and ours, sealed."""
    current = trace.get_current_span()
    if not current.is_recording():
        link = current.get_span_context()
        own = telemetry.new_trace_headers("deliver", link_to=link) if link.is_valid else []
        return own + _sealed(seal)
    with telemetry.producer_span(tracer, operation="create", topic=topic) as span:
        # Sealed in the create span: the delivery service carries on from it.
        linked = telemetry.new_trace_headers("deliver", link_to=span.get_span_context())
        return linked + _sealed(seal)


def _sealed(seal: telemetry.TraceSeal | None) -> Headers:
    return seal.seal() if seal is not None else []


def note_decisions(span: trace.Span, handled: Handled) -> None:
    """One span event per decision: who, what, why (codes only). Nothing for a span that
    is not recorded (most are: sampling.py), which would drop them anyway."""
    if not span.is_recording():
        return
    span.set_attribute("infoshare.decisions", len(handled.decisions))
    for d in handled.decisions:
        span.add_event(
            "decision",
            {
                "infoshare.recipient": d.recipient or "",
                "infoshare.outcome": d.outcome.value,
                "infoshare.reason_code": d.reason_code.value,
                "infoshare.protocol": d.protocol.ref if d.protocol else "",
                "infoshare.overridden": d.override is not None,
            },
        )
    if handled.suppressed:
        span.set_attribute("infoshare.duplicate", True)
    if handled.dead_letter_reason:
        span.set_attribute("infoshare.dead_lettered", True)


class ProcessorMetrics:
    def __init__(self, metrics: Metrics, *, group: str, known_types: Iterable[str]) -> None:
        self.source = metrics
        meter = metrics.meter("infoshare.processor")
        self.known_types = frozenset(known_types)
        self.received = meter.create_counter(
            "infoshare.events.received", description="Source records read, by agency and type"
        )
        self.decisions = meter.create_counter(
            "infoshare.decisions",
            description="Sharing decisions, by recipient, outcome and reason code",
        )
        self.overridden = meter.create_counter(
            "infoshare.decisions.overridden",
            description="Decisions made under a practitioner's override",
        )
        self.dead_lettered = dead_letter_counter(meter, "processor")
        self.duplicates = meter.create_counter(
            "infoshare.events.duplicate", description="Records suppressed as duplicates"
        )
        self.decision_time = meter.create_histogram(
            "infoshare.decision.duration",
            unit="s",
            description="Time to decide one source record (all its recipients)",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.latency = meter.create_histogram(
            "infoshare.event.latency",
            unit="s",
            description="From the agency's acceptance of an event to its decisions committed",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self.lag = ConsumerLag(meter, group)

    def registry_text(self) -> str:
        """What Prometheus would scrape now."""
        return self.source.exposition().decode()

    def decided(self, seconds: float) -> None:
        self.decision_time.record(seconds)

    def committed(self, results: Iterable[tuple[str, Headers_, Handled]]) -> None:
        """After a transaction commits (a batch retried after an abort counts once): what
        was read and decided, and how long each event took since its agency accepted it.
        Counted per label set first, then added once each: a batch holds hundreds of
        events but only a few distinct labels."""
        now = datetime.now(UTC)
        received: Counter[tuple[str, str]] = Counter()
        decisions: Counter[tuple[str, str, str]] = Counter()
        overridden: Counter[str] = Counter()
        dead_lettered = duplicates = 0
        for topic, headers, h in results:
            event_type = header_text(headers, "ce_type") or ""
            known = event_type if event_type in self.known_types else "unknown"
            received[topic.rpartition("source.")[2], known] += 1
            for d in h.decisions:
                recipient = d.recipient or "none"
                decisions[recipient, d.outcome.value, d.reason_code.value] += 1
                if d.override is not None:
                    overridden[recipient] += 1
            dead_lettered += h.dead_letter_reason is not None
            duplicates += h.suppressed
            raw = header_text(headers, "ce_time")
            with contextlib.suppress(EnvelopeError):
                if raw:
                    accepted = envelope.parse_time(raw)
                    self.latency.record(max(0.0, (now - accepted).total_seconds()))
        for (agency, event_type), n in received.items():
            self.received.add(n, {"source_agency": agency, "event_type": event_type})
        for (recipient, outcome, code), n in decisions.items():
            labels = {"recipient": recipient, "outcome": outcome, "reason_code": code}
            self.decisions.add(n, labels)
        for recipient, n in overridden.items():
            self.overridden.add(n, {"recipient": recipient})
        if dead_lettered:
            self.dead_lettered(dead_lettered)
        if duplicates:
            self.duplicates.add(duplicates)
