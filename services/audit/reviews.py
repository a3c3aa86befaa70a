"""IG officers' reviews of decisions shared under a safeguarding override, in the chain.

A review is sealed as an audit record of its own (action ``override_review``, ``refers_to``
the decision, the officer as actor, the finding as reason), and written in the same
transaction to ``override_review``, the index the review queue reads. ``infoshare audit
verify`` compares the index with the sealed reviews, so a review edited or removed by hand
is found, and one added by hand too. Reviews made before they were chained are sealed when
the service starts (``seal_unchained_reviews``).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.audit.models import (
    OVERRIDE_CODE,
    AuditEntry,
    OverrideReview,
    OverrideReviewIn,
    as_utc,
)
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord

REVIEW_ACTION = "override_review"
REVIEW_CODE = "override.reviewed"
# (decision's audit id, reviewer, note, reviewed at[, outcome]): a review made before
# outcomes were kept has four, so what an earlier verification kept of it still matches.
Review = tuple[str, ...]


class NotAnOverride(LookupError):
    """No decision with this audit id was shared under a safeguarding override."""


class AlreadyReviewed(LookupError):
    """This override has been reviewed already; reviews are not rewritten."""


def overrides(
    store: AuditStore, *, reviewed: bool | None, limit: int = 100, newest_first: bool = False
) -> list[tuple[AuditEntry, OverrideReview | None]]:
    """Decisions shared under a safeguarding override, oldest first (or newest), with their
    review."""
    stmt = (
        select(AuditEntry, OverrideReview)
        .join(
            OverrideReview, col(OverrideReview.audit_id) == col(AuditEntry.audit_id), isouter=True
        )
        .where(col(AuditEntry.reason_code) == OVERRIDE_CODE)
    )
    if reviewed is True:
        stmt = stmt.where(col(OverrideReview.id).is_not(None))
    elif reviewed is False:
        stmt = stmt.where(col(OverrideReview.id).is_(None))
    with Session(store.engine) as session:
        order = col(AuditEntry.seq).desc() if newest_first else col(AuditEntry.seq)
        return [(e, r) for e, r in session.exec(stmt.order_by(order).limit(limit))]


def _record(row: OverrideReview) -> AuditRecord:
    return AuditRecord(
        audit_id=str(uuid.uuid4()),
        recorded_at=row.reviewed_at,
        action=REVIEW_ACTION,
        decision=AuditOutcome.RECORDED,
        # The outcome in the code (override.reviewed.justified), sealed with the note.
        reason_code=f"{REVIEW_CODE}.{row.outcome}" if row.outcome else REVIEW_CODE,
        reason=row.note,
        actor=row.reviewer,
        refers_to=row.audit_id,
    )


def review_override(
    store: AuditStore, audit_id: str, review: OverrideReviewIn, *, reviewer: str
) -> OverrideReview:
    """Seal the review into the chain and its index, in one transaction; NotAnOverride or
    AlreadyReviewed (another officer's was stored first) otherwise."""
    with Session(store.engine) as session:
        entry = session.exec(select(AuditEntry).where(col(AuditEntry.audit_id) == audit_id)).first()
        if entry is None or entry.reason_code != OVERRIDE_CODE:
            raise NotAnOverride(audit_id)
        if session.exec(
            select(OverrideReview).where(col(OverrideReview.audit_id) == audit_id)
        ).first():
            raise AlreadyReviewed(audit_id)
    now = datetime.now(UTC)

    def new_row() -> OverrideReview:
        return OverrideReview(
            audit_id=audit_id,
            reviewer=reviewer,
            note=review.note,
            outcome=review.outcome,
            reviewed_at=now,
        )

    row = new_row()  # what the caller is given; the index gets its own row
    try:
        store.add_batch([_record(row)], also=lambda session: session.add(new_row()))
    except IntegrityError:  # another officer's review of it was stored first
        raise AlreadyReviewed(audit_id) from None
    return row


def seal_unchained_reviews(store: AuditStore) -> int:
    """Seal the reviews the index holds without a sealed record (made before reviews were
    chained); how many."""
    with Session(store.engine) as session:
        chained = set(
            session.exec(
                select(AuditEntry.refers_to).where(col(AuditEntry.action) == REVIEW_ACTION)
            )
        )
        loose = [r for r in session.exec(select(OverrideReview)) if r.audit_id not in chained]
    if loose:
        store.add_batch([_record(r) for r in loose])
    return len(loose)


def sealed_review(content: Mapping[str, Any]) -> Review | None:
    """The review a sealed record makes, if it is one (as the index stores it)."""
    if content.get("action") != REVIEW_ACTION:
        return None
    code = str(content.get("reason_code") or "")
    return _review(
        content.get("refers_to"),
        content.get("actor"),
        content.get("reason"),
        content.get("recorded_at"),
        code.removeprefix(f"{REVIEW_CODE}.") if code.startswith(f"{REVIEW_CODE}.") else None,
    )


def _review(audit_id: Any, reviewer: Any, note: Any, at: Any, outcome: Any = None) -> Review:
    moment = as_utc(at) if isinstance(at, datetime) else at
    when = moment.isoformat() if isinstance(moment, datetime) else str(moment)
    given = (str(audit_id), str(reviewer), str(note), when)
    return (*given, str(outcome)) if outcome else given


def review_index(engine: Engine) -> set[Review]:
    with Session(engine) as session:
        rows = session.exec(select(OverrideReview)).all()
    return {_review(r.audit_id, r.reviewer, r.note, r.reviewed_at, r.outcome) for r in rows}


def reviews_after(engine: Engine, seq: int) -> set[Review]:
    """The reviews sealed after ``seq`` (while a verification walked)."""
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEntry)
            .where(col(AuditEntry.seq) > seq)
            .where(col(AuditEntry.action) == REVIEW_ACTION)
        ).all()
    return {r for r in (sealed_review(row.content()) for row in rows) if r is not None}


def index_problem(indexed: Iterable[Hashable], sealed: set[Hashable]) -> str | None:
    """How the review index differs from the sealed reviews, counted, never quoted."""
    indexed = set(indexed)
    added, removed = indexed - sealed, sealed - indexed
    if not added and not removed:
        return None
    return (
        "the override review index (override_review) differs from the sealed reviews: "
        f"{len(added)} review(s) there that the chain does not hold, {len(removed)} sealed "
        "review(s) missing or changed there"
    )
