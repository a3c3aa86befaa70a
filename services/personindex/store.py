"""The person index's storage: links from keyed identifiers to people, and the review queue.

Every agency service resolves the subjects of the events it accepts here, so a child known
to a school by UPN, to the NHS by NHS number and to a local authority by its person id is
one subject once any record has carried two of them together. The rules are pure
(:mod:`services.personindex.matching`); this module stores what they decide, all of one
request's subjects in one transaction. Two services resolving at once is safe without a
lock: a key or person is unique, so the second writer fails, reads the first's links and
decides again (links never move, so it cannot undo anything).

A person's *subject identity* is the canonical identifier of the record that founded them
(``nhs:...``, ``upn:...`` or ``la:<agency>:...``): events about them are keyed by it, so a
child first known by NHS number keeps the keys, pseudonyms and consent it always had.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, SQLModel, col, select

from services.backbone.bulk import insert_rows
from services.backbone.database import create_tables, engine_for
from services.backbone.keyed import Key, keyed_id
from services.personindex.matching import Conflict, Presented, Resolved, resolve
from services.personindex.tables import LinkRow, PersonRow, ReviewRow

_SEAL_INFO = b"infoshare person-index subject identity v1"
_ATTEMPTS = 8


@dataclass(frozen=True)
class Resolution:
    identity: str | None  # the subject identity to key the event by; None: nobody
    outcome: str  # identifier | demographics | new | conflict | unidentified


_PERSON: Table = PersonRow.__table__  # type: ignore[attr-defined]
_LINK: Table = LinkRow.__table__  # type: ignore[attr-defined]
_REVIEW: Table = ReviewRow.__table__  # type: ignore[attr-defined]
PERSON_INDEX_TABLES = tuple(str(t.__tablename__) for t in (PersonRow, LinkRow, ReviewRow))
# The agency services resolve and link: they read and add, never change a person or a link
# another agency made (closing a review is the operator's, ``infoshare persons``). The
# consent API only finds a child's identity. Nobody deletes; the operator owns the schema.
PERSON_INDEX_WRITER = {name: ("SELECT", "INSERT") for name in PERSON_INDEX_TABLES}
PERSON_INDEX_READER = {
    str(PersonRow.__tablename__): ("SELECT",),
    str(LinkRow.__tablename__): ("SELECT",),
}


def create_person_index_schema(engine: Engine) -> None:
    create_tables(engine, tables=[SQLModel.metadata.tables[n] for n in PERSON_INDEX_TABLES])


class PersonIndex:
    def __init__(self, url: str, routing: Key) -> None:
        self.engine = engine_for(url)
        self._secret = routing.secret
        seal_key = HKDF(hashes.SHA256(), 64, salt=None, info=_SEAL_INFO).derive(routing.secret)
        self._siv = AESSIV(seal_key)
        self._lock = threading.Lock()  # SQLite: one writer of this process at a time

    def create_schema(self) -> None:
        create_person_index_schema(self.engine)

    def hashed(self, canonical: str) -> str:
        return keyed_id(self._secret, "person-index", canonical, length=64)

    def resolve_all(
        self,
        records: Sequence[Presented],
        *,
        agency: str,
        event_ids: Sequence[str] | None = None,
    ) -> list[Resolution]:
        """Resolve each record's subject, linking what the rules say, in one transaction;
        conflicts and demographic matches are queued for review, once per event (a record
        sent again is not queued again)."""
        ids: Sequence[str | None] = event_ids if event_ids is not None else [None] * len(records)
        for attempt in range(_ATTEMPTS):
            try:
                with self._lock:
                    return self._resolve_all(records, ids, agency)
            except (IntegrityError, OperationalError):
                # Another service linked one of these keys (or held the write lock) first.
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * 2**attempt)
        raise AssertionError("unreachable")

    def _resolve_all(
        self, records: Sequence[Presented], ids: Sequence[str | None], agency: str
    ) -> list[Resolution]:
        """One read of every link the records could name, the rules applied record by
        record in memory (each seeing the links the ones before it made), one write of what
        they add: a bulk upload costs a few statements, not three per child."""
        wanted = [self._candidates(p) for p in records]
        with self.engine.begin() as conn:  # Core: the ORM cost more than the database here
            batch = _Batch(
                agency=agency,
                now=datetime.now(UTC),
                links=_links(conn, {h for _keys, candidates in wanted for h in candidates}),
                reviewed=_reviewed(conn, {i for i in ids if i is not None}),
            )
            decided = [
                self._decide(presented, keys, candidates, batch, event_id)
                for presented, (keys, candidates), event_id in zip(
                    records, wanted, ids, strict=True
                )
            ]
            found = {d[0] for d in decided if isinstance(d, tuple) and d[0] not in batch.identity}
            for person, sealed in _sealed(conn, found).items():
                batch.identity[person] = self._unseal(sealed)
            batch.write(conn)
        out = []
        for d in decided:
            if isinstance(d, Resolution):
                out.append(d)
            elif d[0] not in batch.identity:
                raise LookupError("a link names a person the index does not hold")
            else:
                out.append(Resolution(batch.identity[d[0]], d[1]))
        return out

    def _candidates(self, presented: Presented) -> tuple[list[str], dict[str, str]]:
        """The record's strong keys, and every key it could be linked by, hashed: key."""
        keys = presented.strong_keys()
        demo = presented.demographics.key() if presented.demographics else None
        return keys, {self.hashed(k): k for k in [*keys, *([demo] if demo else [])]}

    def _decide(
        self,
        presented: Presented,
        keys: list[str],
        candidates: dict[str, str],
        batch: _Batch,
        event_id: str | None,
    ) -> Resolution | tuple[str, str]:
        """The record's resolution, or (the person it names, how): the person's identity is
        read once for the whole batch."""
        person_of = {key: batch.links[h] for h, key in candidates.items() if h in batch.links}
        founding = keys[0] if keys else None
        decided = resolve(presented, person_of, lambda: self.hashed(f"person|{founding}"))
        if isinstance(decided, Conflict):
            batch.review(
                event_id,
                "conflict",
                decided.reason,
                list(decided.persons),
                [k.split(":", 1)[0] for k in decided.keys],
            )
            return Resolution(founding, "conflict")  # keyed by its own identifier, unlinked
        if not isinstance(decided, Resolved):
            return Resolution(None, "unidentified")
        if decided.by == "new":
            if founding is None:  # demographics alone found nobody to key by
                return Resolution(None, "unidentified")
            batch.person(decided.person, founding, self._seal(founding))
        for key in decided.new_links:
            batch.link(self.hashed(key), decided.person, key.split(":", 1)[0])
        if decided.review:
            kind = "demographic_match" if decided.by == "demographics" else "demographics_elsewhere"
            batch.review(
                event_id,
                kind,
                decided.review,
                [decided.person],
                sorted({k.split(":", 1)[0] for k in decided.new_links}),
            )
        if decided.by == "new":
            return Resolution(founding, "new")
        return decided.person, decided.by

    def identity_of(self, canonical: str) -> str | None:
        """The subject identity the index links ``canonical`` to (``nhs:...``), or None if
        the identifier is not linked to anyone yet."""
        with Session(self.engine) as s:
            link = s.get(LinkRow, self.hashed(canonical))
            person = s.get(PersonRow, link.person) if link else None
        return self._unseal(person.subject_sealed) if person else None

    def reviews(self, *, status: str | None = "pending") -> list[ReviewRow]:
        with Session(self.engine) as s:
            query = select(ReviewRow).order_by(col(ReviewRow.id))
            if status:
                query = query.where(ReviewRow.status == status)
            return list(s.exec(query).all())

    def close_review(self, review_id: int, *, by: str, note: str) -> ReviewRow:
        """Record that a person looked at a flagged match, and what they found. Links are
        not changed: two people are never merged by the index."""
        with self._lock, Session(self.engine, expire_on_commit=False) as s:
            row = s.get(ReviewRow, review_id)
            if row is None:
                raise KeyError(review_id)
            if row.status != "pending":
                raise ValueError(f"review {review_id} was closed already")
            row.status, row.resolved_by, row.note = "resolved", by, note
            row.resolved_at = datetime.now(UTC)
            s.add(row)
            s.commit()
            return row

    def _seal(self, identity: str) -> str:
        return self._siv.encrypt(identity.encode(), [b"subject"]).hex()

    def _unseal(self, sealed: str) -> str:
        return self._siv.decrypt(bytes.fromhex(sealed), [b"subject"]).decode()


