"""The dead-letter contract: what a record on ``dlq.<stage>`` carries, written and read here
only.

A dead letter is the original record (key, value and headers as the stage read or was given
them) plus headers ``dlq_*`` that say which stage gave up on it, why, and where it came from.
Every writer (the processor, the audit service, the delivery service, an agency's outbox
relay) builds them with :func:`dead_letter_headers`; ``infoshare dlq`` reads them back with
:class:`DeadLetter`. Every ``dlq_*`` value is written by infoshare and names no person: a
reason names rules and fields, never a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from services.backbone import records

Header = records.Header
Headers = list[Header]

PREFIX = "dlq_"
REASON = "dlq_reason"  # why the stage gave up, in words
STAGE = "dlq_stage"  # processor | audit | delivery | outbox
TOPIC = "dlq_topic"  # where the record was read (or, for the outbox, was to be published)
PARTITION = "dlq_partition"  # absent when the record never reached a partition
OFFSET = "dlq_offset"  # likewise
VALUE_DROPPED = "dlq_value_dropped"  # present when the value was too large to keep: why
SUBSCRIPTION = "dlq_subscription"  # delivery: the subscription that gave up
EVENT_NUMBER = "dlq_event_number"  # delivery: the notification's number in it
RETRY_OF = "infoshare_retry_of"  # on a record re-published by ``infoshare dlq retry``
FIELDS = (REASON, STAGE, TOPIC, PARTITION, OFFSET, VALUE_DROPPED, SUBSCRIPTION, EVENT_NUMBER)


@dataclass(frozen=True)
class Origin:
    """Where a dead letter came from: a topic, and its partition and offset if it was read
    from one."""

    topic: str
    partition: int | None = None
    offset: int | None = None

    def __str__(self) -> str:
        if self.partition is None or self.offset is None:
            return self.topic
        return f"{self.topic}[{self.partition}]@{self.offset}"


def dead_letter_headers(
    original: Iterable[Header],
    *,
    stage: str,
    reason: str,
    origin: Origin,
    **more: str | int,
) -> Headers:
    """The original headers (without any earlier ``dlq_*``: a letter retried and failed
    again says only why this time) and this contract's: ``dlq_reason``, ``dlq_stage``,
    ``dlq_topic``, ``dlq_partition`` and ``dlq_offset`` when known, then ``more`` as
    ``dlq_<name>`` (``value_dropped``, ``subscription``, ``event_number``)."""
    fields: dict[str, str | int | None] = {
        REASON: reason,
        STAGE: stage,
        TOPIC: origin.topic,
        PARTITION: origin.partition,
        OFFSET: origin.offset,
    }
    for name, value in more.items():
        if PREFIX + name not in FIELDS:
            raise ValueError(f"dlq_{name} is not in the dead-letter contract")
        fields[PREFIX + name] = value
    kept = [(k, v) for k, v in original if not k.startswith(PREFIX)]
    return kept + [(k, str(v).encode()) for k, v in fields.items() if v is not None]


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``dlq.<stage>`` topic as read (key and value kept only to retry)."""

    stage: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = field(default_factory=tuple)

    def header(self, name: str) -> str | None:
        """The last header of this name as text; None if absent or null."""
        found = [v for k, v in self.headers if k == name and v is not None]
        return found[-1].decode(errors="replace") if found else None

    @property
    def where(self) -> str:
        """``dlq.processor@5`` (the partition only when it is not 0)."""
        part = f"[{self.partition}]" if self.partition else ""
        return f"{self.topic}{part}@{self.offset}"

    @property
    def origin(self) -> Origin | None:
        """Where the record was when it failed; None if the headers do not name a topic, or
        name a partition or offset that is not a number."""
        topic = self.header(TOPIC)
        if not topic:
            return None
        try:
            numbers = [None if t is None else int(t) for t in map(self.header, (PARTITION, OFFSET))]
        except ValueError:
            return None
        return Origin(topic, *numbers)

    @property
    def reason(self) -> str | None:
        return self.header(REASON)

    @property
    def recorded(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def fields(self) -> dict[str, str]:
        """Every field of the contract this letter carries, by header name, in the
        contract's order."""
        return {name: value for name in FIELDS if (value := self.header(name)) is not None}


def retry_headers(letter: DeadLetter) -> Headers:
    """The original headers, without the dead letter's, naming the letter retried."""
    kept = [(k, v) for k, v in letter.headers if not k.startswith(PREFIX) and k != RETRY_OF]
    return [*kept, (RETRY_OF, letter.where.encode())]
