"""What the delivery service tells operators: deliveries, retries, dead letters and circuit
states as metrics, and each delivery's spans in the event's own trace.

A delivery record carries the recipient's trace in ``traceparent`` and ours sealed in
``infoshare_trace`` (``telemetry.TraceSeal``): spans here continue ours when the seal
opens, the recipient's otherwise. Labels and attributes are recipients, channels,
subscription ids and outcomes: never an endpoint's URL (its query may hold a secret), never
a value from an event.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Observation

from services.backbone import telemetry
from services.backbone.consumer_lag import ConsumerLag
from services.backbone.metering import Metrics, dead_letter_counter
from services.delivery.breaker import BreakerBoard, BreakerState
from services.delivery.endpoints import recipient_of
from services.delivery.webhook import PushOutcome

tracer = trace.get_tracer("infoshare.delivery")
Headers = Sequence[tuple[str, bytes | None]]
CIRCUIT_VALUE = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class DeliveryTelemetry:
    def __init__(
        self, metrics: Metrics, breakers: BreakerBoard, seal: telemetry.TraceSeal | None
    ) -> None:
        self.metrics = metrics
        self.breakers = breakers
        self.seal = seal
        meter = metrics.meter("infoshare.delivery")
        self.deliveries = meter.create_counter(
            "infoshare.deliveries",
            description="Deliveries by recipient, channel (webhook, pull) and outcome",
        )
        self.retries = meter.create_counter(
            "infoshare.webhook.retries", description="Webhook pushes that failed and will retry"
        )
        self.dead_letter = dead_letter_counter(meter, "delivery")
        meter.create_observable_gauge(
            "infoshare.webhook.circuit_state",
            [self._circuits],
            description="Worst circuit of a recipient's endpoints: 0 closed, 1 half-open, 2 open",
        )
        self.lag = ConsumerLag(meter, "delivery")

    def context_of(self, headers: Headers) -> Context:
        return telemetry.event_context(self.seal, headers)

    def received(self, rec: telemetry.KafkaRecord, headers: Headers) -> None:
        """A delivery record read into the store: a short CONSUMER span in its trace."""
        telemetry.consumed(tracer, rec, context=self.context_of(headers))

    @contextmanager
    def webhook_post(
        self, *, recipient: str, subscription: str, url: str, attempt: int, headers: Headers
    ) -> Iterator[trace.Span]:
        """The CLIENT span of one push of one event (a heartbeat has none)."""
        host, port = _server(url)
        with telemetry.span(
            tracer,
            "POST",
            context=self.context_of(headers),
            kind=trace.SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "server.address": host,
                "server.port": port,
                "infoshare.recipient": recipient,
                "infoshare.subscription": subscription,
                "infoshare.attempt": attempt,
            },
        ) as span:
            yield span

    def pushed(self, span: trace.Span, recipient: str, outcome: PushOutcome) -> None:
        """The answer of one push (a later retry or dead letter is counted by the caller)."""
        if outcome.status is not None:
            span.set_attribute("http.response.status_code", outcome.status)
        if outcome.ok:
            return  # counted with the others of its window (pushed_all)
        span.set_attribute("error.type", outcome.error or "failed")
        span.set_status(trace.StatusCode.ERROR)
        if outcome.gone:
            self.deliveries.add(1, _labels(recipient, "webhook", "gone"))

    def pushed_all(self, recipient: str, taken: int) -> None:
        """The pushes of one window its endpoint took: counted once a window, not once a
        push (adding to the counter showed in profiles at a twelfth of a push's cost)."""
        if taken > 0:
            self.deliveries.add(taken, _labels(recipient, "webhook", "delivered"))

    def retrying(self, recipient: str) -> None:
        self.retries.add(1, {"recipient": recipient})

    def dead_lettered(self, recipient: str) -> None:
        self.dead_letter()
        self.deliveries.add(1, _labels(recipient, "webhook", "failed"))

    def pulled(self, recipient: str, rows: Sequence[tuple[str, Headers]]) -> None:
        """Events a recipient read from its inbox: each a short span in its own trace,
        linked to the request that read them."""
        here = trace.get_current_span().get_span_context()
        links = [trace.Link(here)] if here.is_valid else []
        for topic, headers in rows:
            telemetry.moment(
                tracer,
                f"receive {topic}",
                context=self.context_of(headers),
                kind=trace.SpanKind.CONSUMER,
                links=links,
                attributes={
                    **telemetry.messaging("receive", topic),
                    "infoshare.recipient": recipient,
                },
            )

    def acknowledged(self, recipient: str, count: int) -> None:
        """A pull delivery is done when the recipient acknowledges it (reading a page again
        and again counts nothing)."""
        if count > 0:
            self.deliveries.add(count, _labels(recipient, "pull", "delivered"))

    def _circuits(self, _: CallbackOptions) -> list[Observation]:
        worst: dict[str, int] = {}
        for key, state in self.breakers.states(time.monotonic()):
            recipient = recipient_of(key)
            worst[recipient] = max(worst.get(recipient, 0), CIRCUIT_VALUE[state])
        return [Observation(float(v), {"recipient": r}) for r, v in sorted(worst.items())]


@functools.lru_cache(maxsize=4096)  # once a push: pure, cached
def _server(url: str) -> tuple[str, int]:
    """The host and port a push to ``url`` goes to, as the span names them."""
    where = urlsplit(url)
    return where.hostname or "", where.port or (443 if where.scheme == "https" else 80)


def _labels(recipient: str, channel: str, outcome: str) -> dict[str, str]:
    return {"recipient": recipient, "channel": channel, "outcome": outcome}
