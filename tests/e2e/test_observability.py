"""What operators see of the scenario, read back from real backends: the plan's one trace in
Zipkin, from the social care request to the audit write; the same trace over OTLP in Jaeger,
linked from each recipient's delivery trace; every component scraped by Prometheus; and not
one span, span event, attribute or series label naming a child."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from deploy.devstack.demo.observe import caught_up
from deploy.devstack.demo.play import Outcome, wait_for
from deploy.devstack.observe import JaegerServer, PrometheusServer, ZipkinServer
from deploy.devstack.stack import Stack
from services.socialcare.mapping import PLAN_STARTED
from tests.conftest import PrometheusFactory
from tests.e2e.scenario_data import IDENTIFYING

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


def plan_trace(outcome: Outcome, zipkin: ZipkinServer) -> list[dict[str, Any]]:
    """The plan's trace once every service on its path has sent its spans."""
    (trace_id,) = {
        r["trace_id"]
        for r in outcome.audit
        if r["event_type"] == PLAN_STARTED and r["action"] == "disclose"  # not its correction
    }
    path = {f"infoshare-{name}" for name in ("socialcare", "processor", "delivery", "audit")}
    found: list[dict[str, Any]] = []

    def whole() -> bool:
        answer = httpx.get(f"{zipkin.base_url}/api/v2/trace/{trace_id}")
        found[:] = answer.json() if answer.status_code == 200 else []
        return {s["localEndpoint"]["serviceName"] for s in found} >= path

    wait_for("the plan's whole trace in Zipkin", whole)
    return found


def test_the_plan_is_one_trace_from_the_request_to_the_audit_write(
    stack: Stack, outcome: Outcome, zipkin: ZipkinServer
) -> None:
    spans = plan_trace(outcome, zipkin)
    by_id = {s["id"]: s for s in spans}
    ns = stack.config.namespace

    def one(service: str, name: str) -> dict[str, Any]:
        (span,) = [
            s
            for s in spans
            if s["localEndpoint"]["serviceName"] == f"infoshare-{service}" and s["name"] == name
        ]
        return span

    def parent(span: dict[str, Any]) -> dict[str, Any]:
        return by_id[span["parentId"]]

    request = one("socialcare", "post /child-protection-plans")
    assert request["kind"] == "SERVER" and "parentId" not in request
    assert request["tags"]["http.route"] == "/child-protection-plans"
    assert request["tags"]["http.response.status_code"] == "202"
    send = one("socialcare", f"send {ns}source.la-northshire")
    assert parent(parent(send)) == request  # request > create (the outbox) > send
    process = one("processor", f"process {ns}source.la-northshire")
    assert parent(process)["name"] == f"create {ns}source.la-northshire"
    decisions = [orjson.loads(a["value"]) for a in process.get("annotations", [])]
    assert {
        "decision": {
            "infoshare.outcome": "shared",
            "infoshare.overridden": False,
            "infoshare.protocol": "cpis-protection-plan-flag@2",
            "infoshare.reason_code": "shared.protocol_allows",
            "infoshare.recipient": "nhs-riverside-ed",
        }
    } in decisions
    flag = one("processor", f"create {ns}deliver.nhs-riverside-ed")
    assert parent(flag) == process
    # Each delivery goes on in the event's trace in the delivery service; the ED's own
    # service, the recipient's side, never opens it: its read is in the ED's trace alone.
    assert parent(one("delivery", f"process {ns}deliver.nhs-riverside-ed")) == flag
    assert not [s for s in spans if s["localEndpoint"]["serviceName"] == "infoshare-health"]
    assert parent(one("audit", "write audit")) == process


def test_no_span_names_a_child(stack: Stack, outcome: Outcome, zipkin: ZipkinServer) -> None:
    """Every span Zipkin received from every component of the stack, with its tags and
    events: none holds an identifier, a name, a date of birth or a postcode."""
    plan_trace(outcome, zipkin)  # the scenario's spans have been exported
    day_ms = 24 * 3600 * 1000
    scanned = 0
    for name in [r.component.name for r in stack.running]:
        answer = httpx.get(
            f"{zipkin.base_url}/api/v2/traces",
            params={"serviceName": f"infoshare-{name}", "limit": 100000, "lookback": day_ms},
        )
        answer.raise_for_status()
        traces = answer.json()
        scanned += sum(len(t) for t in traces)
        text = orjson.dumps(traces).decode()
        leaked = [v for v in IDENTIFYING if v in text]
        assert not leaked, f"spans of infoshare-{name} hold {len(leaked)} identifying value(s)"
    assert scanned > 50


