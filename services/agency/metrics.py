"""An agency service's Prometheus metrics, at ``GET /metrics`` (no key: they name no one).

Labels are the agency, the event type, the route's template and the status code: never a
value from a request. The outbox's backlog is read when Prometheus scrapes, so it is never
stale.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from services.agency.runtime import AgencyRuntime, runtime

router = APIRouter()


class AgencyMetrics:
    def __init__(self, rt: AgencyRuntime) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.accepted = Counter(
            "infoshare_agency_events_accepted",
            "Canonical events accepted into the outbox",
            ["agency", "event_type"],
            registry=self.registry,
        )
        self.requests = Counter(
            "infoshare_agency_requests",
            "HTTP requests answered, by route template and status code",
            ["agency", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "infoshare_agency_request_seconds",
            "Time to answer a request, by route template",
            ["agency", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.registry.register(_OutboxCollector(rt))

    async def observe(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        """Middleware: count and time every request under its route's template."""
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        agency = runtime(request).agency
        self.requests.labels(agency, route, str(response.status_code)).inc()
        self.latency.labels(agency, route).observe(time.perf_counter() - started)
        return response


class _OutboxCollector(Collector):
    def __init__(self, rt: AgencyRuntime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        backlog = self.rt.outbox.backlog(self.rt.source_topic)
        age = (datetime.now(UTC) - backlog.oldest).total_seconds() if backlog.oldest else 0.0
        labels = ["agency"]
        values = [self.rt.agency]
        for name, text, value in (
            ("infoshare_outbox_pending", "Events accepted, not yet published", backlog.pending),
            ("infoshare_outbox_oldest_pending_seconds", "Age of the oldest waiting event", age),
            ("infoshare_outbox_dead_lettered", "Events Kafka refused for good", backlog.failed),
            (
                "infoshare_outbox_kafka_connected",
                "1 while the relay reaches Kafka",
                1.0 if self.rt.relay.connected else 0.0,
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=labels)
            gauge.add_metric(values, float(value))
            yield gauge
        published = CounterMetricFamily(
            "infoshare_outbox_published", "Events the relay published", labels=labels
        )
        published.add_metric(values, float(self.rt.relay.published))
        yield published


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics (text exposition format); no personal data",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
