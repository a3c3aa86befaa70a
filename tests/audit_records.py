"""Audit records for tests of the audit service: one decision about a child, its fields
overridable, keyed as the processor keys them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.audit.chain import GENESIS, Stored, seal
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.identifiers import subject_identifier
from services.backbone.keyed import keyed_id
from services.backbone.keyring import Keyring

NHS = "9434765919"
ED, LA = "nhs-riverside-ed", "la-northshire"


def subject_key(keyring: Keyring, identifier: str) -> str:
    return keyed_id(keyring.require_audit_subject().secret, "audit-subject", identifier)


def decision(keyring: Keyring, offset: int, **fields: Any) -> AuditRecord:
    """A disclosure from the ED to the authority about the child with NHS number ``NHS``,
    ``offset`` minutes after 09:00 on 20 November 2026, with ``fields`` in place of these."""
    values: dict[str, Any] = {
        "recorded_at": datetime(2026, 11, 20, 9, 0, tzinfo=UTC) + timedelta(minutes=offset),
        "action": "disclose",
        "decision": AuditOutcome.SHARED,
        "reason_code": "shared.protocol_allows",
        "reason": "the protocol allows it",
        "actor": "infoshare-processor",
        "source_agency": ED,
        "recipient": LA,
        "protocol_id": "cpis-attendance-notification",
        "purpose": "safeguarding",
        "subject_key": subject_key(keyring, subject_identifier(nhs_number=NHS)),
        **fields,
    }
    recipient = values.pop("recipient")
    return AuditRecord.about(
        topic="source.x", partition=0, offset=offset, recipient=recipient, protocol="p", **values
    )


def sealed_trail(keys: list[bytes], content: Callable[[int], Mapping[str, Any]]) -> list[Stored]:
    """A trail of ``content(n)`` records whose record n (from 1) is linked under
    ``keys[n - 1]``, as the store would read them back."""
    out: list[Stored] = []
    previous = GENESIS
    for seq, key in enumerate(keys, start=1):
        sealed = seal(key, previous, seq, content(seq))
        out.append(Stored(seq, content(seq), sealed.entry_hash, sealed.chain_hash))
        previous = bytes.fromhex(sealed.chain_hash)
    return out
