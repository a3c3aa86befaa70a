"""The audit benchmark's yardstick stores what the ingest stored: the same rows, all of
them, byte for byte, on SQLite and PostgreSQL (a yardstick that stored less would flatter
the database and belittle the ingest)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy

from deploy.bench.audit import sealing
from deploy.bench.audit_floor import database_alone
from deploy.bench.audit_record import bench_record, bench_subject_key
from services.audit.store import AuditStore


def _rows(url: str) -> list[tuple[Any, ...]]:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(sqlalchemy.text("SELECT * FROM audit_entry ORDER BY seq"))
            return [tuple(r) for r in found]
    finally:
        engine.dispose()


def test_the_database_alone_stores_every_row_the_ingest_stored(
    database_url: str, second_database_url: str, tmp_path: Path
) -> None:
    store = AuditStore(database_url, sealing(tmp_path, "alone"))
    store.create_schema()
    now = datetime.now(UTC)
    records = [bench_record(i, now, bench_subject_key(i % 4)) for i in range(23)]
    store.add_batch(records[:10])
    store.add_batch(records[10:])
    spent = database_alone(store.engine, second_database_url, batch=7)  # a short last batch
    store.engine.dispose()
    stored = _rows(database_url)
    assert spent > 0 and len(stored) == 23
    assert _rows(second_database_url) == stored
