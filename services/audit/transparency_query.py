"""The transparency report's one read of the audit store: the records of a period counted by
the database (GROUP BY), a row per combination of the columns the report may name, never a
row per record, so that millions of records cost one scan of the period and a few hundred
rows. Columns that name a child, a person or a record, or hold free text, are never read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Engine, Table, case, func, select

from services.audit.models import OVERRIDE_CODE, AuditEntry
from services.audit.reviews import REVIEW_ACTION

# What the report may name of a record (services/audit/transparency.py reads these only).
COUNTED_BY = (
    "decision",
    "action",
    "reason_code",
    "protocol_id",
    "protocol_version",
    "purpose",
    "source_agency",
    "recipient",
)


def counted(engine: Engine, *, since: datetime, until: datetime) -> list[Mapping[str, object]]:
    """The records with ``since <= recorded_at < until``, counted (``n``) by the columns in
    COUNTED_BY and, for a decision shared under a safeguarding override, by ``review``: the
    reason code of its review (override.reviewed.<outcome>, whenever it was made), None
    while none has been made."""
    entry: Table = AuditEntry.__table__  # type: ignore[attr-defined]
    review = entry.alias("review")
    # The first review of the override (there is one: the review index is unique per
    # decision), looked up only for overrides, through the index on refers_to.
    first_review = (
        select(review.c.reason_code)
        .where(review.c.refers_to == entry.c.audit_id, review.c.action == REVIEW_ACTION)
        .order_by(review.c.seq)
        .limit(1)
        .scalar_subquery()
    )
    period = (
        select(
            *(entry.c[name] for name in COUNTED_BY),
            case((entry.c.reason_code == OVERRIDE_CODE, first_review), else_=None).label("review"),
        )
        .where(entry.c.recorded_at >= since, entry.c.recorded_at < until)
        .subquery("period")
    )
    groups = list(period.c)
    stmt = select(*groups, func.count().label("n")).group_by(*groups)
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]
