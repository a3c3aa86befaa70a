"""OpenTelemetry set-up and W3C trace context in Kafka headers.

Only ``traceparent``/``tracestate`` are written: trace context carries no personal data.
Span attributes set anywhere in infoshare name events by id and type, never a person.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.util.types import AttributeValue

from services.backbone import sampling
from services.backbone.errors import ConfigurationError
from services.backbone.keyed import Key
from services.backbone.metering import exporters_named, sdk_disabled, service_resource

_TRACE_HEADERS = ("traceparent", "tracestate")


class KafkaRecord(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...


TRACE_EXPORTERS = ("otlp", "zipkin", "console", "none")


def setup_tracing(service_name: str) -> TracerProvider:
    """Install a tracer provider for this process (the composition root calls it once).

    Exporters as the OpenTelemetry SDK's environment variables say: ``OTEL_TRACES_EXPORTER``
    lists ``otlp``, ``zipkin``, ``console`` or ``none``. Unset, spans go over OTLP when an
    ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set and nowhere otherwise (a laptop has no
    collector to complain about). ``OTEL_SDK_DISABLED=true`` turns tracing off. Which
    traces are recorded: sampling.py (a tenth, unless ``OTEL_TRACES_SAMPLER*`` say).
    """
    provider = TracerProvider(
        resource=service_resource(service_name),
        sampler=sampling.sampler_from_env(),
        id_generator=sampling.UnpredictableIds(),
    )
    for exporter in _span_exporters():
        if isinstance(exporter, ConsoleSpanExporter):  # a test or a person reads it now
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:  # batched, as OTEL_BSP_* say
            provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def _span_exporters() -> list[SpanExporter]:
    if sdk_disabled():
        return []
    names = exporters_named("OTEL_TRACES_EXPORTER")
    if not names and any(
        os.environ.get(v)
        for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        names = {"otlp"}
    unknown = names - set(TRACE_EXPORTERS)
    if unknown:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER names {', '.join(sorted(unknown))}: "
            f"this build exports traces to {', '.join(TRACE_EXPORTERS)}"
        )
    exporters: list[SpanExporter] = []
    if "otlp" in names:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporters.append(OTLPSpanExporter())
    if "zipkin" in names:  # endpoint from OTEL_EXPORTER_ZIPKIN_ENDPOINT
        from opentelemetry.exporter.zipkin.json import ZipkinExporter

        exporters.append(ZipkinExporter())
    if "console" in names:
        exporters.append(ConsoleSpanExporter())
    return exporters


def messaging(
    operation: str, topic: str, rec: KafkaRecord | None = None
) -> dict[str, AttributeValue]:
    """The OpenTelemetry messaging attributes of one Kafka operation: the topic, and with a
    record read, its partition and offset. Never its key."""
    attributes: dict[str, AttributeValue] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.destination.name": topic,
    }
    if rec is not None:
        attributes["messaging.destination.partition.id"] = str(rec.partition)
        attributes["messaging.kafka.offset"] = rec.offset
    return attributes


@contextmanager
def span(
    tracer: trace.Tracer,
    name: str,
    *,
    context: Context | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
    links: Sequence[trace.Link] = (),
) -> Iterator[trace.Span]:
    """A span as infoshare makes every one: an exception that ends it is named by its type
    (``error.type``) and marks it an error, but its message, which may quote what a request
    or an event held, is never recorded (the SDK's default records it, and its stack)."""
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__qualname__)
            current.set_status(trace.StatusCode.ERROR)
            raise


def producer_span(
    tracer: trace.Tracer,
    *,
    operation: str,
    topic: str,
    event_id: str | None = None,
    event_type: str | None = None,
    context: Context | None = None,
) -> AbstractContextManager[trace.Span]:
    """A PRODUCER span for one event (OTel messaging conventions): ``create`` when it is
    made to be sent (the outbox, a delivery in a transaction), ``send`` when it is sent.
    Ids and types only."""
    return span(tracer, **_producing(operation, topic, event_id, event_type), context=context)


def created(
    tracer: trace.Tracer, *, topic: str, event_id: str, event_type: str
) -> list[tuple[str, bytes]]:
    """A ``create`` PRODUCER span for an event made now and sent later (an agency's outbox,
    thousands in an upload), started and ended at once: the trace headers the event carries
    to continue it. :func:`producer_span` around making it cost as much as the rest."""
    made = tracer.start_span(**_producing("create", topic, event_id, event_type))
    try:
        return inject_headers(trace.set_span_in_context(made))
    finally:
        made.end()


def _producing(
    operation: str, topic: str, event_id: str | None, event_type: str | None
) -> dict[str, Any]:
    attributes = messaging(operation, topic)
    if event_id:
        attributes["messaging.message.id"] = event_id
    if event_type:
        attributes["cloudevents.event_type"] = event_type
    return {
        "name": f"{operation} {topic}",
        "kind": trace.SpanKind.PRODUCER,
        "attributes": attributes,
    }


