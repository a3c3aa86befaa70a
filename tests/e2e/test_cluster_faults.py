"""A secured three-broker cluster loses brokers under load: attendances over six partitions,
replicated three times (min.insync.replicas 2, acks=all), decided by the processor as its
own principal while one broker is SIGKILLed and restarted, then a second.

Pass: nothing lost, nothing duplicated, per-child order kept, the authority told once per
plan (access back), and one audit record per decision.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.bench.loadgen import ED_SOURCE, Workload, publish
from deploy.devstack.broker import BrokerCluster
from deploy.devstack.paths import default_cache_dir
from deploy.devstack.ports import free_listen_port
from deploy.devstack.principals import StackPrincipals
from services.backbone import kafka
from services.backbone.directory import Directory
from services.backbone.keyring import Keyring
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics
from tests.e2e.fault_checks import assert_logs_hold_no_identifiers, audit_summary, log, verify
from tests.e2e.fault_harness import (
    ProcessorProcess,
    Progress,
    processor_environment,
    wait_for_progress,
)
from tests.integration.kafka_helpers import read_all
from tests.unit.factories import LA

# Three brokers beside a parallel suite would starve it: run alone (make test-cluster).
pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.cluster]

EVENTS = 20_000
PARTITIONS = 6


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[BrokerCluster]:
    """Three brokers of this test's own: two are crashed on purpose."""
    brokers = BrokerCluster(
        tmp_path / "kafka", default_cache_dir(), base_port=free_listen_port(9), size=3
    )
    brokers.start()
    try:
        yield brokers
    finally:
        brokers.stop()


async def test_the_pipeline_survives_losing_one_broker_then_another(
    cluster: BrokerCluster,
    tmp_path: Path,
    keyring_path: Path,
    keyring: Keyring,
    directory: Directory,
) -> None:
    admin = cluster.admin_access()
    namespace = "cluster."
    topics = Topics(namespace=namespace, partitions=PARTITIONS, replication=3)
    schemas = SchemaRegistry.load()
    await kafka.ensure_topics(admin, topics.all_specs(directory))
    principals = StackPrincipals(tmp_path / "kafka-clients", namespace)
    principals.provision(admin, directory, topics)
    workload = Workload.make(events=EVENTS, children=500, authority_name=directory.get(LA).name)
    sources = [topics.source(LA), topics.source(ED_SOURCE)]
    group = Topics(namespace=namespace).processor_group
    env = processor_environment(admin, principals, topics, keyring_path)
    common: dict[str, Any] = {
        "access": admin,
        "topics": topics,
        "keyring": keyring,
        "schemas": schemas,
    }
    progress = Progress(admin)
    processor = ProcessorProcess("p1", env, tmp_path)

    async def until(target: int) -> None:
        await wait_for_progress(
            progress, group, sources, target, wait_s=600, report=log, alive=lambda: processor.alive
        )

    try:
        plans = await publish(workload.plan_events(), **common)
        processor.start()
        await until(plans)
        attendances = await publish(workload.attendance_events(), **common)
        total = plans + attendances
        for node_id, share in ((1, 0.3), (2, 0.6)):
            await until(int(total * share))
            log(f"SIGKILL broker {node_id} under load")
            assert cluster.node(node_id).kill()
            await until(int(total * share) + 500)  # decided with one broker down
            cluster.node(node_id).start()
            log(f"broker {node_id} back")
        await until(total)
        assert processor.alive, "the processor died of a broker's loss"
    finally:
        await progress.close()
        status = processor.stop()
    assert status == 0, f"the processor exited with {status}"

    audits = await read_all(topics.audit, admin, audit_summary)
    await verify(workload, admin, topics, keyring, plans, attendances, audits)
    assert_logs_hold_no_identifiers([processor], workload)
