"""Turn one input record into every record it causes: deliveries, audit, state, dead letter.

No Kafka client here: the loop hands in a plain record and writes what comes back in one
transaction. A record that cannot be processed becomes a dead letter plus its audit record;
it never stops the partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from consent.core.decide import Decision, EventFacts, Outcome, decide
from consent.core.fields import TransformError
from consent.core.model import Protocol
from consent.core.state import ProtectionPlan, SubjectState, next_state
from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.directory import Directory
from services.backbone.errors import BackboneError, EnvelopeError
from services.backbone.identifiers import nhs_number_problem, subject_identifier
from services.backbone.keyed import keyed_id
from services.backbone.keyring import Key
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics

ACTOR = "infoshare-processor"
PLAN_STATE = "protection-plans"


@dataclass(frozen=True)
class InRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Handled:
    records: list[OutRecord]
    state_changes: dict[str, ProtectionPlan | None]
    decisions: list[Decision]
    dead_letter_reason: str | None = None


@dataclass(frozen=True)
class Context:
    topics: Topics
    protocols: tuple[Protocol, ...]
    schemas: SchemaRegistry
    pseudonym_keys: Mapping[str, Key]
    audit_key: Key
    directory: Directory


def _source_agency_of(topic: str, topics: Topics) -> str:
    prefix = topics.source("")
    return topic[len(prefix) :] if topic.startswith(prefix) else ""


def _facts(rec: InRecord, ctx: Context) -> tuple[envelope.CloudEvent, EventFacts]:
    event = envelope.decode(rec.key, rec.value, rec.headers)
    agency = event.source_agency
    if agency != _source_agency_of(rec.topic, ctx.topics):
        raise EnvelopeError(f"source {event.source} was published on another agency's topic")
    if not event.dataschema:
        raise EnvelopeError("missing ce_dataschema")
    schema = ctx.schemas.by_uri(event.dataschema)
    if schema.event_type != event.type:
        raise EnvelopeError(f"dataschema names {schema.event_type}, ce_type is {event.type}")
    schema.validate(event.data)
    kind = ctx.directory.agencies[agency].kind if agency in ctx.directory else None
    if kind is None or event.type.split(".", 1)[0] != kind.value:
        # A health trust cannot start a child protection plan, nor a school report an ED visit.
        raise EnvelopeError(f"agency {agency} ({kind}) may not publish {event.type} events")
    subject = event.data.get("subject") or {}
    problem = nhs_number_problem(str(subject.get("nhs_number", "")))
    if problem:
        raise EnvelopeError(f"subject.nhs_number: {problem}")
    subject_id = subject_identifier(nhs_number=str(subject["nhs_number"]))
    return event, EventFacts(event.id, event.type, agency, event.data, subject_id)


def handle(
    rec: InRecord,
    ctx: Context,
    state: Mapping[str, ProtectionPlan | None],
    trace_id: str | None,
    trace_headers: list[tuple[str, bytes]],
) -> Handled:
    """Everything one input record causes. Pure but for the clock."""
    now = datetime.now(UTC)
    try:
        event, facts = _facts(rec, ctx)
    except BackboneError as exc:
        return _dead_letter(rec, ctx, str(exc), now, trace_id)
    routing_key = event.key
    current = SubjectState(state.get(routing_key))
    try:
        decisions = decide(facts, ctx.protocols, current, ctx.pseudonym_keys)
    except TransformError as exc:
        return _dead_letter(rec, ctx, f"a protocol rule cannot be applied: {exc}", now, trace_id)
    subject_key = keyed_id(ctx.audit_key.secret, "audit-subject", facts.subject_id)
    out: list[OutRecord] = []
    for d in decisions:
        topic_out = None
        if d.outcome is Outcome.SHARED and d.recipient and d.payload is not None:
            topic_out = ctx.topics.deliver(d.recipient)
            out.append(
                _delivery(
                    event,
                    d,
                    topic_out,
                    _audit_id(rec, d.recipient),
                    trace_headers,
                )
            )
        record = AuditRecord(
            audit_id=_audit_id(rec, d.recipient),
            recorded_at=now,
            occurred_at=event.time,
            action="disclose",
            decision=AuditOutcome(d.outcome.value),
            reason_code=d.reason_code.value,
            reason=d.reason,
            actor=ACTOR,
            event_id=event.id,
            event_type=event.type,
            source_agency=facts.source_agency,
            recipient=d.recipient,
            purpose=d.protocol.purpose.value if d.protocol else None,
            protocol_id=d.protocol.id if d.protocol else None,
            protocol_version=d.protocol.version if d.protocol else None,
            lawful_basis=d.protocol.lawful_basis.describe() if d.protocol else None,
            identity_level=d.identity,
            subject_key=subject_key,
            fields_disclosed=list(d.fields_disclosed),
            fields_pseudonymised=list(d.fields_pseudonymised),
            fields_withheld=list(d.fields_withheld),
            key_id=d.key_id,
            topic_out=topic_out,
            trace_id=trace_id,
            topic_in=rec.topic,
            partition_in=rec.partition,
            offset_in=rec.offset,
        )
        out.append(_audit(record, routing_key, ctx.topics))
    changes: dict[str, ProtectionPlan | None] = {}
    transition = next_state(
        current, event_type=event.type, source_agency=facts.source_agency, data=event.data
    )
    if transition is not None:
        changes[routing_key] = transition.plan
        value = orjson.dumps(transition.plan.to_json()) if transition.plan else None
        out.append(OutRecord(ctx.topics.state(PLAN_STATE), routing_key.encode(), value))
    return Handled(out, changes, decisions)


def _audit_id(rec: InRecord, recipient: str | None) -> str:
    return audit_id_for(
        topic=rec.topic, partition=rec.partition, offset=rec.offset, recipient=recipient
    )


def _delivery(
    event: envelope.CloudEvent,
    d: Decision,
    topic: str,
    decision_id: str,
    trace_headers: list[tuple[str, bytes]],
) -> OutRecord:
    assert d.protocol is not None and d.delivery_key is not None and d.payload is not None
    delivered = envelope.CloudEvent(
        type=event.type,
        source=event.source,
        data=d.payload,
        key=d.delivery_key,
        id=event.id,
        time=event.time,
        extensions={
            envelope.EXT_PROTOCOL: d.protocol.ref,
            envelope.EXT_IDENTITY: d.identity or "",
            envelope.EXT_DECISION: decision_id,
        },
    )
    key, value, headers = envelope.encode(delivered, extra_headers=trace_headers)
    return OutRecord(topic, key, value, headers)


def _audit(record: AuditRecord, key: str, topics: Topics) -> OutRecord:
    return OutRecord(topics.audit, key.encode(), record.model_dump_json().encode())


def _dead_letter(
    rec: InRecord,
    ctx: Context,
    reason: str,
    now: datetime,
    trace_id: str | None,
) -> Handled:
    """The original record, untouched, plus why: headers ``dlq_*`` name the reason and origin."""
    headers = [h for h in rec.headers if not h[0].startswith("dlq_")] + [
        ("dlq_reason", reason.encode()),
        ("dlq_topic", rec.topic.encode()),
        ("dlq_partition", str(rec.partition).encode()),
        ("dlq_offset", str(rec.offset).encode()),
    ]
    ce_id = dict(rec.headers).get("ce_id", b"").decode(errors="replace") or None
    ce_type = dict(rec.headers).get("ce_type", b"").decode(errors="replace") or None
    record = AuditRecord(
        audit_id=_audit_id(rec, None),
        recorded_at=now,
        action="dead_letter",
        decision=AuditOutcome.DEAD_LETTERED,
        reason_code="dead_letter.unprocessable",
        reason=reason,
        actor=ACTOR,
        event_id=ce_id,
        event_type=ce_type,
        source_agency=_source_agency_of(rec.topic, ctx.topics) or None,
        topic_out=ctx.topics.dlq("processor"),
        trace_id=trace_id,
        topic_in=rec.topic,
        partition_in=rec.partition,
        offset_in=rec.offset,
    )
    dead = OutRecord(ctx.topics.dlq("processor"), rec.key or b"", rec.value, headers)
    return Handled([dead, _audit(record, "", ctx.topics)], {}, [], dead_letter_reason=reason)
