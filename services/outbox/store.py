"""The outbox store: accept a submission with its records in one transaction; hand the
relay what is unpublished, in order; remember what was published.

Idempotency (the IETF ``Idempotency-Key`` header draft): a submission that names a key
already used by its agency is answered with the first answer if it is the same request
(same fingerprint), and refused if it is a different one. Either way nothing more is
stored, so a retried request never publishes twice.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert
from sqlalchemy import select as select_columns  # sqlmodel's takes at most four
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select, update

from services.backbone.bulk import insert_rows
from services.backbone.database import create_tables, engine_for
from services.backbone.lease import LEASE_TABLE
from services.backbone.records import Header, headers_from_stored, stored_headers
from services.outbox.tables import NativeVersionRow, OutboxRow, SubmissionRow


class IdempotencyKeyReused(Exception):
    """The key was used before for a different request."""


class AmendedMeanwhile(Exception):
    """Another request changed the same record between this one's look and its commit."""


@dataclass(frozen=True)
class Version:
    """What the outbox knows of a record of the agency's system: its latest version."""

    version: int
    digest: str
    event_id: str


@dataclass(frozen=True)
class VersionChange:
    """A record's new latest version, written with the submission that publishes it;
    ``previous`` is the version it was read at (None: the record's first)."""

    first_event_id: str
    previous: int | None
    now: Version


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
class NewSubmission:
    """One request's records to accept, with what identifies the request."""

    agency: str
    key_id: str
    idempotency_key: str | None
    fingerprint: str
    records: Sequence[Record]
    response: dict[str, Any]  # the answer to give, without the submission id
    versions: Sequence[VersionChange] = ()


@dataclass(frozen=True)
class Pending:
    seq: int
    event_id: str
    event_type: str
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[Header]
    created_at: datetime


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest: datetime | None
    failed: int = 0  # refused by the broker for good, dead-lettered


def _write_versions(
    conn: Connection, changes: Sequence[tuple[str, VersionChange]], now: datetime
) -> None:
    """:func:`_write_version` for each ``(agency, change)``, the first versions inserted
    together before the later ones are written in their order (a later version follows its
    record's first or the one before it, never another record's). A group's uploads hold
    thousands of first versions: a statement and a savepoint each cost more than the rest
    of storing an event. If any was inserted meanwhile, they go again one by one, which
    names that one."""
    firsts = [(agency, change) for agency, change in changes if change.previous is None]
    if firsts:
        try:
            with conn.begin_nested():
                insert_rows(
                    conn,
                    _VERSION,
                    (
                        {"agency": agency, "first_event_id": c.first_event_id, **_values(c, now)}
                        for agency, c in firsts
                    ),
                )
        except IntegrityError:
            for agency, change in firsts:
                _write_version(conn, agency, change, now)
    for agency, change in changes:  # later versions, each from the one before it
        if change.previous is not None:
            _write_version(conn, agency, change, now)


def _values(change: VersionChange, now: datetime) -> dict[str, Any]:
    return {
        "version": change.now.version,
        "digest": change.now.digest,
        "event_id": change.now.event_id,
        "updated_at": now,
    }


def _write_version(conn: Connection, agency: str, change: VersionChange, now: datetime) -> None:
    """The record's new latest version, if it is still at the version it was read at: a
    first version is inserted (a concurrent first insert fails on the key), a later one
    updated only from the version read; otherwise AmendedMeanwhile."""
    c = _VERSION.c
    values = _values(change, now)
    if change.previous is None:
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(_VERSION),
                    {"agency": agency, "first_event_id": change.first_event_id, **values},
                )
        except IntegrityError:
            raise AmendedMeanwhile(change.first_event_id) from None
        return
    done = conn.execute(
        _VERSION.update()
        .where(
            c.agency == agency,
            c.first_event_id == change.first_event_id,
            c.version == change.previous,
        )
        .values(**values)
    )
    if done.rowcount != 1:
        raise AmendedMeanwhile(change.first_event_id)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


_SUBMISSION: Table = SubmissionRow.__table__  # type: ignore[attr-defined]
_EVENT: Table = OutboxRow.__table__  # type: ignore[attr-defined]
_VERSION: Table = NativeVersionRow.__table__  # type: ignore[attr-defined]
# Asked before every group commit: built once, not a statement to build and coerce a time.
_VERSIONS_OF = select_columns(
    _VERSION.c.first_event_id, _VERSION.c.version, _VERSION.c.digest, _VERSION.c.event_id
).where(
    _VERSION.c.agency == bindparam("agency"),
    _VERSION.c.first_event_id.in_(bindparam("firsts", expanding=True)),
)
_SENT_OF = select_columns(_EVENT.c.event_id).where(
    _EVENT.c.event_id.in_(bindparam("ids", expanding=True))
)

