"""What a named person did in the consent registry, for the audit trail: each consent
recorded, each consent search and each re-identification names the individual, the child
(by keyed subject key, never an identifier) and what was recorded or looked at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.people import Person
from services.backbone.telemetry import current_trace_id


def person_record(action: str, actor: str, **fields: Any) -> AuditRecord:
    """An audit record of what ``actor`` (a person, as records name them) did just now,
    in the request's trace."""
    now = datetime.now(UTC)
    return AuditRecord(
        audit_id=str(uuid.uuid4()),
        recorded_at=now,
        occurred_at=now,
        action=action,
        actor=actor,
        trace_id=current_trace_id(),
        **fields,
    )


def consent_recorded(
    person: Person,
    *,
    subject_key: str,
    status: str,
    purpose: str,
    scope: str,
    record_id: str,
    version: int,
    valid_until: str | None = None,
) -> AuditRecord:
    until = f", until the end of {valid_until}" if valid_until else ""
    return person_record(
        "consent_record",
        person.actor,
        decision=AuditOutcome.RECORDED,
        reason_code=f"consent.{status}",
        reason=f"consent {status} for {purpose}, recipients: {scope}{until}",
        recipient=None if scope == "*" else scope,
        purpose=purpose,
        subject_key=subject_key,
        consent_record_id=record_id,
        consent_version=version,
    )


def consent_searched(person: Person, *, subject_key: str, found: int) -> AuditRecord:
    return person_record(
        "consent_search",
        person.actor,
        decision=AuditOutcome.ACCESSED,
        reason_code="consent.searched",
        reason=f"looked up the child's consent records ({found} found)",
        subject_key=subject_key,
    )


def consents_expiring(person: Person, *, found: int) -> AuditRecord:
    """A look at every child's grants that expire soon: no child named, the count kept."""
    return person_record(
        "consent_search",
        person.actor,
        decision=AuditOutcome.ACCESSED,
        reason_code="consent.expiring_listed",
        reason=f"listed the consents that expire soon ({found} found)",
    )
