"""What ``infoshare status`` found, as plain data: gathered by status_cmd and status_kafka,
judged by status_judge, drawn by status_render. Nothing here does I/O."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True)
class Probe:
    """One HTTP GET as it went: an answer (status code, JSON body if any) or why none came."""

    url: str
    code: int | None = None
    body: dict[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    where: str  # the URL asked, or the Kafka consumer group
    state: State
    reason: str = ""  # why it is degraded or down
    facts: tuple[str, ...] = ()  # short, for the table: "outbox 0 pending"


@dataclass(frozen=True)
class KafkaStatus:
    bootstrap: str
    reachable: bool
    problem: str = ""


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the reader has no offset here (it starts at the beginning)
    end: int  # last stable offset: the end a read_committed reader can reach
    lag: int  # committed records not read yet (an upper bound unless ``exact``)
    exact: bool


@dataclass(frozen=True)
class GroupLag:
    reader: str  # the component that reads
    group: str  # its consumer group id, or where it keeps its offsets instead
    members: int | None = None  # None: not a Kafka group, or Kafka did not say
    partitions: tuple[PartitionLag, ...] = ()
    known: bool = True  # False: where the reader stands could not be found out
    note: str = ""

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def exact(self) -> bool:
        return all(p.exact for p in self.partitions)


@dataclass(frozen=True)
class DeadLetterDepth:
    topic: str
    records: int  # an upper bound unless ``exact`` (transaction markers take offsets too)
    exact: bool


@dataclass(frozen=True)
class Circuit:
    recipient: str
    state: str  # closed | half-open | open
    failures: int
    retry_in_s: float | None = None


@dataclass(frozen=True)
class AuditCheckpointStatus:
    records: int  # records the store holds (the last sequence number)
    tree_size: int | None = None  # the newest checkpoint covers records 1..tree_size
    created_at: str | None = None
    age_s: float | None = None


@dataclass(frozen=True)
class Report:
    kafka: KafkaStatus
    components: tuple[ComponentStatus, ...]
    groups: tuple[GroupLag, ...] = ()
    dead_letters: tuple[DeadLetterDepth, ...] = ()
    circuits: tuple[Circuit, ...] | None = None  # None: the delivery service did not say
    audit: AuditCheckpointStatus | None = None  # None: the audit service did not say
    notes: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        """Kafka answers and every component is up. Lag, dead letters and open circuits are
        shown, not judged here: alerts on their trends are Prometheus' job."""
        return self.kafka.reachable and all(c.state is State.UP for c in self.components)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["healthy"] = self.healthy
        for group, data in zip(self.groups, doc["groups"], strict=True):
            data["lag"], data["exact"] = group.lag, group.exact
        return doc
