"""deploy/: the Prometheus config, the alert rules and their unit tests pass promtool (each
alert fires on a failing series and not on a healthy one), and the alerts and the Grafana
dashboard query only the metrics infoshare exports, through labels that name no one."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.devstack.debian import can_install
from deploy.devstack.observe.install import ensure_prometheus, find_binaries

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "infoshare.json"

# What the services export, as Prometheus names them (OpenTelemetry's Prometheus reader).
COUNTERS = {
    "infoshare_agency_events_accepted_total",
    "infoshare_outbox_published_total",
    "infoshare_events_received_total",
    "infoshare_decisions_total",
    "infoshare_decisions_overridden_total",
    "infoshare_dead_letters_total",
    "infoshare_deliveries_total",
    "infoshare_webhook_retries_total",
    "infoshare_audit_records_ingested_total",
    "infoshare_audit_verification_failures_total",
}
GAUGES = {
    "infoshare_outbox_pending",
    "infoshare_outbox_oldest_pending_seconds",
    "infoshare_outbox_dead_lettered",
    "infoshare_outbox_kafka_connected",
    "infoshare_consumer_lag",
    "infoshare_webhook_circuit_state",
    "infoshare_audit_checkpoint_age_seconds",
    "infoshare_audit_chain_verified",
}
HISTOGRAMS = {
    "http_server_request_duration_seconds",
    "infoshare_decision_duration_seconds",
    "infoshare_event_latency_seconds",
    "infoshare_audit_ingestion_delay_seconds",
}
EXPORTED = (
    COUNTERS
    | GAUGES
    | {f"{h}_{part}" for h in HISTOGRAMS for part in ("bucket", "count", "sum")}
    | {"up"}  # Prometheus' own, per scraped target
)
# Labels that name a component, an organisation, a pipeline stage or a Kafka position.
SAFE_LABELS = {
    "job",
    "instance",
    "agency",
    "source_agency",
    "recipient",
    "group",
    "topic",
    "partition",
    "stage",
    "channel",
    "outcome",
    "reason_code",
    "event_type",
    "http_request_method",
    "http_route",
    "http_response_status_code",
    "le",
}
_WORDS = {"and", "or", "unless", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or strings)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group() in _WORDS:
            continue  # a function or an aggregation
        names.add(match.group())
    return names


def grouping_labels(expr: str) -> set[str]:
    found = re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr)
    return {label.strip() for group in found for label in group.split(",") if label.strip()}


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target


@pytest.fixture(scope="module")
def promtool() -> Path:
    found = find_binaries()
    if found is None and not can_install():
        pytest.skip("promtool is missing and only root can install it: apt-get install prometheus")
    return (found or ensure_prometheus()).promtool


def run(promtool: Path, *args: str | Path) -> str:
    done = subprocess.run(
        [str(promtool), *map(str, args)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_metric_name_reader_finds_names_and_nothing_else() -> None:
    expr = (
        'sum by (job) (rate(a_total{code=~"5..",x="up"}[$__rate_interval])) / on (job) '
        "histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m]))) > 0 and c offset 10m"
    )
    assert metric_names(expr) == {"a_total", "b_bucket", "c"}


def test_the_prometheus_config_and_alert_rules_pass_promtool(promtool: Path) -> None:
    assert "SUCCESS" in run(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    assert "SUCCESS" in run(promtool, "check", "rules", PROMETHEUS / "alerts.yml")


def test_every_alert_fires_on_a_failing_series_and_not_on_a_healthy_one(promtool: Path) -> None:
    run(promtool, "test", "rules", PROMETHEUS / "alerts_test.yml")
    checks = [
        check
        for test in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
        for check in test["alert_rule_test"]
    ]
    for rule in alert_rules():
        mine = [c for c in checks if c["alertname"] == rule["alert"]]
        assert any(c["exp_alerts"] for c in mine), f"{rule['alert']} is never seen firing"
        assert any(not c["exp_alerts"] for c in mine), f"{rule['alert']} is never seen quiet"


def test_alerts_query_exported_metrics_and_carry_nothing_that_names_a_person() -> None:
    rules = alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules)
    for rule in rules:
        name, expr = rule["alert"], rule["expr"]
        assert metric_names(expr) <= EXPORTED, name
        assert grouping_labels(expr) <= SAFE_LABELS, name
        assert "without" not in expr and "label_replace" not in expr, name
        assert set(rule["labels"]) == {"severity"}, name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert set(rule["annotations"]) == {"summary", "description", "runbook"}, name
        for text in rule["annotations"].values():
            quoted = set(re.findall(r"\{\{\s*([^}]*?)\s*\}\}", text))
            assert quoted <= {"$value"} | {f"$labels.{label}" for label in SAFE_LABELS}, name


def test_the_dashboard_queries_exported_metrics_through_a_chosen_datasource() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["schemaVersion"] >= 36
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    targets = list(dashboard_targets())
    assert len(targets) >= 20
    for title, target in targets:
        assert target["datasource"]["uid"] == "${datasource}", title
        assert metric_names(target["expr"]) <= EXPORTED, title
        assert grouping_labels(target["expr"]) <= SAFE_LABELS, title
        assert set(re.findall(r"\{\{(\w+)\}\}", target["legendFormat"])) <= SAFE_LABELS, title
    shown = set().union(*(metric_names(t["expr"]) for _, t in targets))
    missing = {m for m in EXPORTED if not any(s.startswith(m) for s in shown)}
    assert not missing - {f"{h}_{p}" for h in HISTOGRAMS for p in ("count", "sum")}


def test_the_dashboard_queries_are_valid_promql(promtool: Path, tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, Grafana's variables filled in."""
    rules = [
        {
            "record": f"dashboard:query{i}",
            "expr": t["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h"),
        }
        for i, (_, t) in enumerate(dashboard_targets())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run(promtool, "check", "rules", path)
