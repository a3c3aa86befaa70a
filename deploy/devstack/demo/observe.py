"""What an operator sees of the demo: the plan event's whole trace, read back from Zipkin,
and the counters it moved, read back from Prometheus. Rendering lives in ``demo_render``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from deploy.devstack.demo.play import Outcome, ScenarioFailed, wait_for
from deploy.devstack.observe import JaegerServer, ObserveError, PrometheusServer
from deploy.devstack.stack import Stack
from services.socialcare.mapping import PLAN_STARTED

# Every service the plan's path crosses in its trace: the social care request, the
# processor's decision, the delivery service's read and the audit write. (The ED's own
# service reads its delivery in a trace of the ED's own.)
PATH = {"infoshare-socialcare", "infoshare-processor", "infoshare-delivery", "infoshare-audit"}
COUNTERS = {
    "events accepted by agencies": "sum by (agency) (infoshare_agency_events_accepted_total)",
    "decisions by outcome": "sum by (outcome) (infoshare_decisions_total)",
    "decisions under an override": "sum(infoshare_decisions_overridden_total)",
    "suppressed duplicates": "sum(infoshare_events_duplicate_total)",
    "dead letters by stage": "sum by (stage) (infoshare_dead_letters_total)",
    "audit records stored": "sum(infoshare_audit_records_ingested_total)",
    "mean acceptance to decision (s)": "sum(infoshare_event_latency_seconds_sum)"
    " / sum(infoshare_event_latency_seconds_count)",
}


@dataclass(frozen=True)
class SpanRow:
    depth: int
    service: str
    name: str
    duration_ms: float


@dataclass
class Operations:
    trace_id: str | None = None
    trace_url: str | None = None
    jaeger_url: str | None = None  # the same trace over OTLP, with its links
    linked_deliveries: int = 0  # recipients' delivery traces Jaeger shows linked to it
    spans: list[SpanRow] = field(default_factory=list)
    counters: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def observe(stack: Stack, outcome: Outcome, *, timeout: float = 30.0) -> Operations:
    seen = Operations()
    observers = stack.observers
    zipkin = observers.zipkin if observers else None
    prometheus = observers.prometheus if observers else None
    plan = [r for r in outcome.audit if r["event_type"] == PLAN_STARTED and r.get("trace_id")]
    if zipkin is None:
        seen.notes.append("no trace backend ran (see above)")
    elif not plan:
        seen.notes.append("the plan's audit records name no trace")
    else:
        seen.trace_id = plan[0]["trace_id"]
        seen.trace_url = f"{zipkin.base_url}/zipkin/traces/{seen.trace_id}"
        seen.spans, missing = _trace(f"{zipkin.base_url}/api/v2/trace/{seen.trace_id}", timeout)
        if missing:
            seen.notes.append(f"no spans in time from {', '.join(sorted(missing))}")
        jaeger = observers.jaeger if observers else None
        if jaeger is not None:
            seen.jaeger_url = f"{jaeger.base_url}/trace/{seen.trace_id}"
            seen.linked_deliveries = _linked(jaeger, seen.trace_id, timeout)
    if prometheus is None:
        seen.notes.append("no Prometheus ran (see above)")
    else:
        wait_for(
            "Prometheus to scrape the processor's latest counts",
            lambda: caught_up(prometheus, stack),
            timeout=timeout,
        )
        for title, promql in COUNTERS.items():
            try:
                samples = prometheus.query(promql)
            except ObserveError as exc:
                seen.notes.append(f"{title}: {exc}")
                continue
            seen.counters[title] = [
                (", ".join(s.labels.values()) or "all", s.value) for s in samples
            ]
    return seen


def _linked(jaeger: JaegerServer, trace_id: str, timeout: float) -> int:
    """How many recipients' delivery traces Jaeger shows linked to the plan's trace."""
    found: dict[str, str] = {}

    def some() -> bool:
        found.update(
            jaeger.linked_from(trace_id, service="infoshare-processor", operation="deliver")
        )
        return bool(found)

    try:
        wait_for("the delivery traces' links in Jaeger", some, timeout=timeout)
    except ScenarioFailed:
        return 0
    return len(found)


def _trace(url: str, timeout: float) -> tuple[list[SpanRow], set[str]]:
    """The trace's spans once every service on the path has exported its part, as a tree;
    and the services that had not when the time was up."""
    found: list[dict[str, Any]] = []

    def complete() -> bool:
        answer = httpx.get(url, timeout=5.0)
        if answer.status_code != 200:
            return False
        found[:] = answer.json()
        return {s.get("localEndpoint", {}).get("serviceName") for s in found} >= PATH

    try:
        wait_for("the plan's whole trace in Zipkin", complete, timeout=timeout)
    except ScenarioFailed:
        if not found:
            raise
    children: dict[str | None, list[dict[str, Any]]] = {}
    ids = {s["id"] for s in found}
    for span in sorted(found, key=lambda s: s.get("timestamp", 0)):
        parent = span.get("parentId") if span.get("parentId") in ids else None
        children.setdefault(parent, []).append(span)
    rows: list[SpanRow] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            rows.append(
                SpanRow(
                    depth,
                    span.get("localEndpoint", {}).get("serviceName", "?"),
                    span.get("name", "?"),
                    span.get("duration", 0) / 1000,
                )
            )
            walk(span["id"], depth + 1)

    walk(None, 0)
    return rows, PATH - {row.service for row in rows}


def caught_up(prometheus: PrometheusServer, stack: Stack) -> bool:
    """Prometheus holds the processor's current decision count (and it is not zero)."""
    samples = prometheus.query("sum(infoshare_decisions_total)")
    text = httpx.get(f"{stack.url('processor')}/metrics", timeout=5.0).text
    total = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "infoshare_decisions"
        for sample in family.samples
        if sample.name == "infoshare_decisions_total"
    )
    return bool(samples) and samples[0].value == total and total > 0
