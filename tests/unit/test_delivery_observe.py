"""The delivery service's counts of webhook pushes: every push an endpoint took is counted
once, though a window's are added together."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider

from services.backbone.metering import Metrics
from services.delivery.breaker import BreakerBoard
from services.delivery.observe import DeliveryTelemetry
from services.delivery.webhook import PushOutcome

DELIVERED = 'infoshare_deliveries_total{channel="webhook",outcome="delivered",recipient="la-x"}'
GONE = 'infoshare_deliveries_total{channel="webhook",outcome="gone",recipient="la-x"}'


def _count(metrics: Metrics, series: str) -> float | None:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_windows_taken_pushes_are_each_counted_and_a_push_alone_is_not_counted_twice() -> None:
    metrics = Metrics("delivery-test")
    seen = DeliveryTelemetry(metrics, BreakerBoard(failure_threshold=5, cooldown_s=30), None)
    span = TracerProvider().get_tracer("test").start_span("POST")
    for _ in range(3):
        seen.pushed(span, "la-x", PushOutcome(ok=True, status=200))
    assert _count(metrics, DELIVERED) is None  # counted with their window, below
    seen.pushed_all("la-x", 3)
    seen.pushed_all("la-x", 0)
    seen.pushed_all("la-x", 2)
    assert _count(metrics, DELIVERED) == 5.0
    seen.pushed(span, "la-x", PushOutcome(ok=False, gone=True, status=410))
    assert _count(metrics, GONE) == 1.0
    assert _count(metrics, DELIVERED) == 5.0