_CHUNK = 500  # keys per IN (...): well within every database's limit on parameters


def _links(conn: Connection, hashed: set[str]) -> dict[str, str]:
    """hashed key: person, for those of ``hashed`` the index links."""
    keys, found = sorted(hashed), {}
    for i in range(0, len(keys), _CHUNK):
        rows = conn.execute(
            select(_LINK.c.key, _LINK.c.person).where(_LINK.c.key.in_(keys[i : i + _CHUNK]))
        )
        found.update({key: person for key, person in rows})
    return found


def _sealed(conn: Connection, persons: set[str]) -> dict[str, str]:
    """person: sealed subject identity, for those of ``persons`` the index holds."""
    ids, found = sorted(persons), {}
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(_PERSON.c.id, _PERSON.c.subject_sealed).where(
                _PERSON.c.id.in_(ids[i : i + _CHUNK])
            )
        )
        found.update({person: sealed for person, sealed in rows})
    return found


def _reviewed(conn: Connection, event_ids: set[str]) -> set[tuple[str, str]]:
    """(event id, kind) of the reviews already queued for ``event_ids``."""
    ids, found = sorted(event_ids), set[tuple[str, str]]()
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(_REVIEW.c.event_id, _REVIEW.c.kind).where(
                _REVIEW.c.event_id.in_(ids[i : i + _CHUNK])
            )
        )
        found.update((event_id, kind) for event_id, kind in rows)
    return found


