"""Head sampling: a tenth of traces by default, a delivery's trace recorded exactly when its
event's is, and an unrecorded event still leaving with trace ids (and costing no spans)."""

from __future__ import annotations

import re

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from consent.processor.observe import delivery_headers
from services.backbone import sampling, telemetry
from services.backbone.errors import ConfigurationError
from tests.spans import spans

__all__ = ["spans"]

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SAMPLED, RANDOM = 0x01, 0x02  # W3C trace flags (Trace Context Level 2 adds RANDOM)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER_ARG", raising=False)
    return monkeypatch


def recorded_share(provider: TracerProvider, roots: int = 4000) -> float:
    tracer = provider.get_tracer("t")
    sampled = 0
    for _ in range(roots):
        with tracer.start_as_current_span("root") as span:
            sampled += span.is_recording()
    return sampled / roots


def test_a_tenth_of_traces_by_default(env: pytest.MonkeyPatch) -> None:
    sampler = sampling.sampler_from_env()
    assert isinstance(sampler, ParentBased)
    share = recorded_share(
        TracerProvider(sampler=sampler, id_generator=sampling.UnpredictableIds())
    )
    assert 0.07 < share < 0.13


def test_the_ratio_is_otel_traces_sampler_arg(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "1")
    assert recorded_share(TracerProvider(sampler=sampling.sampler_from_env())) == 1.0
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    assert recorded_share(TracerProvider(sampler=sampling.sampler_from_env())) == 0.0


@pytest.mark.parametrize("arg", ["1.5", "-0.1", "a tenth", "nan"])
def test_a_ratio_that_is_not_a_share_is_refused(env: pytest.MonkeyPatch, arg: str) -> None:
    env.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    with pytest.raises(ConfigurationError, match="from 0 to 1"):
        sampling.sampler_from_env()


def test_the_sdks_own_sampler_when_one_is_named(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
    assert sampling.sampler_from_env() is None  # the SDK reads the variable itself
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    assert recorded_share(TracerProvider(sampler=sampling.sampler_from_env())) == 1.0


def linked_root(provider: TracerProvider, *, sampled: bool) -> bool:
    tracer = provider.get_tracer("t")
    event = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(int(sampled)))
    with tracer.start_as_current_span("deliver", context=Context(), links=[trace.Link(event)]) as s:
        return s.is_recording()


def test_a_delivery_trace_follows_its_event_not_the_ratio(env: pytest.MonkeyPatch) -> None:
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    never = TracerProvider(sampler=sampling.sampler_from_env())
    assert linked_root(never, sampled=True)
    env.setenv("OTEL_TRACES_SAMPLER_ARG", "1")
    always = TracerProvider(sampler=sampling.sampler_from_env())
    assert not linked_root(always, sampled=False)


def test_ids_are_never_zero_and_differ() -> None:
    ids = sampling.UnpredictableIds()
    traces = {ids.generate_trace_id() for _ in range(1000)}
    assert len(traces) == 1000 and 0 not in traces
    assert all(0 < ids.generate_span_id() < 2**64 for _ in range(1000))


def unsampled_parent() -> Context:
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(0))
    return trace.set_span_in_context(NonRecordingSpan(remote))


def test_an_unrecorded_event_gives_its_delivery_an_unrecorded_trace_and_no_spans(
    spans: InMemorySpanExporter,
) -> None:
    seal = telemetry.TraceSeal(b"s" * 32)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("process", context=unsampled_parent()) as event:
        assert not event.is_recording()
        event_trace = telemetry.current_trace_id()  # what its audit record names
        first = dict(delivery_headers(seal, "deliver.a"))
        second = dict(delivery_headers(seal, "deliver.b"))
    assert spans.get_finished_spans() == ()
    assert event_trace == format(0x1234, "032x")
    for headers in (first, second):  # ours, sealed: the event's trace, for the delivery service
        opened = seal.open(list(headers.items()))
        assert opened is not None
        assert trace.get_current_span(opened).get_span_context().trace_id == 0x1234
    parsed = [TRACEPARENT.fullmatch(h["traceparent"].decode()) for h in (first, second)]
    assert all(p is not None and int(p.group(3), 16) == RANDOM for p in parsed)
    own = {p.group(1) for p in parsed if p is not None}
    assert len(own) == 2 and event_trace not in own  # a trace of its own per recipient


def test_a_recorded_event_still_makes_both_delivery_spans(spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("process"):
        headers = dict(delivery_headers(None, "deliver.a"))
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["create deliver.a", "deliver", "process"]
    match = TRACEPARENT.fullmatch(headers["traceparent"].decode())
    assert match is not None and int(match.group(3), 16) & SAMPLED


def test_with_tracing_off_a_delivery_carries_no_trace() -> None:
    with trace.NoOpTracer().start_as_current_span("process"):  # no SDK: no trace at all
        headers = delivery_headers(telemetry.TraceSeal(b"s" * 32), "deliver.a")
    assert headers == []  # nothing to seal either


def test_an_unrecorded_parent_needs_no_span_of_ours(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processor's shortcut: under a sampler that follows the parent, a record whose
    trace was not sampled is decided in the parent's context with no span made at all; its
    audit record names the same trace and its deliveries get the same headers."""
    parent = unsampled_parent()
    assert sampling.unrecorded_parent(parent)
    assert not sampling.unrecorded_parent(Context())  # no parent: the sampler decides
    sampled = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    assert not sampling.unrecorded_parent(trace.set_span_in_context(NonRecordingSpan(sampled)))
    seal = telemetry.TraceSeal(b"s" * 32)
    token = otel_context.attach(parent)
    try:
        event_trace = telemetry.current_trace_id()
        headers = dict(delivery_headers(seal, "deliver.a"))
    finally:
        otel_context.detach(token)
    assert spans.get_finished_spans() == ()
    assert event_trace == format(0x1234, "032x")
    match = TRACEPARENT.fullmatch(headers["traceparent"].decode())
    assert match is not None and not int(match.group(3), 16) & SAMPLED
    assert seal.open(list(headers.items())) is not None
    for name, follows in (
        ("", True),
        ("parentbased_traceidratio", True),
        ("parentbased_always_on", True),
        ("always_on", False),
        ("traceidratio", False),
    ):
        monkeypatch.setenv("OTEL_TRACES_SAMPLER", name)
        assert sampling.follows_parent() is follows, name
