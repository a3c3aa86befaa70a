"""Tracing set-up from the OTEL_* variables, the sealed trace context of deliveries, and the
HTTP server spans and metrics every service has."""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.backbone import telemetry
from services.backbone.errors import ConfigurationError
from services.backbone.http import create_service_app
from services.backbone.http_telemetry import instrument_http
from services.backbone.metering import Metrics
from services.backbone.metrics_server import MetricsServer
from tests.spans import spans

__all__ = ["spans"]

SECRET = b"r" * 32
OTEL_VARS = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def kinds(exporters: list[object]) -> list[type]:
    return [type(e) for e in exporters]


def test_no_exporter_unless_one_is_configured(env: pytest.MonkeyPatch) -> None:
    assert telemetry._span_exporters() == []
    env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert kinds(telemetry._span_exporters()) == [OTLPSpanExporter]  # type: ignore[arg-type]


def test_exporters_are_named_by_otel_traces_exporter(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_EXPORTER", " Zipkin , console,otlp")
    assert set(kinds(telemetry._span_exporters())) == {  # type: ignore[arg-type]
        OTLPSpanExporter,
        ZipkinExporter,
        ConsoleSpanExporter,
    }
    env.setenv("OTEL_TRACES_EXPORTER", "none")
    assert telemetry._span_exporters() == []
    env.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    env.setenv("OTEL_SDK_DISABLED", "true")
    assert telemetry._span_exporters() == []


def test_an_unknown_exporter_is_a_clear_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_EXPORTER", "jaeger,otlp")
    with pytest.raises(ConfigurationError, match=r"jaeger.*otlp, zipkin, console, none"):
        telemetry._span_exporters()


def test_a_sealed_context_opens_to_the_span_it_was_made_in() -> None:
    seal = telemetry.TraceSeal(SECRET)
    tracer = TracerProvider().get_tracer("t")
    assert seal.seal() == []  # outside any span there is nothing to seal
    with tracer.start_as_current_span("create deliver.x") as span:
        headers = seal.seal()
    assert [name for name, _ in headers] == ["infoshare_trace"]
    opened = seal.open(headers)
    assert opened is not None
    parent = trace.get_current_span(opened).get_span_context()
    assert parent.trace_id == span.get_span_context().trace_id
    assert parent.span_id == span.get_span_context().span_id


def test_a_seal_is_fresh_each_time_and_opens_only_under_its_key() -> None:
    seal = telemetry.TraceSeal(SECRET)
    with TracerProvider().get_tracer("t").start_as_current_span("one"):
        first, second = seal.seal(), seal.seal()
    # Two recipients' copies of one event's context share nothing a recipient could join.
    assert first[0][1] != second[0][1]
    assert telemetry.TraceSeal(b"s" * 32).open(first) is None


@given(st.binary(max_size=200))
def test_a_forged_or_damaged_seal_never_opens(value: bytes) -> None:
    assert telemetry.TraceSeal(SECRET).open([("infoshare_trace", value)]) is None


def test_the_sealed_header_is_text_and_a_flipped_bit_is_refused() -> None:
    seal = telemetry.TraceSeal(SECRET)
    with TracerProvider().get_tracer("t").start_as_current_span("one"):
        ((name, value),) = seal.seal()
    # Text a CloudEvents Kafka binding reads as a header: unpadded base64url.
    assert re.fullmatch(rb"[A-Za-z0-9_-]+", value)
    assert seal.open([(name, value)]) is not None
    raw = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    for at in (0, 12, len(raw) - 1):  # the nonce, the ciphertext, the tag
        damaged = raw[:at] + bytes([raw[at] ^ 1]) + raw[at + 1 :]
        text = base64.urlsafe_b64encode(damaged).rstrip(b"=")
        assert seal.open([(name, text)]) is None


def _app() -> tuple[FastAPI, Metrics]:
    app = create_service_app(title="t", description="t")

    @app.get("/children/{child_id}")
    async def child(child_id: str) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("cannot find 9434765919 (Maisie)")  # a careless message

    metrics = Metrics("infoshare-test")
    instrument_http(app, metrics, token=None)
    return app, metrics


async def test_a_request_is_a_server_span_named_by_its_route_never_its_path(
    spans: InMemorySpanExporter,
) -> None:
    app, metrics = _app()
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.get("/children/9434765919?name=Maisie", headers={"traceparent": caller})
        failed = await client.get("/broken")
        scraped = await client.get("/metrics")
    assert ok.status_code == 200 and failed.status_code == 500
    finished = {s.name: s for s in spans.get_finished_spans()}
    span = finished["GET /children/{child_id}"]
    assert span.kind is trace.SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "http.route": "/children/{child_id}",
        "http.response.status_code": 200,
    }
    broken = finished["GET /broken"]
    assert broken.status.status_code is trace.StatusCode.ERROR and not broken.status.description
    assert (broken.attributes or {})["error.type"] == "RuntimeError"
    assert not broken.events  # the SDK would record the exception's message: never
    assert not any(s.name.startswith("GET /metrics") for s in finished.values()), list(finished)
    text = scraped.text
    for status, route in (("200", "/children/{child_id}"), ("500", "/broken")):
        labels = f'http_request_method="GET",http_response_status_code="{status}"'
        assert (
            f'http_server_request_duration_seconds_count{{{labels},http_route="{route}"}} 1.0'
            in text
        )
    assert "9434765919" not in text and "Maisie" not in text
    dumped = str([s.to_json() for s in spans.get_finished_spans()])
    assert "9434765919" not in dumped and "Maisie" not in dumped
    metrics.shutdown()


async def test_metrics_behind_a_token_answer_only_with_it() -> None:
    app = create_service_app(title="t", description="t")
    instrument_http(app, Metrics("infoshare-test"), token="s3cret-scrape-token")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer s3cret-scrape-token"}
        assert (await client.get("/metrics", headers=right)).status_code == 200


async def test_a_made_up_method_is_counted_as_other(spans: InMemorySpanExporter) -> None:
    app, metrics = _app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.request("FOOBAR", "/children/1")
        text = (await client.get("/metrics")).text
    assert "FOOBAR" not in text and 'http_request_method="_OTHER"' in text
    assert not [s for s in spans.get_finished_spans() if "FOOBAR" in s.name]
    metrics.shutdown()


def test_the_processors_metrics_server_scrapes_behind_its_token() -> None:
    metrics = Metrics("infoshare-test")
    metrics.meter("t").create_counter("infoshare.test.things").add(2)
    server = MetricsServer(metrics, host="127.0.0.1", port=0, token="tok")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert httpx.get(url).status_code == 401
        scraped = httpx.get(url, headers={"Authorization": "Bearer tok"})
        assert "infoshare_test_things_total 2.0" in scraped.text
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{server.port}.*INFOSHARE_PORT"):
            MetricsServer(metrics, host="127.0.0.1", port=server.port, token=None)
    finally:
        server.close()
        metrics.shutdown()