def end_when_sent(
    tracer: trace.Tracer, topic: str, headers: Sequence[tuple[str, bytes | None]]
) -> Callable[[asyncio.Future[object] | BaseException], None]:
    """A ``send`` PRODUCER span for a record already made (its trace in ``headers``),
    started now; the callable ends it with the send's outcome (a done future, or the
    exception that kept it from leaving)."""
    span = tracer.start_span(
        f"send {topic}",
        context=extract_context(headers),
        kind=trace.SpanKind.PRODUCER,
        attributes=messaging("send", topic),
    )

    def end(outcome: asyncio.Future[object] | BaseException) -> None:
        failed = outcome if isinstance(outcome, BaseException) else None
        if failed is None and isinstance(outcome, asyncio.Future):
            failed = None if outcome.cancelled() else outcome.exception()
        if failed is not None:
            span.set_attribute("error.type", type(failed).__qualname__)
            span.set_status(trace.StatusCode.ERROR)
        span.end()

    return end


def consumer_span(
    tracer: trace.Tracer, rec: KafkaRecord, *, operation: str = "process", context: Context | None
) -> AbstractContextManager[trace.Span]:
    """A CONSUMER span for one record read from Kafka, a child of ``context`` (the trace
    the record carries). Coordinates only: never the key, which a recipient's pseudonym is."""
    return span(tracer, **_consuming(rec, operation, context))


def consumed(
    tracer: trace.Tracer, rec: KafkaRecord, *, operation: str = "process", context: Context | None
) -> None:
    """:func:`consumer_span` around nothing: a record read and stored, no work of its own."""
    moment(tracer, **_consuming(rec, operation, context))


def _consuming(rec: KafkaRecord, operation: str, context: Context | None) -> dict[str, Any]:
    return {
        "name": f"{operation} {rec.topic}",
        "context": context,
        "kind": trace.SpanKind.CONSUMER,
        "attributes": messaging(operation, rec.topic, rec),
    }


def moment(
    tracer: trace.Tracer,
    name: str,
    *,
    context: Context | None,
    kind: trace.SpanKind,
    attributes: Mapping[str, AttributeValue],
    links: Sequence[trace.Link] = (),
) -> None:
    """A span around nothing (a record read into a store, an event a recipient pulled),
    started and ended at once and never made current: :func:`span`'s context manager and
    its attaching of the context cost more than the span itself, once a delivery."""
    tracer.start_span(name, context=context, kind=kind, attributes=attributes, links=links).end()


def inject_headers(context: Context | None = None) -> list[tuple[str, bytes]]:
    """The trace context (by default the current one) as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
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
    if link_to is not None and link_to.is_valid and not link_to.trace_flags.sampled:
        return sampling.unsampled_traceparent()  # as the sampler would decide, for less
    tracer = trace.get_tracer("infoshare")
    links = [trace.Link(link_to)] if link_to is not None and link_to.is_valid else []
    with span(tracer, name, context=Context(), kind=trace.SpanKind.PRODUCER, links=links):
        return inject_headers()


class TraceSeal:
    """Our own trace context through a record that a recipient reads.

    A delivery's ``traceparent`` is a trace of the recipient's own (see
    ``new_trace_headers``); the event's trace rides beside it in ``infoshare_trace``,
    sealed: AES-GCM under a key derived (HKDF) from the keyring's ``trace_seal`` key, a
    fresh nonce each time, as unpadded base64url text (every header value on our topics is
    text, so that a standard CloudEvents Kafka binding reads the record). Only the processor
    and the delivery service hold that key, so they continue the event's one trace while
    recipients, agency services included, see ciphertexts that differ on every record and
    link nothing.
    """

    HEADER = "infoshare_trace"

    def __init__(self, secret: bytes, *older: bytes) -> None:
        # Seals under ``secret``; opens under it or an ``older`` one (a rotated trace_seal key:
        # records sealed before the rotation are still on their way).
        self._aeads = [
            AESGCM(
                HKDF(
                    algorithm=hashes.SHA256(),
                    length=32,
                    salt=None,
                    info=b"infoshare trace-context seal",
                ).derive(each)
            )
            for each in (secret, *older)
        ]
        self._aead = self._aeads[0]

    @classmethod
    def of(cls, *keys: Key | None) -> TraceSeal | None:
        """The seal under the keyring's ``trace_seal`` keys, the active one first; None
        without any (a keyring made before it existed): deliveries then carry only the
        recipient's trace."""
        present = [k.secret for k in keys if k is not None]
        return cls(*present) if present else None

    def seal(self) -> list[tuple[str, bytes]]:
        """The current trace context, sealed, as a header (none outside a span)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        parent = carrier.get("traceparent")
        if not parent:
            return []
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, parent.encode(), self.HEADER.encode())
        return [(self.HEADER, base64.urlsafe_b64encode(nonce + sealed).rstrip(b"="))]

    def open(self, headers: Sequence[tuple[str, bytes | None]]) -> Context | None:
        """The sealed trace context of a record, or None if it has none we can open."""
        text = next((v for k, v in headers if k == self.HEADER and v), None)
        if text is None:
            return None
        try:
            value = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(value) < 12 + 16:
            return None
        for aead in self._aeads:
            try:
                parent = aead.decrypt(value[:12], value[12:], self.HEADER.encode())
            except InvalidTag:
                continue
            return propagate.extract({"traceparent": parent.decode(errors="replace")})
        return None


def event_context(seal: TraceSeal | None, headers: Sequence[tuple[str, bytes | None]]) -> Context:
    """A delivery record's place in the event's trace: its sealed context if it opens under
    ``seal``, the record's own (the recipient's trace) otherwise."""
    ours = seal.open(headers) if seal is not None else None
    return ours if ours is not None else extract_context(headers)


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
