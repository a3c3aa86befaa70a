"""Duplicate suppression: an event (same source and id) is decided once.

A publisher that retries, or an operator who retries a dead letter twice, publishes the same
CloudEvent again. The processor remembers each event it decided in the compacted
``state.seen-events`` changelog, written in the same transaction as the decision, so the
memory is exactly as old as the decisions. Entries older than the dedup window are deleted
by Kafka itself (``cleanup.policy=compact,delete``).

The key is a hash of source and id (neither is personal data, but hashing gives a fixed
size); the value keeps a digest of the record so a re-used id with different content is
told apart from a plain retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from services.backbone import envelope
from services.backbone.topics import DEDUP_WINDOW_MS

WINDOW = timedelta(milliseconds=DEDUP_WINDOW_MS)


def seen_key(event: envelope.CloudEvent) -> str:
    return event_key(event.source, event.id)


def event_key(source: str, event_id: str) -> str:
    """The key of the event ``event_id`` from ``source`` in the processor's memories."""
    return hashlib.sha256(f"{source}|{event_id}".encode()).hexdigest()[:32]


def content_digest(value: bytes | None) -> str:
    return hashlib.sha256(value or b"").hexdigest()[:32]


@dataclass(frozen=True)
class Seen:
    digest: str
    first_seen: str

    def to_bytes(self) -> bytes:
        return orjson.dumps({"digest": self.digest, "first_seen": self.first_seen})

    @classmethod
    def from_bytes(cls, raw: bytes) -> Seen:
        doc = orjson.loads(raw)
        return cls(digest=str(doc["digest"]), first_seen=str(doc["first_seen"]))

    @classmethod
    def now(cls, value: bytes | None, at: datetime) -> Seen:
        return cls(digest=content_digest(value), first_seen=at.isoformat())


def duplicate_reason(earlier: Seen, value: bytes | None) -> tuple[str, str]:
    """The reason code and text of a suppressed duplicate (no values, only the verdict)."""
    if earlier.digest == content_digest(value):
        return (
            "duplicate.identical",
            f"the same event was decided at {earlier.first_seen}; this copy is suppressed",
        )
    return (
        "duplicate.conflicting",
        f"an event with this source and id but different content was decided at "
        f"{earlier.first_seen}; ids must not be re-used, this copy is suppressed",
    )


def forget_expired(seen: dict[str, Seen], now: datetime) -> dict[str, Seen]:
    """The entries younger than the dedup window: Kafka deletes older ones from the
    changelog, so memory must forget them too, or suppression would differ after a restart."""
    horizon = (now - WINDOW).isoformat()
    # ISO 8601 strings in UTC with one format compare in time order.
    return {k: v for k, v in seen.items() if v.first_seen >= horizon}
