"""The outbox's backlog, as the health check and the metrics read it: what waits (how
many, and since when the first in line) and what was refused, per topic; read on the
partial indexes of waiting and refused records, never over what was published (kept for
the recall window: millions of rows for a busy agency)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from services.outbox.store import OutboxStore, Record

A, B = "source.school-oakfield", "source.la-northshire"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _accept(store: OutboxStore, topic: str, n: int, at: datetime) -> None:
    store.accept(
        agency=topic.removeprefix("source."),
        key_id="k",
        idempotency_key=None,
        fingerprint=f"{topic}{n}",
        records=[Record(f"{topic}-{n}", "t", topic, b"key", b"value", [])],
        response={},
        now=at,
    )


def test_the_backlog_counts_what_waits_dates_the_first_in_line_and_counts_refusals(
    tmp_path: Path,
) -> None:
    store = OutboxStore(f"sqlite:///{tmp_path / 'outbox.db'}")
    store.create_schema()
    for n in range(3):
        _accept(store, A, n, T0 + timedelta(minutes=n))
    _accept(store, B, 9, T0 - timedelta(days=1))
    assert (store.backlog(A).pending, store.backlog(A).oldest, store.backlog(A).failed) == (
        3,
        T0,
        0,
    )
    first, second, third = (p.seq for p in store.pending(A, 10))
    store.mark_published([first], now=T0 + timedelta(hours=1))
    store.mark_failed(second, failure="MessageSizeTooLargeError", now=T0 + timedelta(hours=1))
    after = store.backlog(A)
    assert (after.pending, after.oldest, after.failed) == (1, T0 + timedelta(minutes=2), 1)
    store.mark_published([third], now=T0 + timedelta(hours=2))
    assert (store.backlog(A).pending, store.backlog(A).oldest) == (0, None)
    assert (store.backlog(B).pending, store.backlog(B).oldest, store.backlog(B).failed) == (
        1,
        T0 - timedelta(days=1),
        0,
    )


def test_an_outbox_made_before_the_indexes_gets_them_and_the_backlog_reads_only_them(
    tmp_path: Path,
) -> None:
    store = OutboxStore(f"sqlite:///{tmp_path / 'outbox.db'}")
    store.create_schema()
    with store.engine.begin() as conn:  # as an outbox made before them
        conn.execute(text("DROP INDEX ix_outbox_event_waiting"))
        conn.execute(text("DROP INDEX ix_outbox_event_refused"))
    store.create_schema()  # as every start does
    asked: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        asked.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    store.backlog(A)
    event.remove(store.engine, "before_cursor_execute", record)
    assert len(asked) == 3
    with store.engine.connect() as conn:
        for statement, parameters in asked:
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert (
                "INDEX ix_outbox_event_waiting" in plan or "INDEX ix_outbox_event_refused" in plan
            ), plan
