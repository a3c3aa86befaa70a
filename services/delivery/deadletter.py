"""What a notification that cannot be delivered leaves behind, as pure builders: the
record for ``dlq.delivery`` (the delivery exactly as read, plus why and where from) and
the ``audit.decisions`` record (ids and reasons, never a payload value)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.backbone import deadletter
from services.backbone.audit_contract import AuditOutcome, AuditRecord, protocol_parts
from services.backbone.records import ReadRecord
from services.delivery.model import Delivered

ACTOR = "infoshare-delivery"
UNDELIVERABLE_CODE = "undeliverable.retry_horizon"
UNDECODABLE_CODE = "dead_lettered.undecodable_delivery"
_NS = uuid.UUID("0d7f4e52-3c1b-4f49-8a52-6b0f5d2e8c31")
STAGE = "delivery"  # its dead letters go to dlq.delivery

Headers = deadletter.Headers


@dataclass(frozen=True)
class Undeliverable:
    subscription_id: str
    event_number: int
    agency: str
    origin: ReadRecord
    event: Delivered
    attempts: int
    last_error: str | None
    horizon_s: float


def undeliverable_audit_id(subscription_id: str, event_number: int) -> str:
    """One audit id per notification: dead-lettering it again is recorded once."""
    return str(uuid.uuid5(_NS, f"undeliverable|{subscription_id}|{event_number}"))


def dlq_headers(origin: ReadRecord, *, reason: str, **more: str | int) -> Headers:
    """The record's headers and the dead-letter contract's (services/backbone/deadletter.py),
    ``more`` naming the subscription and event number where there are some."""
    return deadletter.dead_letter_headers(
        origin.headers,
        stage=STAGE,
        reason=reason,
        origin=deadletter.Origin(origin.topic, origin.partition, origin.offset),
        **more,
    )


def undeliverable_reason(u: Undeliverable) -> str:
    last = f"; last: {u.last_error}" if u.last_error else ""
    return (
        f"the webhook did not accept notification {u.event_number} within the retry horizon "
        f"of {u.horizon_s:g} s ({u.attempts} attempts{last})"
    )


def dlq_record(u: Undeliverable) -> tuple[bytes | None, bytes | None, Headers]:
    """(key, value, headers) for ``dlq.delivery``."""
    headers = dlq_headers(
        u.origin,
        reason=undeliverable_reason(u),
        subscription=u.subscription_id,
        event_number=u.event_number,
    )
    return u.origin.key, u.origin.value, headers


def _source_agency(source: str) -> str | None:
    prefix = "/agencies/"
    return source[len(prefix) :] if source.startswith(prefix) else None


def undeliverable_audit(u: Undeliverable, *, now: datetime, dlq_topic: str) -> AuditRecord:
    """The UNDELIVERABLE audit record of a dead-lettered notification."""
    protocol_id, protocol_version = protocol_parts(u.event.protocol)
    return AuditRecord(
        audit_id=undeliverable_audit_id(u.subscription_id, u.event_number),
        recorded_at=now,
        occurred_at=u.event.time,
        action="deliver",
        decision=AuditOutcome.UNDELIVERABLE,
        reason_code=UNDELIVERABLE_CODE,
        reason=undeliverable_reason(u),
        actor=ACTOR,
        event_id=u.event.event_id,
        event_type=u.event.type,
        source_agency=_source_agency(u.event.source),
        recipient=u.agency,
        protocol_id=protocol_id,
        protocol_version=protocol_version,
        identity_level=u.event.identity_level,
        topic_in=u.origin.topic,
        partition_in=u.origin.partition,
        offset_in=u.origin.offset,
        topic_out=dlq_topic,
        delivery_id=u.event.event_id,
    )


def undecodable_audit(
    origin: ReadRecord, *, agency: str, now: datetime, dlq_topic: str
) -> AuditRecord:
    """The DEAD_LETTERED audit record of a delivery record that is not a CloudEvent. The
    problem itself is in the dead letter's ``dlq_reason``: it may quote a header."""
    return AuditRecord.about(
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        recipient=agency,
        recorded_at=now,
        action="dead_letter",
        decision=AuditOutcome.DEAD_LETTERED,
        reason_code=UNDECODABLE_CODE,
        reason="the delivery record is not a well-formed CloudEvent (see its dlq_reason)",
        actor=ACTOR,
        topic_out=dlq_topic,
    )
