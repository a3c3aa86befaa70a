"""Metrics: instruments through the OpenTelemetry API, read two ways.

- Prometheus scrapes ``GET /metrics`` of each service (the processor serves it on a port of
  its own): a reader that collects when scraped, so a gauge is never stale.
- OTLP, when ``OTEL_METRICS_EXPORTER`` names ``otlp`` (endpoint, headers and interval from
  the standard ``OTEL_EXPORTER_OTLP_*`` and ``OTEL_METRIC_EXPORT_INTERVAL`` variables).

Each service (each app, in tests) has a meter provider and registry of its own, not the
process-wide ones, so two apps in one process never count into each other. Attributes
name agencies, event types, topics, reasons and routes: never a value about a person.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.exposition import generate_latest

# Seconds: from a cheap decision to a stuck backlog.
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def exporters_named(variable: str) -> set[str]:
    """The exporters an ``OTEL_*_EXPORTER`` variable names (comma separated, lower case)."""
    raw = os.environ.get(variable, "")
    return {name.strip().lower() for name in raw.split(",") if name.strip()}


@dataclass
class Metrics:
    """One service's meter and the Prometheus registry its ``/metrics`` shows."""

    service: str
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry())
    provider: MeterProvider = field(init=False)

    def __post_init__(self) -> None:
        readers: list[MetricReader] = [
            PrometheusMetricReader(
                registry=self.registry, disable_target_info=True, scope_info_enabled=False
            )
        ]
        if "otlp" in exporters_named("OTEL_METRICS_EXPORTER") and not sdk_disabled():
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        self.provider = MeterProvider(
            metric_readers=readers, resource=service_resource(self.service)
        )

    def meter(self, scope: str) -> Meter:
        return self.provider.get_meter(scope)

    def exposition(self) -> bytes:
        """The text Prometheus scrapes."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.provider.shutdown()


CONTENT_TYPE = CONTENT_TYPE_LATEST


def service_resource(service: str) -> Resource:
    """``service.name`` unless ``OTEL_SERVICE_NAME`` says otherwise; plus
    ``OTEL_RESOURCE_ATTRIBUTES``."""
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service}
    return Resource.create(attributes)


class CountDeadLetters(Protocol):
    def __call__(self, records: int = 1) -> None: ...


def dead_letter_counter(meter: Meter, stage: str) -> CountDeadLetters:
    """``infoshare_dead_letters_total{stage}``: one count per record a stage sends to its
    dead-letter topic (the callable takes how many). The series starts at 0, so an alert on
    its increase sees the first."""
    counter = meter.create_counter(
        "infoshare.dead_letters", description="Records sent to a dead-letter topic, by stage"
    )
    counter.add(0, {"stage": stage})

    def count(records: int = 1) -> None:
        counter.add(records, {"stage": stage})

    return count


def scrape_allowed(authorization: str | None, token: str | None) -> bool:
    """Whether a scrape may read ``/metrics``: always without a token (``INFOSHARE_METRICS_
    TOKEN`` unset), else only with ``Authorization: Bearer <token>``."""
    if not token:
        return True
    return hmac.compare_digest((authorization or "").encode(), f"Bearer {token}".encode())


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true``: no telemetry leaves the process."""
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
