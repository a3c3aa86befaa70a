"""The audit store on a real SQLite database: idempotent batches and filtered search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.audit.store import AuditQuery, AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for


def _record(offset: int, *, recipient: str, decision: AuditOutcome, at: datetime) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id_for(
            topic="source.x", partition=0, offset=offset, recipient=recipient, protocol="p@1"
        ),
        recorded_at=at,
        action="disclose",
        decision=decision,
        reason_code="shared.protocol_allows" if decision == "shared" else "withheld.x",
        reason="because",
        actor="test",
        recipient=recipient,
        fields_disclosed=["a.b"],
    )


def test_batches_are_idempotent_and_searchable(tmp_path: Path) -> None:
    store = AuditStore(f"sqlite:///{tmp_path / 'audit.db'}")
    store.create_schema()
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    batch = [
        _record(1, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0),
        _record(
            2, recipient="la-northshire", decision=AuditOutcome.WITHHELD, at=t0 + timedelta(hours=1)
        ),
        _record(
            2, recipient="ph-northshire", decision=AuditOutcome.SHARED, at=t0 + timedelta(hours=2)
        ),
    ]
    assert store.add_batch(batch) == 3
    assert store.add_batch(batch + batch) == 0  # stored twice is stored once

    rows, total = store.search(AuditQuery(recipient="la-northshire"))
    assert total == 2 and [r.decision for r in rows] == ["shared", "withheld"]
    _, withheld = store.search(AuditQuery(decision="withheld"))
    assert withheld == 1
    rows, total = store.search(AuditQuery(since=t0 + timedelta(minutes=30)))
    assert total == 2 and rows[0].fields_disclosed == ["a.b"]
    rows, total = store.search(AuditQuery(limit=1, offset=1))
    assert total == 3 and len(rows) == 1 and rows[0].recipient == "la-northshire"
