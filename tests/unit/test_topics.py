"""Topic names are a contract (ACLs, dashboards, runbooks depend on them)."""

from __future__ import annotations

from services.backbone.directory import Directory
from services.backbone.topics import (
    TRANSIT_RETENTION_MS,
    Topics,
    TopicSpec,
)
from tests.unit.factories import ED, LA, PH


def test_names_without_a_namespace() -> None:
    topics = Topics()
    assert topics.source(LA) == "source.la-northshire"
    assert topics.deliver(PH) == "deliver.ph-northshire"
    assert topics.state("protection-plans") == "state.protection-plans"
    assert topics.dlq("processor") == "dlq.processor"
    assert topics.audit == "audit.decisions"
    assert topics.consent_records == "consent.records"


def test_a_namespace_prefixes_every_name(directory: Directory) -> None:
    names = [s.name for s in Topics(namespace="t1.").all_specs(directory)]
    assert all(n.startswith("t1.") for n in names)


def test_all_specs(directory: Directory) -> None:
    specs = {s.name: s for s in Topics(partitions=6, replication=3).all_specs(directory)}
    assert list(specs) == [
        f"source.{LA}",
        f"source.{ED}",
        "source.school-oakfield",
        f"deliver.{LA}",
        f"deliver.{ED}",
        "deliver.school-oakfield",
        f"deliver.{PH}",
        "audit.decisions",
        "audit.activity",
        "audit.checkpoints",
        "state.protection-plans",
        "state.seen-events",
        "state.disclosed",
        "consent.records",
        "dlq.processor",
        "dlq.audit",
        "dlq.delivery",
        "dlq.outbox",
    ]
    assert {s.replication for s in specs.values()} == {3}
    one = {n for n in specs if n.startswith("dlq.")} | {"audit.checkpoints"}
    assert {s.partitions for n, s in specs.items() if n not in one} == {6}
    assert {s.partitions for n, s in specs.items() if n in one} == {1}


def test_every_class_keeps_its_records_as_declared(directory: Directory) -> None:
    specs = {s.name: s.configs() for s in Topics(replication=3).all_specs(directory)}
    transit = {
        "cleanup.policy": "delete",
        "retention.ms": "3024000000",  # 35 days: a 28-day outage and a week to notice
        "min.insync.replicas": "2",
        "unclean.leader.election.enable": "false",
    }
    assert specs[f"source.{LA}"] == specs[f"deliver.{PH}"] == specs["audit.decisions"] == transit
    assert specs["state.protection-plans"]["cleanup.policy"] == "compact"
    assert specs["state.protection-plans"]["retention.ms"] == "-1"
    assert specs["consent.records"]["retention.ms"] == "-1"
    # The audit trail's anchor: append-only, every checkpoint kept forever.
    assert specs["audit.checkpoints"]["cleanup.policy"] == "delete"
    assert specs["audit.checkpoints"]["retention.ms"] == "-1"
    assert specs["state.seen-events"]["cleanup.policy"] == "compact,delete"
    # Literals, as the docs state them: a constant changed by mistake is caught here.
    assert specs["state.seen-events"]["retention.ms"] == "2592000000"  # 30 days
    assert specs["state.disclosed"]["cleanup.policy"] == "compact,delete"
    assert specs["state.disclosed"]["retention.ms"] == "31536000000"  # 365 days: recalls
    assert specs["dlq.outbox"]["retention.ms"] == "7776000000"  # 90 days


def test_a_single_broker_asks_one_in_sync_replica() -> None:
    assert TopicSpec("t", 1).configs()["min.insync.replicas"] == "1"


def test_an_existing_topic_weaker_than_declared_is_named() -> None:
    spec = TopicSpec("t", 3, replication=3)
    declared = spec.configs()
    assert spec.weaker_than_declared(3, 3, declared) == []
    assert spec.weaker_than_declared(6, 3, {**declared, "retention.ms": "-1"}) == []
    short = spec.weaker_than_declared(
        2,
        1,
        {
            "cleanup.policy": "compact",
            "retention.ms": "604800000",
            "min.insync.replicas": "1",
            "unclean.leader.election.enable": "true",
        },
    )
    assert short == [
        "2 partitions, declared 3",
        "replication factor 1, declared 3",
        "min.insync.replicas 1, declared 2",
        "unclean leader election on",
        "cleanup.policy compact, declared delete",
        f"retention.ms 604800000, declared {TRANSIT_RETENTION_MS}",
    ]
