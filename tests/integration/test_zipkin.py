"""The trace backend for real: spans exported with OpenTelemetry's Zipkin exporter reach
Zipkin's server and read back as one trace, the child under its parent."""

from __future__ import annotations

import time
from typing import Any

import httpx
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from deploy.devstack.observe import ZipkinServer


def read_trace(zipkin: ZipkinServer, trace_id: str, spans: int, wait_s: float = 30.0) -> Any:
    """The trace once Zipkin holds ``spans`` spans of it (it stores what it collects
    asynchronously)."""
    deadline = time.monotonic() + wait_s
    while True:
        got = httpx.get(f"{zipkin.base_url}/api/v2/trace/{trace_id}", timeout=5.0)
        if got.status_code == 200 and len(got.json()) >= spans:
            return got.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"trace {trace_id} not whole after {wait_s}s: {got.text}")
        time.sleep(0.05)


def test_a_trace_exported_to_zipkin_reads_back_with_its_child_under_its_parent(
    zipkin: ZipkinServer,
) -> None:
    # A provider of this test's own: the process-wide one stays as it is.
    provider = TracerProvider(resource=Resource.create({"service.name": "infoshare-test"}))
    provider.add_span_processor(SimpleSpanProcessor(ZipkinExporter(endpoint=zipkin.spans_url)))
    tracer = provider.get_tracer("tests.zipkin")
    with (
        tracer.start_as_current_span("post /referrals") as parent,
        tracer.start_as_current_span("publish source.la-northshire") as child,
    ):
        child.set_attribute("messaging.system", "kafka")
    provider.shutdown()
    trace_id = format(parent.get_span_context().trace_id, "032x")

    spans = {s["name"]: s for s in read_trace(zipkin, trace_id, spans=2)}

    assert set(spans) == {"post /referrals", "publish source.la-northshire"}
    root, publish = spans["post /referrals"], spans["publish source.la-northshire"]
    assert "parentId" not in root
    assert publish["parentId"] == root["id"] == format(parent.get_span_context().span_id, "016x")
    assert publish["id"] == format(child.get_span_context().span_id, "016x")
    assert {s["traceId"] for s in spans.values()} == {trace_id}
    assert {s["localEndpoint"]["serviceName"] for s in spans.values()} == {"infoshare-test"}
    assert publish["tags"]["messaging.system"] == "kafka"
