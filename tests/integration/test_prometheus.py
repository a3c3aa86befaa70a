"""The metrics backend for real: Debian's Prometheus scrapes a running social care service
over HTTP, and what an agency posted reads back through Prometheus' own API, counted by
agency and type and naming no one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from deploy.devstack.observe import PrometheusServer, Sample
from deploy.devstack.ports import free_listen_port
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.kafka_access import KafkaAccess
from tests.conftest import PrometheusFactory
from tests.integration.agency_helpers import SERVICES, bearer, settings_for, token
from tests.integration.served import served

SOCIALCARE = SERVICES["socialcare"]
AGENCY_ID = SOCIALCARE.agency
AGENCY = f'agency="{AGENCY_ID}"'


def until(
    prometheus: PrometheusServer,
    promql: str,
    check: Callable[[list[Sample]], bool],
    wait_s: float = 60.0,
) -> list[Sample]:
    """The query's result once ``check`` holds for it (Prometheus scrapes every second)."""
    deadline = time.monotonic() + wait_s
    while not check(result := prometheus.query(promql)):
        if time.monotonic() > deadline:
            raise AssertionError(f"not after {wait_s}s: {promql} -> {result}")
        time.sleep(0.1)
    return result


def total(samples: list[Sample]) -> float:
    return sum(s.value for s in samples)


def totals(value: float) -> Callable[[list[Sample]], bool]:
    """The series exist and add up to ``value``."""
    return lambda samples: bool(samples) and total(samples) == value


def personal_values(body: bytes) -> list[str]:
    """What in the posted case record names or identifies someone."""
    doc = json.loads(body)
    child, plan = doc["child"], doc["plan"]
    return [
        *(child[k] for k in ("nhsNumber", "personId", "firstName", "lastName", "dateOfBirth")),
        plan["id"],
        doc["leadPractitioner"]["name"],
        doc["contact"]["phone"],
    ]


def test_prometheus_scrapes_what_the_agency_accepted_and_no_one_is_named(
    prometheus_factory: PrometheusFactory,
    kafka_access: KafkaAccess,
    namespace: str,
    keyring_path: Path,
    tmp_path: Path,
    directory: Directory,
) -> None:
    settings = settings_for(
        SOCIALCARE,
        keyring_path=keyring_path,
        database_url=f"sqlite:///{tmp_path / 'outbox.db'}",
        kafka_bootstrap=kafka_access.bootstrap,
        topic_namespace=namespace,
    )
    asyncio.run(kafka.ensure_topics(kafka_access, settings.topics().all_specs(directory)))
    port = free_listen_port()
    with (
        served(SOCIALCARE.factory(settings), port) as url,
        prometheus_factory({"socialcare": [f"127.0.0.1:{port}"]}) as prometheus,
    ):
        until(prometheus, 'up{job="socialcare"}', totals(1))
        posted = httpx.post(
            url + SOCIALCARE.sample.path,
            content=SOCIALCARE.sample.body,
            headers={"content-type": "application/json", **bearer(token(keyring_path, AGENCY_ID))},
            timeout=30,
        )
        assert posted.status_code == 202, posted.text

        accepted = until(
            prometheus,
            f"infoshare_agency_events_accepted_total{{{AGENCY}}}",
            lambda r: total(r) >= 1,
        )
        assert {s.labels["event_type"] for s in accepted} == {
            e["type"] for e in posted.json()["events"]
        }
        until(prometheus, f"infoshare_outbox_published_total{{{AGENCY}}}", lambda r: total(r) >= 1)
        for gauge, healthy in (
            ("infoshare_outbox_pending", 0),
            ("infoshare_outbox_oldest_pending_seconds", 0),
            ("infoshare_outbox_dead_lettered", 0),
            ("infoshare_outbox_kafka_connected", 1),
        ):
            until(prometheus, f"{gauge}{{{AGENCY}}}", totals(healthy))
        requests = until(
            prometheus,
            'http_server_request_duration_seconds_count{job="socialcare",'
            'http_request_method="POST",http_response_status_code="202"}',
            lambda r: total(r) >= 1,
        )
        assert {s.labels["http_route"] for s in requests} == {SOCIALCARE.sample.path}

        series = prometheus.series('{job="socialcare"}')
    values = {v for labels in series for v in labels.values()}
    assert len(series) > 10
    for personal in personal_values(SOCIALCARE.sample.body):
        assert not [v for v in values if personal in v], personal