def built_jaeger(jaeger: JaegerServer | None) -> JaegerServer:
    if jaeger is None:
        pytest.skip("no Go here, so no Jaeger (make test builds it wherever Go is)")
    return jaeger


def test_over_otlp_jaeger_links_each_recipients_delivery_trace_to_the_plans_trace(
    stack: Stack, outcome: Outcome, jaeger: JaegerServer | None
) -> None:
    """Zipkin cannot show span links. Jaeger, a standard OTLP backend, receives the same
    spans over OTLP/HTTP: the plan's trace, and each recipient's delivery trace (a trace of
    its own, so trace ids link nothing between recipients) linked to the span in the
    plan's trace that made the delivery."""
    jaeger = built_jaeger(jaeger)
    (trace_id,) = {
        r["trace_id"]
        for r in outcome.audit
        if r["event_type"] == PLAN_STARTED and r["action"] == "disclose"  # not its correction
    }
    ns = stack.config.namespace
    spans: list[dict[str, Any]] = []

    def arrived() -> bool:
        spans[:] = jaeger.spans(trace_id=trace_id)
        return {"infoshare-processor", "infoshare-delivery", "infoshare-audit"} <= {
            s["service"] for s in spans
        }

    wait_for("the plan's trace in Jaeger", arrived)
    creates = {
        s["spanId"]: s["name"].removeprefix(f"create {ns}deliver.")
        for s in spans
        if s["service"] == "infoshare-processor" and s["name"].startswith(f"create {ns}deliver.")
    }
    assert "nhs-riverside-ed" in creates.values()
    linked: dict[str, str] = {}

    def all_linked() -> bool:
        linked.update(
            jaeger.linked_from(trace_id, service="infoshare-processor", operation="deliver")
        )
        return set(linked) >= set(creates)

    wait_for("every recipient's delivery trace linked to the plan's", all_linked)
    assert set(linked) == set(creates)
    assert len(set(linked.values())) == len(linked)  # a trace of its own for each


def test_no_attribute_jaeger_holds_names_a_child(
    stack: Stack, outcome: Outcome, jaeger: JaegerServer | None
) -> None:
    """Every span of every component that reached Jaeger over OTLP, its attributes, events,
    links and resource included: none holds an identifier, a name, a date of birth or a
    postcode."""
    jaeger = built_jaeger(jaeger)
    scanned = 0
    for name in [r.component.name for r in stack.running]:
        spans = jaeger.spans(service=f"infoshare-{name}", limit=10000)
        scanned += len(spans)
        text = orjson.dumps(spans).decode()
        leaked = [v for v in IDENTIFYING if v in text]
        assert not leaked, f"spans of infoshare-{name} hold {len(leaked)} identifying value(s)"
    assert scanned > 50


def test_prometheus_scrapes_every_component_and_no_label_names_a_child(
    stack: Stack, outcome: Outcome, prometheus_factory: PrometheusFactory
) -> None:
    jobs = {
        f"infoshare-{r.component.name}": [f"127.0.0.1:{stack.port(r.component)}"]
        for r in stack.running
    }
    with prometheus_factory(jobs) as prometheus:
        wait_for("every component scraped", lambda: _all_up(prometheus, len(jobs)))
        wait_for("the decisions counted in Prometheus", lambda: caught_up(prometheus, stack))
        shared = prometheus.query('sum(infoshare_decisions_total{outcome="shared"})')
        assert shared and shared[0].value > 0
        assert _total(prometheus, "infoshare_agency_events_accepted_total") >= 1
        stored = _total(prometheus, "infoshare_audit_records_ingested_total")
        assert stored >= _total(prometheus, "infoshare_decisions_total")
        assert _total(prometheus, "infoshare_decisions_overridden_total") >= 1
        lag = prometheus.query('infoshare_consumer_lag{group=~".*processor.*"}')
        assert lag, "the processor's lag per partition"
        labels = orjson.dumps(prometheus.series('{__name__=~"infoshare_.*|http_.*"}')).decode()
        leaked = [v for v in IDENTIFYING if v in labels]
        assert not leaked, f"series labels hold {len(leaked)} identifying value(s)"


def _all_up(prometheus: PrometheusServer, jobs: int) -> bool:
    samples = prometheus.query("up")
    return len(samples) == jobs and all(s.value == 1 for s in samples)


def _total(prometheus: PrometheusServer, metric: str) -> float:
    samples = prometheus.query(f"sum({metric})")
    return samples[0].value if samples else 0.0
