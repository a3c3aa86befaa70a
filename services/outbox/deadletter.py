"""What a record the broker refuses for good leaves behind, as pure builders: the record
for ``dlq.outbox`` (as accepted, plus why) and its ``audit.decisions`` record (ids and the
reason, never a payload value)."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.backbone import deadletter
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.outbox.store import Pending

ACTOR = "infoshare-outbox-relay"
REFUSED_CODE = "dead_lettered.refused_by_broker"
_NS = uuid.UUID("5b0f1d7e-2a43-4c9e-9d1a-7e3c2b8f6a10")

Headers = deadletter.Headers


def reason(failure: str) -> str:
    return f"the broker refused the record for good ({failure}); it is not sent again"


def dlq_record(p: Pending, failure: str) -> tuple[bytes | None, bytes, Headers]:
    """(key, value, headers) for ``dlq.outbox``: the record as accepted, and why."""
    # Never published, so no partition or offset: the topic it was to go to is its origin.
    headers = deadletter.dead_letter_headers(
        p.headers, stage="outbox", reason=reason(failure), origin=deadletter.Origin(p.topic)
    )
    return p.key, p.value, headers


def refused_audit(
    p: Pending, *, failure: str, agency: str, now: datetime, dlq_topic: str
) -> AuditRecord:
    return AuditRecord(
        audit_id=str(uuid.uuid5(_NS, f"refused|{p.event_id}|{p.seq}")),
        recorded_at=now,
        occurred_at=p.created_at,
        action="publish",
        decision=AuditOutcome.DEAD_LETTERED,
        reason_code=REFUSED_CODE,
        reason=reason(failure),
        actor=ACTOR,
        event_id=p.event_id,
        event_type=p.event_type,
        source_agency=agency,
        topic_in=p.topic,
        topic_out=dlq_topic,
    )
