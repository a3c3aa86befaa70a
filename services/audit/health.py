"""What the audit service says at ``GET /healthz``, for ``infoshare status`` and probes: how
many records it holds and its newest signed checkpoint (which records it covers, when it was
made and how long ago). Counts and times only: nothing a record says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, func, select

from services.audit.models import AuditCheckpoint, AuditEntry
from services.audit.store import AuditStore


def checkpoint_age_s(created_at: str, now: datetime) -> float | None:
    """Seconds since an ISO 8601 ``created_at`` (read as UTC without an offset); None if it
    is not a time."""
    try:
        made = datetime.fromisoformat(created_at)
    except ValueError:
        return None
    made = made if made.tzinfo else made.replace(tzinfo=UTC)
    return round(max(0.0, (now - made).total_seconds()), 1)


def audit_health(store: AuditStore, *, now: datetime | None = None) -> dict[str, Any]:
    """The fields of ``/healthz`` beside ``status``: ``records`` (the last sequence number)
    and ``last_checkpoint`` (None before the first)."""
    with Session(store.engine) as session:
        records = session.exec(select(func.max(AuditEntry.seq))).one()
        newest = session.exec(
            select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(1)
        ).first()
    checkpoint = None
    if newest is not None:
        checkpoint = {
            "tree_size": newest.tree_size,
            "created_at": newest.created_at,
            "age_s": checkpoint_age_s(newest.created_at, now or datetime.now(UTC)),
        }
    return {"records": records or 0, "last_checkpoint": checkpoint}
