"""The audit store's bulk insert (services/audit/bulk.py) stores exactly what SQLAlchemy's
own insert stores, value for value, on SQLite and PostgreSQL, and the database's refusal
reaches the caller as SQLAlchemy raises it (the ingester dead-letters on it); and the rows
verify reads are what the ORM reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from services.audit import migrate
from services.audit.models import AuditEntry
from services.audit.sealing import sealing_from, stored_records
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord
from services.backbone.bulk import insert_rows
from services.backbone.keyring import Keyring

TABLE: Any = AuditEntry.__table__  # type: ignore[attr-defined]


def _rows() -> list[dict[str, Any]]:
    moments = [datetime(2026, 12, 5, 9, tzinfo=UTC), datetime(2026, 12, 5, 10, tzinfo=None)]
    rows = []
    for seq in range(1, 5):
        record = AuditRecord(
            audit_id=f"id-{seq}",
            recorded_at=moments[seq % 2].astimezone(timezone(timedelta(hours=seq))),
            occurred_at=None if seq == 2 else moments[0],
            action="disclose",
            decision=AuditOutcome.SHARED if seq % 2 else AuditOutcome.WITHHELD,
            reason_code="r",
            reason='é \u2028 "quoted" \' and \\ slashes',
            actor="test",
            protocol_version=seq,
            fields_disclosed=["a.b", "c"] if seq % 2 else [],
            subject_aliases=["k" * 64],
        )
        row = record.columns()
        row.update(seq=seq, entry_hash=f"{seq:064x}", chain_hash=f"{seq:064x}")
        rows.append(row)
    return rows


def _stored(engine: sqlalchemy.Engine) -> list[tuple[Any, ...]]:
    """Every row as the database hands it back, with no column type's processing (SQLite:
    the stored text itself)."""
    with engine.connect() as conn:
        found = conn.execute(sqlalchemy.text("SELECT * FROM audit_entry ORDER BY seq"))
        return [tuple(r) for r in found]


def test_bulk_insert_stores_what_sqlalchemys_insert_stores(database_url: str) -> None:
    engine = AuditStore.engine_for(database_url)
    migrate.upgrade(engine)
    rows = _rows()
    with Session(engine) as session:
        session.execute(sqlalchemy.insert(TABLE), rows[:2])
        insert_rows(session.connection(), TABLE, rows[2:])
        session.commit()
    ours = _stored(engine)
    with Session(engine) as session:
        session.execute(sqlalchemy.delete(TABLE))
        session.execute(sqlalchemy.insert(TABLE), rows)
        session.commit()
    theirs = _stored(engine)
    assert ours == theirs and len(ours) == 4


def test_a_refused_row_raises_as_sqlalchemy_would(database_url: str) -> None:
    engine = AuditStore.engine_for(database_url)
    migrate.upgrade(engine)
    rows = _rows()
    with Session(engine) as session:
        insert_rows(session.connection(), TABLE, rows[:1])
        session.commit()
    with Session(engine) as session, pytest.raises(IntegrityError):
        insert_rows(session.connection(), TABLE, rows[:1])  # the same audit id again


def test_stored_records_read_what_the_orm_reads(database_url: str, keyring: Keyring) -> None:
    """``stored_records`` reads rows, not ORM objects (verify's hot path): the same
    sequence numbers, content and hashes as the ORM gives, so the same verdicts."""
    store = AuditStore(database_url, sealing_from(keyring, None))
    store.create_schema()
    records = []
    for row in _rows():
        fields = {k: v for k, v in row.items() if k not in ("seq", "entry_hash", "chain_hash")}
        records.append(AuditRecord(**fields))
    store.add_batch(records[:3])
    store.add_batch(records[3:])
    with Session(store.engine) as session:
        orm = [
            (e.seq, e.content(), e.entry_hash, e.chain_hash)
            for e in session.exec(select(AuditEntry).order_by(col(AuditEntry.seq)))
        ]
    rows = [
        (r.seq, dict(r.content), r.entry_hash, r.chain_hash)
        for r in stored_records(store.engine, batch=2)
    ]
    assert rows == orm and len(rows) == 4


def test_rows_naming_different_columns_are_refused_not_padded_with_nulls(
    database_url: str,
) -> None:
    engine = AuditStore.engine_for(database_url)
    with engine.begin() as conn, pytest.raises(ValueError, match="different columns"):
        insert_rows(conn, TABLE, [{"seq": 1, "audit_id": "a"}, {"seq": 2}])
