"""OpenTelemetry set-up and W3C trace context in Kafka headers.

Only ``traceparent``/``tracestate`` are written: trace context carries no personal data.
Span attributes set anywhere in infoshare name events by id and type, never a person.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

_TRACE_HEADERS = ("traceparent", "tracestate")


def setup_tracing(service_name: str) -> TracerProvider:
    """Install a tracer provider for this process (the composition root calls it once).

    ``OTEL_TRACES_EXPORTER=console`` prints spans; exporters to a backend come with the
    observability work.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip() == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


def producer_span(
    tracer: trace.Tracer, *, operation: str, topic: str, event_id: str, event_type: str
) -> AbstractContextManager[trace.Span]:
    """A PRODUCER span for one event (OTel messaging conventions): ``create`` when it is
    stored to be sent (the outbox), ``send`` when it is sent. Ids and types only."""
    return tracer.start_as_current_span(
        f"{operation} {topic}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": operation,
            "messaging.destination.name": topic,
            "messaging.message.id": event_id,
            "cloudevents.event_type": event_type,
        },
    )


def inject_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items() if k in _TRACE_HEADERS]


def extract_context(headers: Sequence[tuple[str, bytes | None]]) -> Context:
    """The trace context of an incoming record. Only ``traceparent`` is read: ``tracestate``
    is vendor data we do not vouch for, and it must never ride on into deliveries."""
    carrier = {
        k.lower(): v.decode(errors="replace")
        for k, v in headers
        if k.lower() == "traceparent" and v is not None
    }
    return propagate.extract(carrier)


def new_trace_headers(name: str, *, link_to: trace.SpanContext | None) -> list[tuple[str, bytes]]:
    """Headers of a new trace (a short span linked to ``link_to``), for a record that leaves
    for a recipient: each recipient gets a trace id of its own, so trace ids cannot link
    what two recipients receive, while operators still follow the link."""
    tracer = trace.get_tracer("infoshare")
    links = [trace.Link(link_to)] if link_to is not None and link_to.is_valid else []
    with tracer.start_as_current_span(
        name, context=Context(), kind=trace.SpanKind.PRODUCER, links=links
    ):
        return inject_headers()


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
