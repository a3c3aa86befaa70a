"""What the delivery service works with, as plain data: a delivered event as read from
``deliver.<agency>``, and the enumerations of a subscription (modelled on FHIR R5
topic-based subscriptions). No I/O here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    WEBHOOK = "webhook"  # R5 channel type rest-hook
    INBOX = "inbox"  # pulled by the recipient: $events and a cursor with acknowledgements


class Content(StrEnum):
    FULL = "full"  # the delivered event inline
    ID_ONLY = "id-only"  # its id, type and the URL to fetch it
    EMPTY = "empty"  # the event number and type only


class Status(StrEnum):
    ACTIVE = "active"
    OFF = "off"


class State(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


class NotificationType(StrEnum):
    EVENT = "event-notification"
    HEARTBEAT = "heartbeat"
    QUERY_EVENT = "query-event"  # an answer to $events or the inbox, not a push


@dataclass(frozen=True)
class Delivered:
    """One delivered CloudEvent, exactly as the processor wrote it for its recipient."""

    event_id: str
    type: str
    source: str
    time: datetime
    protocol: str | None
    identity_level: str | None
    data: Mapping[str, Any]
    # An amendment: the recipient's id of the delivery it supersedes.
    supersedes: str | None = None
    # A recall notice (services/backbone/recall.py): the recipient's id of the delivery it
    # withdraws. Set only on a notice whose extension and data agree (recall.notice_of).
    recalls: str | None = None

    def attribute(self, name: str) -> Any:
        """A CloudEvents attribute by the name filters use."""
        return {
            "id": self.event_id,
            "type": self.type,
            "source": self.source,
            "protocol": self.protocol,
            "identity_level": self.identity_level,
        }[name]

    def cloudevent(self) -> dict[str, Any]:
        """The event in CloudEvents JSON structured mode (what ``full`` content carries)."""
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.event_id,
            "source": self.source,
            "type": self.type,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
        }
        if self.protocol is not None:
            event["protocol"] = self.protocol
        if self.identity_level is not None:
            event["identitylevel"] = self.identity_level
        if self.supersedes is not None:
            event["supersedes"] = self.supersedes
        if self.recalls is not None:
            event["recalls"] = self.recalls
        event["data"] = dict(self.data)
        return event


@dataclass(frozen=True)
class Incoming:
    """A delivery record read from Kafka: where it came from, the record as read (kept for
    the dead-letter topic), and the event it carries."""

    agency: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes | None]]
    event: Delivered = field(repr=False)
