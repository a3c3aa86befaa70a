"""The spans a test made, in memory: one tracer provider for the whole test session (the
OpenTelemetry API lets a process set it once), cleared for each test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()
_installed: list[bool] = []


def _install() -> None:
    if not _installed:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        _installed.append(True)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test (``spans.get_finished_spans()``)."""
    _install()
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
