"""Access-back: tell a publishing agency which recipients received one of its events.

CP-IS tells a local authority when an unscheduled-care setting has seen the child protection
information it shared. Here any publishing agency may opt in (``access_back: true`` in
deploy/agencies.yaml): for each of its events shared with at least one other recipient it
gets one ``infoshare.access_back`` event on its own ``deliver.<agency>`` topic, written in
the transaction that writes the deliveries it reports, so it is sent exactly when they are.

The notice names the agency's own event id, the recipients, protocols, identity levels and
field names: never an identifier or a value. Its record key is the agency's identified
delivery key for the child, so it stays in order with what the agency receives about that
child. No Kafka client here: ``handle`` adds what :func:`records` returns to its output.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from consent.core.decide import Decision, Outcome, identified_key
from consent.processor.records import ACTOR, AuditSubject, OutRecord
from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.directory import Directory
from services.backbone.errors import ConfigurationError, UnknownEventType
from services.backbone.keyed import Key
from services.backbone.records import ReadRecord
from services.backbone.schemas import SchemaRegistry
from services.backbone.topics import Topics

ACCESS_BACK = "infoshare.access_back"
SOURCE = "/infoshare/processor"  # the hub itself, not an agency: it made the notice
REASON_CODE = "shared.access_back"
AUDIT_ACTION = "access_back"
_ID_NAMESPACE = uuid.UUID("378fd4d4-364d-43c3-bdd8-5a56e839a6b0")


class Hub(Protocol):
    """What a notice is made with (the processor's Context has it): who asked to be told,
    where their deliveries go, their keys and the notice's schema."""

    @property
    def directory(self) -> Directory: ...

    @property
    def topics(self) -> Topics: ...

    @property
    def pseudonym_keys(self) -> Mapping[str, Key]: ...

    @property
    def schemas(self) -> SchemaRegistry: ...

    @property
    def id_key(self) -> bytes | None: ...


def agencies_told(directory: Directory, schemas: SchemaRegistry) -> set[str]:
    """The agencies that asked for access back. ConfigurationError if some did and the
    registry has no schema for the notice (subscribers could not ask for it)."""
    told = {a.id for a in directory if a.access_back}
    if told:
        try:
            schemas.get(ACCESS_BACK)
        except UnknownEventType:
            raise ConfigurationError(
                f"{', '.join(sorted(told))} asked for access back, and the schema registry "
                f"has no {ACCESS_BACK} schema"
            ) from None
    return told


def records(
    event: envelope.CloudEvent,
    decisions: Sequence[Decision],
    rec: ReadRecord,
    ctx: Hub,
    *,
    subject_id: str,
    subject: AuditSubject,
    now: datetime,
    trace_id: str | None,
    delivery_trace: Callable[[str], list[tuple[str, bytes]]],
) -> list[OutRecord]:
    """The notice and its audit record, if the publisher asked to be told and another
    recipient received the event; otherwise nothing."""
    agency = event.source_agency
    if agency not in ctx.directory or not ctx.directory.agencies[agency].access_back:
        return []
    shared = shared_with(decisions, origin=agency)
    if not shared:
        return []
    topic = ctx.topics.deliver(agency)
    key = ctx.pseudonym_keys[agency]
    told = notice(
        event,
        shared,
        topic=topic,
        key=identified_key(key, agency, subject_id),
        dataschema=ctx.schemas.get(ACCESS_BACK).uri,
        now=now,
        trace=delivery_trace(topic),
    )
    audit = notice_audit(
        event,
        rec,
        shared,
        agency=agency,
        topic_out=topic,
        now=now,
        subject=subject,
        key_id=key.key_id,
        trace_id=trace_id,
        id_key=ctx.id_key,
    )
    return [told, OutRecord(ctx.topics.audit, event.key.encode(), audit)]


def notice_id(event: envelope.CloudEvent) -> str:
    """The notice's CloudEvents id: the same for the same original event however often it
    is decided (a retried transaction, a restart), so the agency can drop a repeat."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"access-back:{event.source}|{event.id}"))


def shared_with(decisions: Sequence[Decision], *, origin: str) -> list[dict[str, Any]]:
    """What the originating agency is told, one entry per delivery made: who received it,
    under which protocol, at which identity level, and the names of the fields (never their
    values). Sharing back with the origin itself is not reported."""
    return [
        {
            "recipient": d.recipient,
            "protocol": d.protocol.ref,
            "identity": d.identity,
            "fields": list(d.fields_disclosed),
            "fields_pseudonymised": list(d.fields_pseudonymised),
            "fields_tokenised": list(d.fields_tokenised),
            "fields_encrypted": list(d.fields_encrypted),
        }
        for d in decisions
        if d.outcome is Outcome.SHARED
        and d.payload is not None
        and d.protocol is not None
        and d.recipient
        and d.recipient != origin
    ]


def notice(
    event: envelope.CloudEvent,
    shared: list[dict[str, Any]],
    *,
    topic: str,
    key: str,
    dataschema: str,
    now: datetime,
    trace: list[tuple[str, bytes]],
) -> OutRecord:
    """The ``infoshare.access_back`` delivery record for the originating agency."""
    told = envelope.CloudEvent(
        type=ACCESS_BACK,
        source=SOURCE,
        data={
            "event_id": event.id,
            "event_type": event.type,
            "shared_with": shared,
            "decided_at": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        },
        key=key,
        id=notice_id(event),
        time=now,
        dataschema=dataschema,
        extensions={envelope.EXT_IDENTITY: "identified"},
    )
    record_key, value, headers = envelope.encode(told, extra_headers=trace)
    return OutRecord(topic, record_key, value, list(headers))


def notice_audit(
    event: envelope.CloudEvent,
    rec: ReadRecord,
    shared: list[dict[str, Any]],
    *,
    agency: str,
    topic_out: str,
    now: datetime,
    subject: AuditSubject,
    key_id: str,
    trace_id: str | None,
    id_key: bytes | None = None,
) -> bytes:
    """The audit record of telling ``agency`` who received its event: no fields disclosed
    (the notice holds field names, not values), the recipients named in the reason."""
    recipients = ", ".join(f"{s['recipient']} ({s['protocol']})" for s in shared)
    return AuditRecord.json_about(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        recipient=agency,
        protocol="access-back",  # its own audit id, apart from any protocol's for the agency
        id_key=id_key,
        recorded_at=now,
        occurred_at=event.time,
        action=AUDIT_ACTION,
        decision=AuditOutcome.SHARED,
        reason_code=REASON_CODE,
        reason=f"the originating agency was told which recipients received its record: "
        f"{recipients}",
        actor=ACTOR,
        event_id=event.id,
        event_type=event.type,
        source_agency=agency,
        identity_level="identified",
        **subject.fields(),
        fields_disclosed=[],
        key_id=key_id,  # of the key the record key was made with
        topic_out=topic_out,
        delivery_id=notice_id(event),
        trace_id=trace_id,
    )
