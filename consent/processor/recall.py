"""A recall: tell every recipient of the recalled events, and nobody else, that they are
withdrawn (services/backbone/recall.py has the contract).

The recipients are the ones the processor remembers (disclosed.py), under the ids and keys
they received the events with. Each gets an ``infoshare.record.recalled`` notice on its own
topic, under the delivery's record key (so it follows the delivery on its partition), and
each notice is audited as ``recall``, referring to the audit record of the disclosure it
withdraws. An event the processor knows no recipient of is audited once, as recalled to
nobody. A plan started in error ends with its recall. No Kafka client here: ``handle``
writes what :func:`recall` returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from consent.core.state import ProtectionPlan, SubjectState, after_recall
from consent.processor.dedup import event_key
from consent.processor.disclosed import Disclosed, Share
from consent.processor.records import ACTOR, AuditSubject, OutRecord
from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.errors import EnvelopeError
from services.backbone.recall import (
    AUDIT_ACTION,
    NOTHING_HELD,
    NOTICE_SOURCE,
    REASON_CODE_PREFIX,
    RECALLED,
    RecallReason,
)
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics

_ID_NAMESPACE = uuid.UUID("1d4f3c0e-5b7a-4e59-a3f1-2c8d6b9e0a47")


class Hub(Protocol):
    """What a recall is made with (the processor's Context has it)."""

    @property
    def topics(self) -> Topics: ...

    @property
    def schemas(self) -> SchemaRegistry: ...

    @property
    def id_key(self) -> bytes | None: ...


@dataclass
class Recalled:
    """What one recall causes: the records to write, and the memory and state it changes."""

    records: list[OutRecord] = field(default_factory=list)
    disclosed: dict[str, Disclosed] = field(default_factory=dict)
    plan: dict[str, ProtectionPlan | None] = field(default_factory=dict)


def recall(
    event: envelope.CloudEvent,
    rec: ReadRecord,
    ctx: Hub,
    *,
    disclosed: Mapping[str, Disclosed],
    state: Mapping[str, ProtectionPlan | None],
    now: datetime,
    trace_id: str | None,
    delivery_trace: Callable[[str], list[tuple[str, bytes]]],
) -> Recalled:
    """Everything the recall ``event`` (valid against its schema) causes. ``state``: the
    subjects' plans, by routing key."""
    data = event.data
    reason = RecallReason(data["reason"])
    done = Recalled()
    audit_key = event.key.encode()
    for item in data["recalled"]:
        recalled_id, recalled_type = str(item["id"]), str(item["type"])
        key = event_key(event.source, recalled_id)
        known = done.disclosed.get(key) or disclosed.get(key)
        if known is not None and known.routing and known.routing != event.key:
            # Its events' key is how it reaches their partition: another key is another
            # child's, or nobody's (a publisher's fault, never told to anyone).
            raise EnvelopeError("the recall's record key is not the key of the events it names")
        told = () if known is None or known.recalled else known.shares
        subject = (
            AuditSubject(known.subject_key, known.aliases)
            if known is not None and known.subject_key
            else None
        )
        about = _About(event, rec, ctx, recalled_id, recalled_type, reason, subject, now, trace_id)
        for share in told:
            topic = ctx.topics.deliver(share.recipient)
            notice = _notice(event, share, recalled_type, reason, ctx, now)
            key_bytes, value, headers = envelope.encode(notice, extra_headers=delivery_trace(topic))
            done.records.append(
                OutRecord(topic, key_bytes if share.key else None, value, list(headers))
            )
            assert known is not None
            done.records.append(
                OutRecord(ctx.topics.audit, audit_key, about.told(share, notice.id, known))
            )
        if not told:
            done.records.append(OutRecord(ctx.topics.audit, audit_key, about.nobody(known)))
        done.disclosed[key] = (known or Disclosed(now.isoformat(), recalled_type)).recall(now)
        routing = known.routing if known is not None and not known.recalled else None
        if routing is None:
            continue
        plan = done.plan[routing] if routing in done.plan else state.get(routing)
        change = after_recall(
            SubjectState(plan), event_id=recalled_id, source_agency=event.source_agency
        )
        if change is not None:
            done.plan[routing] = change.plan
    return done


def notice_id(event: envelope.CloudEvent, share: Share) -> str:
    """The notice's id: the same however often the recall is decided, different for each
    delivery it withdraws, and computable by nobody who holds only one of its parts."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{event.source}|{event.id}|{share.delivery_id}"))


def _notice(
    event: envelope.CloudEvent,
    share: Share,
    recalled_type: str,
    reason: RecallReason,
    ctx: Hub,
    now: datetime,
) -> envelope.CloudEvent:
    # As a delivery's time: only an identified recipient gets more than the day.
    when = now if share.identity == "identified" else now.replace(hour=0, minute=0, second=0)
    when = when.replace(microsecond=0)
    return envelope.CloudEvent(
        type=RECALLED,
        source=NOTICE_SOURCE,
        data={
            "recalls": share.delivery_id,
            "recalled_type": recalled_type,
            "reason": reason.value,
            "recalled_at": when.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
        key=share.key or "",
        id=notice_id(event, share),
        time=when,
        dataschema=ctx.schemas.get(RECALLED).uri,
        extensions={
            envelope.EXT_PROTOCOL: share.protocol,
            envelope.EXT_IDENTITY: share.identity,
            envelope.EXT_RECALLS: share.delivery_id,
        },
    )


@dataclass(frozen=True)
class _About:
    """The audit records of recalling one event."""

    event: envelope.CloudEvent
    rec: ReadRecord
    ctx: Hub
    recalled_id: str
    recalled_type: str
    reason: RecallReason
    subject: AuditSubject | None  # None: the recalled event is not remembered
    now: datetime
    trace_id: str | None

    def told(self, share: Share, notice: str, known: Disclosed) -> bytes:
        """A recipient sent a notice: refers to the disclosure it withdraws."""
        protocol_id, _, version = share.protocol.rpartition("@")
        origin = known.origin
        refers = (
            audit_id_for(
                topic=origin[0],
                partition=origin[1],
                offset=origin[2],
                recipient=share.recipient,
                protocol=share.protocol,
                key=self.ctx.id_key,
            )
            if origin
            else None
        )
        return self._record(
            recipient=share.recipient,
            # One audit id per recalled delivery, apart from the recipient's other records.
            protocol=f"recall:{share.delivery_id}",
            reason_code=REASON_CODE_PREFIX + self.reason.value,
            reason=f"{self.event.source_agency} recalled its {self.recalled_type} event: "
            f"{self.reason.describe()}. {share.recipient} was sent a recall notice for the "
            f"delivery it received under {share.protocol}",
            protocol_id=protocol_id or None,
            protocol_version=int(version) if version.isdigit() else None,
            identity_level=share.identity,
            topic_out=self.ctx.topics.deliver(share.recipient),
            delivery_id=notice,
            refers_to=refers,
        )

    def nobody(self, known: Disclosed | None) -> bytes:
        """No recipient to tell: never shared, recalled already, or decided before the
        recall window."""
        why = (
            "it had been recalled already"
            if known is not None and known.recalled
            else "infoshare knows of no recipient of it (withheld from all, not yet decided, "
            "or decided longer ago than the recall window)"
        )
        return self._record(
            recipient=None,
            protocol=f"recall:{self.recalled_id}",
            reason_code=NOTHING_HELD,
            reason=f"{self.event.source_agency} recalled its {self.recalled_type} event "
            f"({self.reason.describe()}); no recipient was told: {why}",
        )

    def _record(self, **fields: Any) -> bytes:
        return AuditRecord.json_about(
            topic=self.rec.topic,
            partition=self.rec.partition,
            offset=self.rec.offset,
            id_key=self.ctx.id_key,
            recorded_at=self.now,
            occurred_at=self.event.time,
            action=AUDIT_ACTION,
            decision=AuditOutcome.RECALLED,
            actor=ACTOR,
            event_id=self.recalled_id,
            event_type=self.recalled_type,
            source_agency=self.event.source_agency,
            **(self.subject.fields() if self.subject else {}),
            trace_id=self.trace_id,
            **fields,
        )
