"""The processor continues the event's trace from its record headers, makes each decision a
span event and each delivery a span of that trace, gives every recipient a trace of its own
(ours rides sealed beside it), and lets the audit write join the event's trace; and counts
what it decided."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.backbone import telemetry
from services.backbone.kafka_access import KafkaAccess
from services.backbone.keyring import Keyring
from services.backbone.topics import Topics
from services.socialcare import mapping
from tests.integration.kafka_helpers import Running, at_least, plan_data, publish_event, read_topic
from tests.spans import spans

__all__ = ["spans"]
pytestmark = pytest.mark.kafka

ED, LA = "nhs-riverside-ed", "la-northshire"


def trace_of(headers: list[tuple[str, bytes]]) -> int:
    parent = dict(headers)["traceparent"].decode()
    return int(parent.split("-")[1], 16)


async def test_one_trace_from_the_agency_to_each_delivery_and_the_audit_write(
    stack: Running,
    kafka_access: KafkaAccess,
    namespace: str,
    keyring: Keyring,
    spans: InMemorySpanExporter,
) -> None:
    topics = Topics(namespace=namespace)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("POST /child-protection-plans") as request:
        await publish_event(
            LA,
            mapping.PLAN_STARTED,
            plan_data(),
            namespace=namespace,
            access=kafka_access,
            keyring=keyring,
        )
    ours = request.get_span_context().trace_id

    (flag,) = await read_topic(topics.deliver(ED), kafka_access, until=at_least(1))
    (notice,) = await read_topic(topics.deliver(LA), kafka_access, until=at_least(1))
    audit = await read_topic(topics.audit, kafka_access, until=at_least(2))

    # Each recipient sees a trace of its own: nothing in the headers links their records.
    public = {trace_of(flag.headers), trace_of(notice.headers)}
    assert len(public) == 2 and ours not in public
    sealed = [dict(r.headers)["infoshare_trace"] for r in (flag, notice)]
    assert sealed[0] != sealed[1]
    # ... while ours, sealed, opens to a `create deliver.*` span of the event's trace.
    seal = telemetry.TraceSeal.of(keyring.trace_seal)
    assert seal is not None
    opened = seal.open(flag.headers)
    assert opened is not None
    create_flag = trace.get_current_span(opened).get_span_context()
    assert create_flag.trace_id == ours
    # Not under the routing key, which every agency service holds to publish.
    assert telemetry.TraceSeal(keyring.require_routing().secret).open(flag.headers) is None
    # The audit records carry the event's trace: the audit write joins it.
    assert {trace_of(a.headers) for a in audit} == {ours}

    # Its spans ended before its transaction committed, so before we read the records.
    mine = [s for s in spans.get_finished_spans() if s.context.trace_id == ours]
    by_id = {s.context.span_id: s for s in mine}
    (process,) = [s for s in mine if s.name == f"process {topics.source(LA)}"]
    assert process.kind is trace.SpanKind.CONSUMER
    assert process.parent is not None and by_id[process.parent.span_id].name.startswith("send ")
    decisions = [e for e in process.events if e.name == "decision"]
    assert {(e.attributes or {})["infoshare.recipient"] for e in decisions} >= {ED}
    creates = {s.name: s for s in mine if s.name.startswith("create ")}
    assert set(creates) == {f"create {topics.deliver(ED)}", f"create {topics.deliver(LA)}"}
    assert by_id[create_flag.span_id].name == f"create {topics.deliver(ED)}"
    assert all(s.parent and s.parent.span_id == process.context.span_id for s in creates.values())

    assert stack.processor is not None
    text = stack.processor.metrics.registry_text()
    shared = 'outcome="shared",reason_code="shared.protocol_allows",recipient="nhs-riverside-ed"'
    assert f"infoshare_decisions_total{{{shared}}} 1.0" in text
    assert "infoshare_event_latency_seconds_count 1.0" in text
    assert (
        f'infoshare_events_received_total{{event_type="{mapping.PLAN_STARTED}",'
        f'source_agency="{LA}"}} 1.0'
    ) in text