OUTBOX_TABLES = (
    str(SubmissionRow.__tablename__),
    str(OutboxRow.__tablename__),
    str(NativeVersionRow.__tablename__),
    LEASE_TABLE,
)
# What an agency service's own database role may do with its outbox (the operator owns the
# schema): take submissions, publish and mark events, hold the relay's lease, and delete
# what was published longer ago than anything needs it (purge_published).
OUTBOX_PRIVILEGES = {
    str(SubmissionRow.__tablename__): ("SELECT", "INSERT", "DELETE"),
    str(OutboxRow.__tablename__): ("SELECT", "INSERT", "UPDATE", "DELETE"),
    str(NativeVersionRow.__tablename__): ("SELECT", "INSERT", "UPDATE"),
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
        sub = NewSubmission(agency, key_id, idempotency_key, fingerprint, records, response)
        (answer,) = self.accept_all([sub], now=now)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def accept_all(
        self, submissions: Sequence[NewSubmission], *, now: datetime
    ) -> list[Accepted | Exception]:
        """:meth:`accept` for each submission, committed together (one commit for all: a
        group commit); each one's answer, or the exception that refused it alone."""
        answers: list[Accepted | Exception | None] = []
        for sub in submissions:
            try:
                answers.append(self._earlier_for(sub))
            except IdempotencyKeyReused as exc:
                answers.append(exc)
        fresh = {i: str(uuid.uuid4()) for i, answer in enumerate(answers) if answer is None}
        try:
            with self._write_lock, self.engine.begin() as conn:
                stored = _insert_all(conn, [(submissions[i], sid) for i, sid in fresh.items()], now)
            for i, accepted in zip(fresh, stored, strict=True):
                answers[i] = accepted
        except AmendedMeanwhile as exc:
            # A record one of them changes was changed meanwhile: each one again alone, so
            # only that one is refused (and asked to send again).
            if len(fresh) > 1:
                for i in fresh:
                    try:
                        (answers[i],) = self.accept_all([submissions[i]], now=now)
                    except SQLAlchemyError as alone:
                        answers[i] = alone
            else:
                (i,) = fresh
                answers[i] = exc
        except IntegrityError as exc:
            # Another request took a key between our look and our insert (perhaps one of
            # this group): each one again alone, so only the loser is answered differently.
            if len(fresh) > 1:
                for i in fresh:
                    (answers[i],) = self.accept_all([submissions[i]], now=now)
            else:
                (i,) = fresh
                try:
                    answers[i] = self._earlier_for(submissions[i]) or exc
                except IdempotencyKeyReused as reused:
                    answers[i] = reused
        except SQLAlchemyError:
            # The database refused the group (a value one submission holds, or itself
            # failing): each one again alone, so a refusal is only its own submission's.
            if len(fresh) <= 1:
                raise
            for i in fresh:
                try:
                    (answers[i],) = self.accept_all([submissions[i]], now=now)
                except SQLAlchemyError as alone:
                    answers[i] = alone
        return [a if a is not None else RuntimeError("not stored") for a in answers]

    def _earlier_for(self, sub: NewSubmission) -> Accepted | None:
        if sub.idempotency_key is None:
            return None
        return self._earlier(sub.agency, sub.idempotency_key, sub.fingerprint)

    def versions(self, agency: str, first_event_ids: Sequence[str]) -> dict[str, Version]:
        """The latest version of each record named by its first version's event id."""
        if not first_event_ids:
            return {}
        with self.engine.connect() as conn:  # one connection for both looks
            rows = conn.execute(
                _VERSIONS_OF, {"agency": agency, "firsts": sorted(set(first_event_ids))}
            ).all()
            known = {first: Version(v, digest, event_id) for first, v, digest, event_id in rows}
            # A record first sent before versions were kept has its first event in the
            # outbox and no version: version 1, of content unknown, so a change becomes
            # version 2 (an identical re-send too: a correction delivered twice, never one
            # lost).
            unversioned = set(first_event_ids) - known.keys()
            if unversioned:
                sent = conn.execute(_SENT_OF, {"ids": sorted(unversioned)}).scalars()
                known |= {first: Version(1, "", first) for first in set(sent)}
        return known

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
        c = _EVENT.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select_columns(
                    c.seq,
                    c.event_id,
                    c.event_type,
                    c.topic,
                    c.record_key,
                    c.record_value,
                    c.record_headers,
                    c.created_at,
                )
                .where(c.topic == topic, c.published_at.is_(None), c.failed_at.is_(None))
                .order_by(c.seq)
                .limit(limit)
            ).all()
        return [
            Pending(
                seq=seq,
                event_id=event_id,
                event_type=event_type,
                topic=topic_,
                key=key,
                value=value,
                headers=headers_from_stored(headers),
                created_at=_utc(created_at),
            )
            for seq, event_id, event_type, topic_, key, value, headers, created_at in rows
        ]

    def mark_published(self, seqs: Sequence[int], *, now: datetime) -> None:
        """Record that the broker took these; their content is no longer kept. Their record
        key is (the subject's routing key, a keyed value, never an identifier): a recall of
        the record is published under it, so it follows the record on its partition."""
        if not seqs:
            return
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                update(_EVENT)
                .where(_EVENT.c.seq.in_(seqs))
                .values(published_at=now, record_value=b"", record_headers=[])
            )

    def purge_published(self, before: datetime) -> int:
        """Delete what was published (or refused for good) before ``before``, and the
        submissions left with no event; how many events. Their content went at publication;
        what stays (ids, types, times, the routing key) serves recalls and retried requests,
        and nothing older than the recall window needs it. Versions stay: an amendment
        needs its record's last one, whenever it comes."""
        done = _EVENT.c.published_at < before
        failed = _EVENT.c.failed_at < before
        with self._write_lock, self.engine.begin() as conn:
            gone = conn.execute(delete(_EVENT).where(done | failed)).rowcount
            left = select_columns(_EVENT.c.submission_id).distinct()
            conn.execute(
                delete(_SUBMISSION).where(
                    _SUBMISSION.c.received_at < before, _SUBMISSION.c.id.not_in(left)
                )
            )
        return int(gone or 0)

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
        """What waits for the relay (how many, and since when the first in line), and how
        many records were refused for good; read on the partial indexes of waiting and
        refused records (tables.py), never over what was published."""
        c = _EVENT.c
        waiting = (c.topic == topic, c.published_at.is_(None), c.failed_at.is_(None))
        with self.engine.connect() as conn:
            count = conn.execute(select_columns(func.count()).where(*waiting)).scalar_one()
            oldest = conn.execute(
                select_columns(c.created_at).where(*waiting).order_by(c.seq).limit(1)
            ).scalar()
            failed = conn.execute(
                select_columns(func.count()).where(c.topic == topic, c.failed_at.is_not(None))
            ).scalar_one()
        return Backlog(int(count), _utc(oldest) if oldest is not None else None, int(failed))


