"""Topic names. They are a contract: ACLs, dashboards and runbooks depend on them.

A namespace prefix (empty in production) lets tests and parallel stacks share one broker
without sharing a single topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.backbone.directory import Directory

PROTECTION_PLANS = "protection-plans"
"""``state.protection-plans``: each child's active protection plan, by subject routing key."""
SEEN_EVENTS = "seen-events"
DEDUP_WINDOW_MS = 30 * 24 * 3600 * 1000
"""How long the processor remembers an event id to suppress its duplicates (30 days)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None  # with compaction: keys older than this are deleted too

    def configs(self) -> dict[str, str]:
        if not self.compacted:
            return {}
        if self.retention_ms is None:
            return {"cleanup.policy": "compact"}
        return {"cleanup.policy": "compact,delete", "retention.ms": str(self.retention_ms)}


@dataclass(frozen=True)
class Topics:
    namespace: str = ""
    partitions: int = 3

    def source(self, agency_id: str) -> str:
        return f"{self.namespace}source.{agency_id}"

    def deliver(self, agency_id: str) -> str:
        return f"{self.namespace}deliver.{agency_id}"

    def state(self, name: str) -> str:
        return f"{self.namespace}state.{name}"

    def dlq(self, stage: str) -> str:
        return f"{self.namespace}dlq.{stage}"

    @property
    def audit(self) -> str:
        return f"{self.namespace}audit.decisions"

    @property
    def consent_records(self) -> str:
        return f"{self.namespace}consent.records"

    def all_specs(self, directory: Directory) -> list[TopicSpec]:
        """Every topic the system needs for this directory. Source topics share one
        partition count (co-partitioned) so one processor instance holds all of a child's
        state across agencies."""
        n = self.partitions
        specs = [TopicSpec(self.source(a.id), n) for a in directory.publishers]
        specs += [TopicSpec(self.deliver(a.id), n) for a in directory]
        specs += [
            TopicSpec(self.audit, n),
            TopicSpec(self.state(PROTECTION_PLANS), n, compacted=True),
            TopicSpec(self.state(SEEN_EVENTS), n, compacted=True, retention_ms=DEDUP_WINDOW_MS),
            TopicSpec(self.consent_records, n, compacted=True),
            TopicSpec(self.dlq("processor"), 1),
            TopicSpec(self.dlq("audit"), 1),
            TopicSpec(self.dlq("delivery"), 1),
            TopicSpec(self.dlq("outbox"), 1),
        ]
        return specs
