"""Every HTTP service's requests as SERVER spans and a duration histogram, and its
``GET /metrics``.

Attributes follow the OpenTelemetry HTTP conventions, with the route's template
(``/submissions/{submission_id}``), never the path, query or a header's value: a URL may
one day carry a search about a person. A caller's ``traceparent`` is continued, its
``tracestate`` is not read.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import propagate, trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.backbone import telemetry
from services.backbone.metering import CONTENT_TYPE, LATENCY_BUCKETS, Metrics, scrape_allowed

tracer = trace.get_tracer("infoshare.http")
KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
UNTRACED = frozenset({"/metrics", "/healthz"})  # scraped and polled: noise in a trace store


class HttpTelemetry:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.duration = metrics.meter("infoshare.http").create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Time to answer an HTTP request, by route template and status code",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        # Any other method would be a series and a span name of a caller's choosing.
        method = str(scope["method"]) if scope["method"] in KNOWN_METHODS else "_OTHER"
        started = time.perf_counter()
        if scope["path"] in UNTRACED:
            try:
                await self.app(scope, receive, answer)
            finally:
                self._record(scope, method, status, started)
            return
        with telemetry.span(
            tracer,
            method,
            context=propagate.extract(_traceparent(scope)),
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.scheme": str(scope.get("scheme", "http")),
                "network.protocol.version": str(scope.get("http_version", "1.1")),
            },
        ) as span:
            try:
                await self.app(scope, receive, answer)
            finally:
                route = self._record(scope, method, status, started)
                span.update_name(f"{method} {route}" if route else method)
                if route:
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(trace.StatusCode.ERROR)

    def _record(self, scope: Scope, method: str, status: int, started: float) -> str | None:
        route = getattr(scope.get("route"), "path", None)
        self.duration.record(
            time.perf_counter() - started,
            {
                "http.request.method": method,
                "http.route": route or "unmatched",
                "http.response.status_code": status,
            },
        )
        return route if isinstance(route, str) else None


def _traceparent(scope: Scope) -> dict[str, str]:
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return {"traceparent": value.decode("latin-1")}
    return {}


def instrument_http(app: FastAPI, metrics: Metrics, *, token: str | None) -> None:
    """Add ``GET /metrics`` (behind ``token`` if there is one) and, outermost of all
    middleware (so a request a gate refuses is traced and counted too), the request span
    and histogram. Call it last."""
    app.state.metrics = metrics

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics (text exposition format); no personal data",
        description="Counters, gauges and histograms of this service (docs/observability.md). "
        "Labels name agencies, event types, routes, outcomes and reasons, never a person. "
        "With INFOSHARE_METRICS_TOKEN set, only `Authorization: Bearer <token>` may read them.",
        response_class=Response,
        responses={
            200: {"content": {CONTENT_TYPE.split(";")[0]: {}}},
            401: {"description": "with INFOSHARE_METRICS_TOKEN set, a request without it"},
        },
    )
    async def prometheus_metrics(request: Request) -> Response:
        if not scrape_allowed(request.headers.get("authorization"), token):
            return JSONResponse(
                {"detail": "the metrics token is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Off the event loop: a gauge may be read from a database when scraped.
        text = await asyncio.to_thread(request.app.state.metrics.exposition)
        return Response(text, media_type=CONTENT_TYPE)

    app.add_middleware(HttpTelemetry, metrics=metrics)
