"""OpenTelemetry set-up and W3C trace context in Kafka headers.

Only ``traceparent``/``tracestate`` are written: trace context carries no personal data.
Span attributes set anywhere in infoshare name events by id and type, never a person.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

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


def inject_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items() if k in _TRACE_HEADERS]


def extract_context(headers: Sequence[tuple[str, bytes]]) -> Context:
    carrier = {k: v.decode(errors="replace") for k, v in headers if k.lower() in _TRACE_HEADERS}
    return propagate.extract(carrier)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
