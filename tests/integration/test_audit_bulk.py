"""The audit store's bulk insert (services/audit/bulk.py) stores exactly what SQLAlchemy's
own insert stores, value for value, on SQLite and PostgreSQL, and the database's refusal
reaches the caller as SQLAlchemy raises it (the ingester dead-letters on it); and the rows
verify reads are what the ORM reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, select

from services.audit import migrate
from services.audit.chain import canonical, encoded, verify
from services.audit.models import AuditEntry
from services.audit.records import stored_records
from services.audit.sealing import sealing_from, stored_checkpoints
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
    sequence numbers, content and hashes as the ORM gives, so the same verdicts. Its
    content is as the hash covers it (nulls and empty lists left out, the number in it),
    and gives the same bytes."""
    store = AuditStore(database_url, sealing_from(keyring, None))
    store.create_schema()
    records = []
    for row in _rows():
        records.append(AuditRecord(**_fields(row)))
    store.add_batch(records[:3])
    store.add_batch(records[3:])
    with Session(store.engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))))
    read = list(stored_records(store.engine, batch=2))
    assert [(r.seq, dict(r.content), r.entry_hash, r.chain_hash) for r in read] == [
        (e.seq, _covered(e.seq or 0, e.content()), e.entry_hash, e.chain_hash) for e in entries
    ]
    assert len(read) == 4 and all(r.canonical for r in read)
    for r, e in zip(read, entries, strict=True):
        assert encoded(r.content) == canonical(e.seq or 0, e.content())


def _covered(seq: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, **{k: v for k, v in content.items() if v is not None and v != []}}


@pytest.mark.parametrize(
    ("column", "stored"),
    [
        ("recorded_at", "'not a time'"),
        ("recorded_at", "12345"),
        ("fields_disclosed", "'[not json'"),
        ("subject_aliases", "'\"a string\"'"),
        ("recorded_at", "'2026-11-20+12:'"),
    ],
)
def test_a_value_altered_beyond_its_type_is_named_edited_not_a_crash(
    database_url: str, keyring: Keyring, column: str, stored: str
) -> None:
    """By hand, a time that is no time or a list that is no JSON: verify reads the row
    as it is, and its hash names the record."""
    store = AuditStore(database_url, sealing_from(keyring, None))
    store.create_schema()
    store.add_batch([AuditRecord(**_fields(row)) for row in _rows()[:2]])
    if store.engine.dialect.name == "postgresql":
        if column == "recorded_at":
            pytest.skip("PostgreSQL keeps a time column a time")
        if "not json" in stored:
            pytest.skip("PostgreSQL keeps a JSON column JSON")
        stored = f"CAST({stored} AS JSON)"
    altered = f"UPDATE audit_entry SET {column} = {stored} WHERE seq = 2"  # noqa: S608 (ours)
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text(altered))
    keys, public = store.sealing.chain_keys(), store.sealing.public_keys()
    verdict = verify(keys, stored_records(store.engine), stored_checkpoints(store.engine), public)
    assert verdict.problem is not None
    assert (verdict.records, verdict.problem.seq, verdict.problem.kind) == (1, 2, "edited")


def test_a_value_the_driver_cannot_read_is_raised_as_sqlalchemy_raises_it(
    tmp_path: Path, keyring: Keyring
) -> None:
    """Bytes that are no UTF-8 in a text column: the reader raises SQLAlchemy's error (the
    CLI's "cannot read the audit store", exit 2), not the driver's own."""
    store = AuditStore(f"sqlite:///{tmp_path / 'a.db'}", sealing_from(keyring, None))
    store.create_schema()
    store.add_batch([AuditRecord(**_fields(row)) for row in _rows()[:2]])
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE audit_entry SET reason = CAST(x'ff' AS TEXT)"))
    with pytest.raises(DBAPIError):
        list(stored_records(store.engine))


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("seq", "entry_hash", "chain_hash")}


def test_rows_naming_different_columns_are_refused_not_padded_with_nulls(
    database_url: str,
) -> None:
    """Found as the rows are taken (they may be made meanwhile), so the rows before are in
    the transaction by then: it is rolled back whole."""
    engine = AuditStore.engine_for(database_url)
    migrate.upgrade(engine)
    rows = _rows()
    del rows[2]["trace_id"]
    with pytest.raises(ValueError, match="different columns"), engine.begin() as conn:
        insert_rows(conn, TABLE, rows)
    assert _stored(engine) == []
