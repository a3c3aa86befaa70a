"""Audit storage through sqlmodel: SQLite by default, any SQLAlchemy URL the settings give."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Engine, bindparam, func, insert, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Session, col, select

from services.audit import migrate
from services.audit.chain import Checkpoint
from services.audit.models import (
    AuditEntry,
    SubjectAlias,
)
from services.audit.prepared import COLUMNS, Prepared, Ready, prepared
from services.audit.sealing import (
    Link,
    Sealing,
    append_to_file,
    chain_head,
    sealed_values,
    sign_head,
    write_checkpoint,
)
from services.backbone.bulk import write_bound
from services.backbone.database import engine_for
from services.backbone.recall import AUDIT_ACTION as RECALL_ACTION
from services.backbone.recall import PURGE_ACTION as RECALL_PURGE_ACTION


@dataclass(frozen=True)
class AuditQuery:
    recipient: str | None = None
    decision: str | None = None
    source_agency: str | None = None
    event_type: str | None = None
    protocol_id: str | None = None
    purpose: str | None = None
    subject_keys: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    limit: int = 100
    offset: int = 0
    newest_first: bool = False


ACCESS_ACTION = "audit_access"
# Any number, the same in every process: PostgreSQL's lock for the one writer of the chain.
_SEALING_LOCK = 0x1A0D17


# SQLite's default page cache is 2 MB: with millions of records every index insert went to
# the disk, and loading the benchmark's 5 million records fell from about 8,000 records/s
# to 1,200 past 3 million (with this cache: about 5,000 throughout).
SQLITE_CACHE_KIB = 256 * 1024
# A new store's pages are 16 KiB, not SQLite's 4: a record goes into the table and eight
# indexes, most of them of scattered keys, and with 4 KiB pages the splits and the WAL's
# page images made SQLite's own share of the ingest some 25 µs a record. Measured with
# 100,000 records: ingest 19,200-20,300 to 22,900 records/s, verify up 4%, a disclosure
# report's p95 7.9 to 5.3 ms (at 300,000); 64 KiB made the report slower (p95 10.5 ms).
# At 5,000,000 records: loading 9,984 to 11,581 records/s, the report's p95 4.6 ms either
# way. A store created before keeps its own page size.
SQLITE_PAGE_BYTES = 16 * 1024


class AuditStore:
    def __init__(self, url: str, sealing: Sealing) -> None:
        self.engine = self.engine_for(url)
        self.sealing = sealing
        # Records are numbered and chained after the last one: one batch at a time (the
        # ingester and the API's access records write from different threads).
        self._sealing = threading.Lock()

    @staticmethod
    def engine_for(url: str) -> Engine:
        """The audit store's engine: WAL lets the IG API read beside the ingester, and a
        commit is fully synchronous, as the ingester commits its Kafka offsets after it."""
        return engine_for(
            url,
            sqlite_cache_kib=SQLITE_CACHE_KIB,
            sqlite_page_bytes=SQLITE_PAGE_BYTES,
        )

    def create_schema(self) -> None:
        """Bring the database to the newest schema revision (Alembic)."""
        migrate.upgrade(self.engine)

    def add_batch(
        self, records: Sequence[Ready], *, also: Callable[[Session], None] | None = None
    ) -> int:
        """Store records not stored before (by audit id); return how many were new.
        ``records``: audit records, or records prepared already (``prepared.prepare``, for
        this store's ``engine.url.drivername``), perhaps in another process. ``also``
        writes into the same transaction (an index of what the records say)."""
        if not records:
            return 0
        with self._sealing:
            return self._add_batch(records, also)

    def _add_batch(self, records: Sequence[Ready], also: Callable[[Session], None] | None) -> int:
        driver = self.engine.url.drivername
        with Session(self.engine) as session:
            if self.engine.dialect.name == "postgresql":  # another process may seal too
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SEALING_LOCK})
            ids = [r.audit_id for r in records]
            existing = set(session.execute(self._stored_of(), {"ids": ids}).scalars())
            fresh: dict[str, Ready] = {}
            for r in records:
                if r.audit_id not in existing:
                    fresh.setdefault(r.audit_id, r)
            signed = None
            if fresh:
                links: list[Link] = []
                aliases: set[tuple[str, str, str]] = set()

                def taken() -> Iterator[Prepared]:
                    for r in fresh.values():
                        made = prepared(r, driver)
                        aliases.update(made.links)
                        yield made

                # Prepared and sealed as they are written: the database stores some while
                # we seal more.
                key, head = self.sealing.chain_key, chain_head(session)
                sealed = sealed_values(taken(), key, head, links)
                write_bound(session.connection(), AuditEntry.__table__, COLUMNS, sealed)  # type: ignore[attr-defined]
                self._add_aliases(session, aliases)
                if also is not None:
                    also(session)
                # In the records' own transaction: with checkpoint_every 1 (the default),
                # no record is ever committed without a signed checkpoint over it.
                signed = sign_head(
                    session,
                    self.sealing,
                    now=datetime.now(UTC),
                    min_new=self.sealing.checkpoint_every,
                    sealed=links,
                )
            session.commit()
        append_to_file(self.sealing, signed)
        return len(fresh)

    def _stored_of(self) -> Any:
        """The query for which of the ids are stored, given as one JSON array that the
        database takes apart: a parameter per id (or PostgreSQL's array of them) cost more
        to send than the lookups did (5,000 ids: 10-20 ms against 7 on SQLite, 40-47 against
        28-31 on PostgreSQL)."""
        column = col(AuditEntry.audit_id)
        if self.engine.dialect.name == "postgresql":
            listed = select(func.jsonb_array_elements_text(bindparam("ids", type_=JSONB)))
        else:
            listed = select(
                func.json_each(bindparam("ids", type_=JSON)).table_valued("value").c.value
            )
        return select(column).where(column.in_(listed))

    @staticmethod
    def _add_aliases(session: Session, links: set[tuple[str, str, str]]) -> None:
        if not links:
            return
        known = set(
            session.exec(
                select(
                    SubjectAlias.alias_key, SubjectAlias.subject_key, SubjectAlias.source_agency
                ).where(col(SubjectAlias.alias_key).in_({a for a, _, _ in links}))
            )
        )
        fresh = [
            {"alias_key": a, "subject_key": k, "source_agency": s} for a, k, s in links - known
        ]
        if fresh:
            session.execute(insert(SubjectAlias.__table__), fresh)  # type: ignore[attr-defined]

    def subject_keys(self, key: str, *, linked_by: str | None = None) -> list[str]:
        """The subject keys a keyed identifier finds: itself (records about a child whose
        primary identifier it is) and those it is an alias of; with ``linked_by``, only the
        links that agency's own records made."""
        stmt = select(SubjectAlias.subject_key).where(col(SubjectAlias.alias_key) == key)
        if linked_by is not None:
            stmt = stmt.where(col(SubjectAlias.source_agency) == linked_by)
        with Session(self.engine) as session:
            linked = session.exec(stmt).all()
        return sorted({key, *linked})

    def by_subject(self, subject_keys: Sequence[str], *, limit: int) -> list[AuditEntry]:
        """Every decision about one child (by audit subject keys), oldest first; reads of the
        trail itself (action ``audit_access``) are left out of a disclosure report. A recall
        brings the stores' records of deleting what it withdrew: they name the notice (as
        their event), never the child."""
        with Session(self.engine) as session:
            found = list(
                session.exec(
                    select(AuditEntry)
                    .where(col(AuditEntry.subject_key).in_(subject_keys))
                    .where(col(AuditEntry.action) != ACCESS_ACTION)
                    .order_by(col(AuditEntry.seq))
                    .limit(limit)
                )
            )
            notices = {e.delivery_id for e in found if e.action == RECALL_ACTION and e.delivery_id}
            if not notices:
                return found
            purges = session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.event_id).in_(sorted(notices)))
                .where(col(AuditEntry.action) == RECALL_PURGE_ACTION)
            ).all()
        return sorted([*found, *purges], key=lambda e: e.seq or 0)[:limit]

    def checkpoint(self) -> Checkpoint | None:
        """Sign the tree head over everything stored (the ingester calls it on a schedule)."""
        return write_checkpoint(self.engine, self.sealing, now=datetime.now(UTC))

    def search(self, q: AuditQuery) -> tuple[list[AuditEntry], int]:
        stmt = select(AuditEntry)
        filters = []
        if q.recipient:
            filters.append(col(AuditEntry.recipient) == q.recipient)
        if q.decision:
            filters.append(col(AuditEntry.decision) == q.decision)
        else:  # reads of the trail are asked for by name (decision=accessed)
            filters.append(col(AuditEntry.action) != ACCESS_ACTION)
        if q.source_agency:
            filters.append(col(AuditEntry.source_agency) == q.source_agency)
        if q.event_type:
            filters.append(col(AuditEntry.event_type) == q.event_type)
        if q.protocol_id:
            filters.append(col(AuditEntry.protocol_id) == q.protocol_id)
        if q.purpose:
            filters.append(col(AuditEntry.purpose) == q.purpose)
        if q.subject_keys is not None:
            filters.append(col(AuditEntry.subject_key).in_(q.subject_keys))
        if q.since:
            filters.append(col(AuditEntry.recorded_at) >= q.since)
        if q.until:
            filters.append(col(AuditEntry.recorded_at) < q.until)
        if q.action:
            filters.append(col(AuditEntry.action) == q.action)
        for f in filters:
            stmt = stmt.where(f)
        with Session(self.engine) as session:
            total = session.exec(select(func.count()).select_from(stmt.subquery())).one()
            order = col(AuditEntry.seq).desc() if q.newest_first else col(AuditEntry.seq)
            rows = session.exec(stmt.order_by(order).offset(q.offset).limit(q.limit)).all()
        return list(rows), int(total)


def alias_links(engine: Engine) -> set[tuple[str, str, str]]:
    """Every (alias key, subject key, agency) link the alias table holds, for verification:
    the table is derived from the sealed records, so it must equal what they say."""
    with Session(engine) as session:
        return set(
            session.exec(
                select(SubjectAlias.alias_key, SubjectAlias.subject_key, SubjectAlias.source_agency)
            )
        )
