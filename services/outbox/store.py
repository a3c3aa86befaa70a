"""The outbox store: accept a submission with its records in one transaction; hand the
relay what is unpublished, in order; remember what was published.

Idempotency (the IETF ``Idempotency-Key`` header draft): a submission that names a key
already used by its agency is answered with the first answer if it is the same request
(same fingerprint), and refused if it is a different one. Either way nothing more is
stored, so a retried request never publishes twice.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select, update

from services.backbone.database import create_tables, engine_for
from services.backbone.lease import LEASE_TABLE
from services.outbox.tables import OutboxRow, SubmissionRow


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


@dataclass(frozen=True)
class Record:
    """One Kafka record to publish: already encoded (headers carry the trace context)."""

    event_id: str
    event_type: str
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class Accepted:
    submission_id: str
    response: dict[str, Any]
    replayed: bool  # True: the answer to an earlier request with the same key


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    event_type: str
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    created_at: datetime


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest: datetime | None
    failed: int = 0  # refused by the broker for good, dead-lettered


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


OUTBOX_TABLES = (str(SubmissionRow.__tablename__), str(OutboxRow.__tablename__), LEASE_TABLE)
# What an agency service's own database role may do with its outbox (the operator owns the
# schema): take submissions, publish and mark events, hold the relay's lease. No DELETE.
OUTBOX_PRIVILEGES = {
    str(SubmissionRow.__tablename__): ("SELECT", "INSERT"),
    str(OutboxRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
    LEASE_TABLE: ("SELECT", "INSERT", "UPDATE"),
}


class OutboxStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        self._write_lock = threading.Lock()  # SQLite takes one writer at a time

    def create_schema(self) -> None:
        create_tables(self.engine, tables=[SQLModel.metadata.tables[n] for n in OUTBOX_TABLES])

    def accept(
        self,
        *,
        agency: str,
        key_id: str,
        idempotency_key: str | None,
        fingerprint: str,
        records: Sequence[Record],
        response: dict[str, Any],
        now: datetime,
    ) -> Accepted:
        """Store the submission and its records, all or nothing, and return the answer to
        give; or the stored answer of an earlier identical request with the same key."""
        if idempotency_key is not None:
            earlier = self._earlier(agency, idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        submission_id = str(uuid.uuid4())
        answer = {"submission": submission_id, **response}
        try:
            with self._write_lock, Session(self.engine) as s:
                s.add(
                    SubmissionRow(
                        id=submission_id,
                        agency=agency,
                        key_id=key_id,
                        idempotency_key=idempotency_key,
                        fingerprint=fingerprint,
                        response=answer,
                        received_at=now,
                    )
                )
                s.flush()  # the submission first: its key's uniqueness guards the records
                s.add_all(_row(submission_id, r, now) for r in records)
                s.commit()
        except IntegrityError:
            # Another process took the key between our look and our insert.
            earlier = self._earlier(agency, idempotency_key or "", fingerprint)
            if earlier is None:
                raise
            return earlier
        return Accepted(submission_id, answer, replayed=False)

    def replay(
        self, *, agency: str, idempotency_key: str | None, fingerprint: str
    ) -> Accepted | None:
        """The answer to an earlier request with this key, if there was one (so a retry
        does nothing else); IdempotencyKeyReused if the key was used for another request."""
        if idempotency_key is None:
            return None
        return self._earlier(agency, idempotency_key, fingerprint)

    def _earlier(self, agency: str, key: str, fingerprint: str) -> Accepted | None:
        with Session(self.engine) as s:
            row = s.exec(
                select(SubmissionRow).where(
                    SubmissionRow.agency == agency, SubmissionRow.idempotency_key == key
                )
            ).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used for a different request")
        return Accepted(row.id, row.response, replayed=True)

    def submission(
        self, agency: str, submission_id: str
    ) -> tuple[SubmissionRow, list[OutboxRow]] | None:
        """A submission of ``agency`` and its records; None for another agency's."""
        with Session(self.engine) as s:
            sub = s.get(SubmissionRow, submission_id)
            if sub is None or sub.agency != agency:
                return None
            rows = s.exec(
                select(OutboxRow)
                .where(OutboxRow.submission_id == submission_id)
                .order_by(col(OutboxRow.seq))
            ).all()
        return sub, list(rows)

    def pending(self, topic: str, limit: int) -> list[Pending]:
        """The oldest unpublished records for ``topic`` (one agency's source topic: services
        of two agencies may share a database), in the order they were accepted."""
        with Session(self.engine) as s:
            rows = s.exec(
                select(OutboxRow)
                .where(
                    OutboxRow.topic == topic,
                    col(OutboxRow.published_at).is_(None),
                    col(OutboxRow.failed_at).is_(None),
                )
                .order_by(col(OutboxRow.seq))
                .limit(limit)
            ).all()
        return [
            Pending(
                seq=r.seq or 0,
                event_id=r.event_id,
                event_type=r.event_type,
                topic=r.topic,
                key=r.record_key,
                value=r.record_value,
                headers=[(n, base64.b64decode(v)) for n, v in r.record_headers],
                created_at=_utc(r.created_at),
            )
            for r in rows
        ]

    def mark_published(self, seqs: Sequence[int], *, now: datetime) -> None:
        """Record that the broker took these; their content is no longer kept."""
        if not seqs:
            return
        with self._write_lock, Session(self.engine) as s:
            s.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq).in_(seqs))
                .values(published_at=now, record_key=None, record_value=b"", record_headers=[])
            )
            s.commit()

    def mark_failed(self, seq: int, *, failure: str, now: datetime) -> None:
        """The broker refused this record for good: it is not sent again, nor kept."""
        with self._write_lock, Session(self.engine) as s:
            s.execute(
                update(OutboxRow)
                .where(col(OutboxRow.seq) == seq)
                .values(
                    failed_at=now,
                    failure=failure[:120],
                    record_key=None,
                    record_value=b"",
                    record_headers=[],
                )
            )
            s.commit()

    def backlog(self, topic: str) -> Backlog:
        with Session(self.engine) as s:
            count, oldest = s.exec(
                select(func.count(), func.min(OutboxRow.created_at)).where(
                    OutboxRow.topic == topic,
                    col(OutboxRow.published_at).is_(None),
                    col(OutboxRow.failed_at).is_(None),
                )
            ).one()
            failed = s.exec(
                select(func.count()).where(
                    OutboxRow.topic == topic, col(OutboxRow.failed_at).is_not(None)
                )
            ).one()
        return Backlog(int(count), _utc(oldest) if oldest is not None else None, int(failed))


def _row(submission_id: str, r: Record, now: datetime) -> OutboxRow:
    return OutboxRow(
        submission_id=submission_id,
        event_id=r.event_id,
        event_type=r.event_type,
        topic=r.topic,
        record_key=r.key,
        record_value=r.value,
        record_headers=[[n, base64.b64encode(v).decode()] for n, v in r.headers],
        created_at=now,
    )
