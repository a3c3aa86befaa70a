"""The processor's memory of who received each event, so a recall can reach exactly them.

For every event shared with at least one recipient, the processor writes one record to the
compacted ``state.disclosed`` changelog, in the transaction that writes the deliveries: per
delivery, the recipient, the protocol it went under, the recipient's own id and record key
for it, and its identity level. A recall reads it back to tell those recipients, under those
ids and keys (never recomputed: a pseudonym key may have rotated since), and replaces it with
a marker saying the event was recalled, so a copy of the event that arrives later (a dead
letter retried, a replay) is not shared again.

It holds no identifier (ids and keys are keyed values, already on the recipients' topics),
and it is windowed like the duplicate memory: Kafka deletes records older than the recall
window, and memory forgets them alike (``forget_expired``).

The key is the event's duplicate key (dedup.seen_key: source and id, hashed), so an agency
can reach only its own events: a recall is looked up under its own source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from consent.core.decide import Decision, Outcome
from services.backbone.recall import RECALL_WINDOW_MS

WINDOW = timedelta(milliseconds=RECALL_WINDOW_MS)


@dataclass(frozen=True)
class Share:
    """One delivery of an event, as a recall needs it."""

    recipient: str
    protocol: str  # its ref, id@version
    delivery_id: str
    key: str | None  # the record key it went under; None for an anonymised recipient
    identity: str


@dataclass(frozen=True)
class Disclosed:
    """What the processor remembers of one event: its deliveries, where its decision was
    read (``origin``: topic, partition, offset, which give its audit ids), whom it was about
    (the audit subject key and aliases, and the routing key: keyed values), when, and
    whether it has been recalled. The recall request itself carries none of these: the
    agency service no longer holds the event once published."""

    at: str  # ISO 8601 UTC, when decided (or recalled)
    event_type: str
    shares: tuple[Share, ...] = ()
    origin: tuple[str, int, int] | None = None
    subject_key: str | None = None
    aliases: tuple[str, ...] = ()
    routing: str | None = None
    recalled: bool = False

    def to_bytes(self) -> bytes:
        if self.recalled:
            return orjson.dumps({"at": self.at, "type": self.event_type, "recalled": True})
        return orjson.dumps(
            {
                "at": self.at,
                "type": self.event_type,
                "in": self.origin,
                "shares": [
                    [s.recipient, s.protocol, s.delivery_id, s.key, s.identity] for s in self.shares
                ],
                "subject": [self.subject_key, self.aliases],
                "routing": self.routing,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Disclosed:
        doc = orjson.loads(raw)
        origin = doc.get("in")
        subject_key, aliases = doc.get("subject") or (None, ())
        return cls(
            at=str(doc["at"]),
            event_type=str(doc["type"]),
            shares=tuple(
                Share(str(r), str(p), str(i), None if k is None else str(k), str(ident))
                for r, p, i, k, ident in doc.get("shares") or ()
            ),
            origin=(str(origin[0]), int(origin[1]), int(origin[2])) if origin else None,
            subject_key=subject_key,
            aliases=tuple(aliases),
            routing=doc.get("routing"),
            recalled=bool(doc.get("recalled")),
        )

    def recall(self, at: datetime) -> Disclosed:
        """The marker this event leaves once recalled."""
        return Disclosed(at=at.isoformat(), event_type=self.event_type, recalled=True)


@dataclass(frozen=True)
class Decided:
    """One decided event, as the memory takes it."""

    event_type: str
    origin: tuple[str, int, int]
    subject_key: str
    aliases: tuple[str, ...]
    routing: str
    starts_plan: bool  # its recall may end the plan it started


def of_decisions(
    decisions: Sequence[Decision], event: Decided, *, at: datetime
) -> Disclosed | None:
    """What to remember of an event's decisions: its deliveries; None if it had none and
    changed no state (a recall of it has nothing to undo)."""
    shares = tuple(
        Share(d.recipient, d.protocol.ref, d.delivery_id, d.delivery_key, d.identity or "")
        for d in decisions
        if d.outcome is Outcome.SHARED
        and d.recipient
        and d.protocol is not None
        and d.delivery_id
        and d.payload is not None
    )
    if not shares and not event.starts_plan:
        return None
    return Disclosed(
        at=at.isoformat(),
        event_type=event.event_type,
        shares=shares,
        origin=event.origin,
        subject_key=event.subject_key,
        aliases=event.aliases,
        routing=event.routing,
    )


def forget_expired(table: dict[str, Disclosed], now: datetime) -> dict[str, Disclosed]:
    """The entries younger than the recall window (Kafka deletes older records)."""
    horizon = (now - WINDOW).isoformat()
    return {k: v for k, v in table.items() if v.at >= horizon}
