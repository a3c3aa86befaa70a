"""Topic names are a contract (ACLs, dashboards, runbooks depend on them)."""

from __future__ import annotations

from services.backbone.directory import Directory
from services.backbone.topics import DEDUP_WINDOW_MS, Topics, TopicSpec
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
    assert Topics(partitions=6).all_specs(directory) == [
        TopicSpec(f"source.{LA}", 6),
        TopicSpec(f"source.{ED}", 6),
        TopicSpec("source.school-oakfield", 6),
        TopicSpec(f"deliver.{LA}", 6),
        TopicSpec(f"deliver.{ED}", 6),
        TopicSpec("deliver.school-oakfield", 6),
        TopicSpec(f"deliver.{PH}", 6),
        TopicSpec("audit.decisions", 6),
        TopicSpec("state.protection-plans", 6, compacted=True),
        TopicSpec("state.seen-events", 6, compacted=True, retention_ms=DEDUP_WINDOW_MS),
        TopicSpec("consent.records", 6, compacted=True),
        TopicSpec("dlq.processor", 1),
        TopicSpec("dlq.audit", 1),
        TopicSpec("dlq.delivery", 1),
        TopicSpec("dlq.outbox", 1),
    ]


def test_a_windowed_compacted_topic_also_deletes_old_keys() -> None:
    assert TopicSpec("t", 1).configs() == {}
    assert TopicSpec("t", 1, compacted=True).configs() == {"cleanup.policy": "compact"}
    assert TopicSpec("t", 1, compacted=True, retention_ms=5).configs() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": "5",
    }