def _insert_all(
    conn: Connection, group: Sequence[tuple[NewSubmission, str]], now: datetime
) -> list[Accepted]:
    """Each submission of ``group`` under its id, in three statements for all of them: the
    submissions (their keys' uniqueness guards the records: a key taken meanwhile fails the
    transaction, and accept_all tries each alone), their events, and their records'
    versions."""
    accepted = [
        Accepted(submission_id, {"submission": submission_id, **sub.response}, replayed=False)
        for sub, submission_id in group
    ]
    insert_rows(
        conn,
        _SUBMISSION,
        (
            {
                "id": submission_id,
                "agency": sub.agency,
                "key_id": sub.key_id,
                "idempotency_key": sub.idempotency_key,
                "fingerprint": sub.fingerprint,
                "response": answer.response,
                "received_at": now,
            }
            for (sub, submission_id), answer in zip(group, accepted, strict=True)
        ),
    )
    insert_rows(conn, _EVENT, (_row(sid, r, now) for sub, sid in group for r in sub.records))
    _write_versions(conn, [(sub.agency, c) for sub, _ in group for c in sub.versions], now)
    return accepted


def _row(submission_id: str, r: Record, now: datetime) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "event_id": r.event_id,
        "event_type": r.event_type,
        "topic": r.topic,
        "record_key": r.key,
        "record_value": r.value,
        "record_headers": stored_headers(r.headers),
        "created_at": now,
        "published_at": None,
        "failed_at": None,
        "failure": None,
    }
