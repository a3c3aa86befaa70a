"""The observability backends a stack can run beside itself (``infoshare up``, the demo):
Zipkin, which every component sends its spans to; Jaeger, which gets the same spans over
OTLP and shows their links, when its binary has been built (``infoshare observe fetch``);
and Prometheus, which scrapes every component's ``/metrics`` with the alert rules of
``deploy/prometheus``.

None is needed for the stack to work: one that cannot be had (no root to install
Prometheus, no network for Zipkin's jar, no Go for Jaeger) is announced and left out.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deploy.devstack.observe import JaegerServer, ObserveError, PrometheusServer, ZipkinServer
from deploy.devstack.observe.jaeger import built

RULES = Path(__file__).resolve().parents[1] / "prometheus" / "alerts.yml"


class Observers:
    def __init__(self, *, state_dir: Path, cache_dir: Path, ports: Mapping[str, int]) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.zipkin_port = ports.get("zipkin", 9411)
        self.prometheus_port = ports.get("prometheus", 9090)
        self.zipkin: ZipkinServer | None = None
        self.prometheus: PrometheusServer | None = None
        self.jaeger: JaegerServer | None = None
        # Jaeger only when built: building takes minutes, so `up` never does it unasked.
        self._jaeger = (
            JaegerServer(
                state_dir=self.state_dir / "jaeger",
                cache_dir=cache_dir,
                otlp_port=ports.get("jaeger-otlp", 4318),
                query_port=ports.get("jaeger", 16686),
                health_port=ports.get("jaeger-health", 13133),
            )
            if built(cache_dir) is not None
            else None
        )
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self._starting: concurrent.futures.Future[ZipkinServer] | None = None
        self._starting_jaeger: concurrent.futures.Future[JaegerServer] | None = None

    def begin_zipkin(self) -> None:
        """Start Zipkin (and Jaeger, if built) in the background (Zipkin's JVM takes a
        while): ``settle`` waits."""
        server = ZipkinServer(
            state_dir=self.state_dir / "zipkin", cache_dir=self.cache_dir, port=self.zipkin_port
        )
        self._starting = self._pool.submit(server.start)
        if self._jaeger is not None:
            self._starting_jaeger = self._pool.submit(self._jaeger.start)

    def component_env(self) -> dict[str, str]:
        """What every component needs to send its spans to our Zipkin; nothing if the
        operator has chosen an exporter (``OTEL_TRACES_EXPORTER``) already."""
        if os.environ.get("OTEL_TRACES_EXPORTER"):
            return {}
        spans = f"http://127.0.0.1:{self.zipkin_port}/api/v2/spans"
        otlp = (
            {}
            if self._jaeger is None
            else {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": self._jaeger.otlp_url}
        )
        return {
            "OTEL_TRACES_EXPORTER": "zipkin" if self._jaeger is None else "zipkin,otlp",
            "OTEL_EXPORTER_ZIPKIN_ENDPOINT": spans,
            **otlp,
            "OTEL_BSP_SCHEDULE_DELAY": "500",  # ms: an operator looks right after a request
            # A local stack records every trace (the product's default is a tenth): whoever
            # runs it looks at one event at a time.
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
        }

    def settle(self, scrape: Mapping[str, list[str]], announce: Callable[[Any], None]) -> None:
        """Wait for Zipkin, start Prometheus on the components; announce either's absence."""
        if self._starting is not None:
            try:
                self.zipkin = self._starting.result()
                announce(f"Zipkin (traces) at {self.zipkin.base_url}")
            except ObserveError as exc:
                announce(f"[yellow]no trace backend[/]: {exc}")
        if self._starting_jaeger is not None:
            try:
                self.jaeger = self._starting_jaeger.result()
                announce(f"Jaeger (traces over OTLP, with links) at {self.jaeger.base_url}")
            except ObserveError as exc:
                announce(f"[yellow]no Jaeger[/]: {exc}")
        else:
            announce("no Jaeger: not built (`infoshare observe fetch` builds it, with Go)")
        try:
            rules = [RULES] if RULES.exists() else []
            prometheus = PrometheusServer(
                state_dir=self.state_dir / "prometheus",
                port=self.prometheus_port,
                scrape=scrape,
                scrape_interval="2s",
                rule_files=rules,
                token=os.environ.get("INFOSHARE_METRICS_TOKEN") or None,
            )
            self.prometheus = prometheus.start()
            announce(f"Prometheus (metrics, alerts) at {prometheus.base_url}")
        except ObserveError as exc:
            announce(f"[yellow]no Prometheus[/]: {exc}")

    def stop(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None and self.zipkin is None:  # the stack failed before settle
            with contextlib.suppress(ObserveError):
                self.zipkin = starting.result()
        starting_jaeger, self._starting_jaeger = self._starting_jaeger, None
        if starting_jaeger is not None and self.jaeger is None:
            with contextlib.suppress(ObserveError):
                self.jaeger = starting_jaeger.result()
        for server in (self.prometheus, self.zipkin, self.jaeger):
            if server is not None:
                server.stop()
        self.prometheus = self.zipkin = self.jaeger = None
        self._pool.shutdown(wait=True)