@dataclass
class _Batch:
    """What one transaction's records found and add. Links it adds are seen by the records
    after them; nothing is written until :meth:`write`, all of it at once."""

    agency: str
    now: datetime
    links: dict[str, str]  # hashed key: person (the index's, and those added)
    reviewed: set[tuple[str, str]]  # (event id, kind) queued already
    identity: dict[str, str] = field(default_factory=dict)  # person: subject identity
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"persons": [], "links": [], "reviews": []}
    )

    def person(self, person: str, identity: str, sealed: str) -> None:
        self.identity[person] = identity
        self.rows["persons"].append(
            {"id": person, "subject_sealed": sealed, "created_at": self.now}
        )

    def link(self, hashed: str, person: str, kind: str) -> None:
        self.links[hashed] = person
        self.rows["links"].append(
            {
                "key": hashed,
                "person": person,
                "kind": kind,
                "source_agency": self.agency,
                "linked_at": self.now,
            }
        )

    def review(
        self,
        event_id: str | None,
        kind: str,
        reason: str,
        persons: list[str],
        key_kinds: list[str],
    ) -> None:
        """Queue a review for the record's event, unless that event has one of the kind."""
        if event_id is not None:
            if (event_id, kind) in self.reviewed:
                return
            self.reviewed.add((event_id, kind))
        self.rows["reviews"].append(
            {
                "kind": kind,
                "reason": reason,
                "persons": persons,
                "key_kinds": key_kinds,
                "source_agency": self.agency,
                "event_id": event_id,
                "status": "pending",
                "created_at": self.now,
            }
        )

    def write(self, conn: Connection) -> None:
        for table, name in ((_PERSON, "persons"), (_LINK, "links"), (_REVIEW, "reviews")):
            insert_rows(conn, table, self.rows[name])
