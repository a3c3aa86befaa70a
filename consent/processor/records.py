"""The records the processor reads and writes, and how decisions become them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consent.core.decide import Decision
from services.backbone import envelope
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.keyed import Key, keyed_id
from services.backbone.records import ReadRecord

ACTOR = "infoshare-processor"
MAX_TEXT = 64  # event ids and types in audit records come from untrusted input


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    partition: int | None = None  # None: by key; state changelogs follow the input partition

    def size(self) -> int:
        """Bytes of key, value and headers: what counts against the record size limit."""
        headers = sum(len(k) + len(v or b"") for k, v in self.headers)
        return len(self.key or b"") + len(self.value or b"") + headers


def header_text(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    """A header as text for an audit record: None if absent, null, not UTF-8 or holding
    control characters; cut short."""
    for key, value in headers:
        if key == name and value is not None:
            try:
                text = value.decode()[:MAX_TEXT]
            except UnicodeDecodeError:
                return None
            # Control characters (NUL above all) could not be stored in the trail.
            return None if envelope.has_control_characters(text) else text or None
    return None


def delivery_record(
    event: envelope.CloudEvent,
    d: Decision,
    topic: str,
    trace: list[tuple[str, bytes]],
    *,
    replay_run: str | None = None,
) -> OutRecord:
    """What the recipient receives: only the decision's payload, under the recipient's own
    event id and key, so nothing in it links to what another recipient receives. A replayed
    delivery keeps its id (a recipient that has it drops it) and names the replay run."""
    assert d.protocol is not None and d.delivery_id and d.payload is not None
    delivered = envelope.CloudEvent(
        type=event.type,
        source=event.source,
        data=d.payload,
        key=d.delivery_key or "",
        id=d.delivery_id,
        # The exact publication time would let recipients join their records; only an
        # identified recipient (which sees who the child is anyway) gets it.
        time=event.time if d.identity == "identified" else _day(event.time),
        extensions={
            envelope.EXT_PROTOCOL: d.protocol.ref,
            envelope.EXT_IDENTITY: d.identity or "",
            **({envelope.EXT_REPLAY: replay_run} if replay_run else {}),
            **({envelope.EXT_SUPERSEDES: d.supersedes} if d.supersedes else {}),
        },
    )
    key, value, headers = envelope.encode(delivered, extra_headers=trace)
    # An anonymised recipient gets no subject key at all: a null Kafka key.
    return OutRecord(topic, key if d.delivery_key else None, value, list(headers))


def _amends(event: envelope.CloudEvent) -> bool:
    """An amended record: its decisions are recorded as ``amend``, not ``disclose``."""
    return bool(event.extensions.get(envelope.EXT_SUPERSEDES))


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class AuditSubject:
    """Whom a decision is about, keyed: the audit subject key (over the NHS number) and the
    keys of the child's other identifiers the event carried (UPN, LA person id), which let
    an IG officer find the decision by those too."""

    key: str
    aliases: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        audit_key: Key,
        subject_id: str,
        others: Sequence[str] = (),
        older_keys: Sequence[Key] = (),
    ) -> AuditSubject:
        """``older_keys``: audit subject keys since rotated. The child's key under each is an
        alias too, so the trail links the child's records from before the rotation to these
        (and an identifier linked to two children across it is seen to be)."""

        def keyed(identifier: str, key: Key = audit_key) -> str:
            return keyed_id(key.secret, "audit-subject", identifier)

        aliases = [keyed(i) for i in others] + [keyed(subject_id, k) for k in older_keys]
        return cls(keyed(subject_id), tuple(aliases))

    def fields(self) -> dict[str, Any]:
        return {"subject_key": self.key, "subject_aliases": list(self.aliases)}


def audit_record(
    d: Decision,
    event: envelope.CloudEvent,
    rec: ReadRecord,
    *,
    now: datetime,
    subject: AuditSubject,
    topic_out: str | None,
    trace_id: str | None,
    replay_run: str | None = None,
    id_key: bytes | None = None,
) -> bytes:
    """The audit record of one decision: what, who, why, about whom (keyed), which fields."""
    protocol = d.protocol
    # Written without validation (most of its cost, several times per event): every value
    # is made here from typed data, and the audit service validates each record it reads.
    return AuditRecord.json_about(
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        recipient=d.recipient,
        protocol=protocol.ref if protocol else None,
        run=replay_run,
        id_key=id_key,
        recorded_at=now,
        occurred_at=event.time,
        action="replay" if replay_run else "amend" if _amends(event) else "disclose",
        decision=AuditOutcome(d.outcome.value),
        reason_code=d.reason_code.value,
        reason=d.reason,
        actor=ACTOR,
        event_id=event.id,
        event_type=event.type,
        source_agency=event.source_agency,
        purpose=protocol.purpose.value if protocol else None,
        protocol_id=protocol.id if protocol else None,
        protocol_version=protocol.version if protocol else None,
        lawful_basis=protocol.lawful_basis.describe() if protocol else None,
        identity_level=d.identity,
        **subject.fields(),
        fields_disclosed=d.fields_disclosed,
        fields_pseudonymised=d.fields_pseudonymised,
        fields_withheld=d.fields_withheld,
        fields_tokenised=d.fields_tokenised,
        fields_encrypted=d.fields_encrypted,
        key_id=d.key_id,
        token_key_id=d.token_key_id,
        consent_record_id=d.consent.record_id if d.consent else None,
        consent_version=d.consent.version if d.consent else None,
        override_justification=d.override.justification if d.override else None,
        override_role=d.override.role if d.override else None,
        topic_out=topic_out,
        delivery_id=d.delivery_id if topic_out else None,
        trace_id=trace_id,
    )
