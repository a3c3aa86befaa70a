"""Topic names. They are a contract: ACLs, dashboards and runbooks depend on them.

A namespace prefix (empty in production) lets tests and parallel stacks share one broker
without sharing a single topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.backbone.directory import Directory
from services.backbone.recall import RECALL_WINDOW_MS

PROTECTION_PLANS = "protection-plans"
"""``state.protection-plans``: each child's active protection plan, by subject routing key."""
SEEN_EVENTS = "seen-events"
DEDUP_WINDOW_MS = 30 * 24 * 3600 * 1000
"""How long the processor remembers an event id to suppress its duplicates (30 days)."""
DISCLOSED = "disclosed"
"""``state.disclosed``: who received each event (consent/processor/disclosed.py), for recalls;
kept for the recall window (services/backbone/recall.py)."""
DEAD_LETTER_STAGES = ("processor", "audit", "delivery", "outbox")
PROCESSOR_GROUP = "infoshare-processor"
AUDIT_GROUP = "infoshare-audit"
"""Consumer group ids (each behind the topic namespace), declared rather than configured:
the ACLs grant exactly these (delivery keeps its positions in its store, not in a group)."""


DAY_MS = 24 * 3600 * 1000
OUTAGE_SURVIVED_DAYS = 28
"""The longest outage of a consumer (delivery, the audit store, a recipient, the processor)
that loses nothing: every topic read by another component keeps its records at least this
long, plus a week to notice and recover (docs/operations.md)."""
TRANSIT_RETENTION_MS = (OUTAGE_SURVIVED_DAYS + 7) * DAY_MS
DEAD_LETTER_RETENTION_MS = 90 * DAY_MS
"""Dead letters wait for a person: a quarter is long enough to be looked at and retried."""


@dataclass(frozen=True)
class TopicSpec:
    """One topic as declared: every setting the stack applies, and checks an existing topic
    against. ``retention_ms`` None: a plain topic keeps records TRANSIT_RETENTION_MS, a
    compacted table keeps each key's last value forever."""

    name: str
    partitions: int
    compacted: bool = False
    retention_ms: int | None = None
    replication: int = 1

    def configs(self) -> dict[str, str]:
        """The topic's configs, as given to CreateTopics and compared by the check."""
        retention = self.retention_ms
        if retention is None:
            retention = -1 if self.compacted else TRANSIT_RETENTION_MS
        policy = "delete"
        if self.compacted:
            policy = "compact" if retention < 0 else "compact,delete"
        configs = {
            "cleanup.policy": policy,
            "retention.ms": str(retention),
            # A write is acknowledged by two replicas of three: one broker may fail.
            "min.insync.replicas": str(min(2, self.replication)),
            "unclean.leader.election.enable": "false",
        }
        return configs

    def weaker_than_declared(
        self, partitions: int, replication: int, configs: dict[str, str]
    ) -> list[str]:
        """How an existing topic with these facts falls short of this declaration."""
        short = []
        if partitions < self.partitions:
            short.append(f"{partitions} partitions, declared {self.partitions}")
        if replication < self.replication:
            short.append(f"replication factor {replication}, declared {self.replication}")
        wanted = self.configs()
        if int(configs.get("min.insync.replicas", "1")) < int(wanted["min.insync.replicas"]):
            short.append(
                f"min.insync.replicas {configs.get('min.insync.replicas')}, "
                f"declared {wanted['min.insync.replicas']}"
            )
        if configs.get("unclean.leader.election.enable", "false") == "true":
            short.append("unclean leader election on")
        if set(configs.get("cleanup.policy", "delete").split(",")) != set(
            wanted["cleanup.policy"].split(",")
        ):
            short.append(
                f"cleanup.policy {configs.get('cleanup.policy')}, "
                f"declared {wanted['cleanup.policy']}"
            )
        kept, declared = _forever(configs.get("retention.ms")), _forever(wanted["retention.ms"])
        if kept < declared:
            short.append(
                f"retention.ms {configs.get('retention.ms')}, declared {wanted['retention.ms']}"
            )
        return short


def _forever(retention_ms: str | None) -> float:
    value = int(retention_ms) if retention_ms is not None else 7 * DAY_MS
    return float("inf") if value < 0 else float(value)


@dataclass(frozen=True)
class Topics:
    namespace: str = ""
    partitions: int = 3
    replication: int = 1

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
    def audit_activity(self) -> str:
        """Audit records of everyone but the processor (consent recorded and searched,
        re-identifications, pushes given up, publications refused, dead letters retried).
        Disclosure decisions come only on ``audit``, which only the processor may write:
        the audit service turns one arriving here away (services/audit/ingest.py)."""
        return f"{self.namespace}audit.activity"

    @property
    def audit_checkpoints(self) -> str:
        """The audit trail's signed checkpoints, published as an anchor outside its store
        (services/audit/anchoring.py): one partition, kept forever."""
        return f"{self.namespace}audit.checkpoints"

    @property
    def consent_records(self) -> str:
        return f"{self.namespace}consent.records"

    @property
    def processor_group(self) -> str:
        """The processor's consumer group, and the prefix of its transactional ids."""
        return f"{self.namespace}{PROCESSOR_GROUP}"

    @property
    def audit_group(self) -> str:
        return f"{self.namespace}{AUDIT_GROUP}"

    def all_specs(self, directory: Directory) -> list[TopicSpec]:
        """Every topic the system needs for this directory, declared by class. Source topics
        and the state changelogs share one partition count (co-partitioned) so one processor
        instance holds all of a child's state across agencies."""
        n, r = self.partitions, self.replication

        def transit(name: str) -> TopicSpec:
            return TopicSpec(name, n, replication=r)

        def table(name: str, *, forget_after_ms: int | None = None) -> TopicSpec:
            return TopicSpec(name, n, compacted=True, retention_ms=forget_after_ms, replication=r)

        def dead_letters(stage: str) -> TopicSpec:
            return TopicSpec(
                self.dlq(stage), 1, retention_ms=DEAD_LETTER_RETENTION_MS, replication=r
            )

        specs = [transit(self.source(a.id)) for a in directory.publishers]
        specs += [transit(self.deliver(a.id)) for a in directory]
        specs += [
            transit(self.audit),
            transit(self.audit_activity),
            TopicSpec(self.audit_checkpoints, 1, retention_ms=-1, replication=r),
            table(self.state(PROTECTION_PLANS)),
            table(self.state(SEEN_EVENTS), forget_after_ms=DEDUP_WINDOW_MS),
            table(self.state(DISCLOSED), forget_after_ms=RECALL_WINDOW_MS),
            table(self.consent_records),
        ]
        specs += [dead_letters(stage) for stage in DEAD_LETTER_STAGES]
        return specs
