"""The audit store's contract, run on a real SQLite database and a real PostgreSQL one:
idempotent batches, filtered search, search by a child's other identifiers, one writer at a
time, and a trail that `infoshare audit verify` proves intact, or shows where it was altered
by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from deploy.cli.main import app
from services.audit.chain import linked, verify
from services.audit.models import AuditEntry
from services.audit.records import stored_records
from services.audit.sealing import sealing_from, stored_checkpoints
from services.audit.store import SQLITE_PAGE_BYTES, AuditQuery, AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.database import engine_for
from services.backbone.keyring import Keyring


def _record(offset: int, *, recipient: str, decision: AuditOutcome, at: datetime) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id_for(
            topic="source.x", partition=0, offset=offset, recipient=recipient, protocol="p@1"
        ),
        recorded_at=at,
        action="disclose",
        decision=decision,
        reason_code="shared.protocol_allows" if decision == "shared" else "withheld.x",
        reason="because",
        actor="test",
        recipient=recipient,
        fields_disclosed=["a.b"],
    )


def _store(url: str, tmp_path: Path, keyring: Keyring, every: int = 1) -> AuditStore:
    sealing = sealing_from(keyring, tmp_path / "checkpoints.jsonl", checkpoint_every=every)
    store = AuditStore(url, sealing)
    store.create_schema()
    return store


def test_a_number_too_large_for_its_column_is_refused_never_stored_changed(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """The record's numbers are unbounded ints; the columns are not. A number the database
    cannot hold is refused as the database's error (the ingester dead-letters the record),
    or stored as it is: never stored wrapped, which verify would then name as edited.
    (PostgreSQL's binary COPY wrapped 2**32 + 5 into a 4-byte column as 5.)"""
    store = _store(database_url, tmp_path, keyring)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    store.add_batch([_record(1, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)])
    big = _record(2, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
    big = big.model_copy(update={"protocol_version": 2**32 + 5})
    try:
        store.add_batch([big])
    except DBAPIError:
        _, total = store.search(AuditQuery())
        assert total == 1
    else:
        rows, total = store.search(AuditQuery())
        assert total == 2 and {r.protocol_version for r in rows} >= {2**32 + 5}
    assert _intact(store)


def test_batches_are_idempotent_and_searchable(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path, keyring)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    batch = [
        _record(1, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0),
        _record(
            2, recipient="la-northshire", decision=AuditOutcome.WITHHELD, at=t0 + timedelta(hours=1)
        ),
        _record(
            2, recipient="ph-northshire", decision=AuditOutcome.SHARED, at=t0 + timedelta(hours=2)
        ),
    ]
    assert store.add_batch(batch) == 3
    assert store.add_batch(batch + batch) == 0  # stored twice is stored once

    rows, total = store.search(AuditQuery(recipient="la-northshire"))
    assert total == 2 and [r.decision for r in rows] == ["shared", "withheld"]
    _, withheld = store.search(AuditQuery(decision="withheld"))
    assert withheld == 1
    rows, total = store.search(AuditQuery(since=t0 + timedelta(minutes=30)))
    assert total == 2 and rows[0].fields_disclosed == ["a.b"]
    rows, total = store.search(AuditQuery(limit=1, offset=1))
    assert total == 3 and len(rows) == 1 and rows[0].recipient == "la-northshire"


_COLUMNS = [c.name for c in AuditEntry.__table__.columns]  # type: ignore[attr-defined]
_COPY_OF_3 = ", ".join(
    {"seq": "seq + 100", "audit_id": "substr(audit_id, 1, 35) || 'x'"}.get(c, c) for c in _COLUMNS
)
TAMPERING = {
    "edited": ("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 7", 7, "edited"),
    "deleted": ("DELETE FROM audit_entry WHERE seq = 7", 7, "missing"),
    "inserted": (
        f"INSERT INTO audit_entry ({', '.join(_COLUMNS)}) "  # noqa: S608 (our own columns)
        f"SELECT {_COPY_OF_3} FROM audit_entry WHERE seq = 3",
        13,
        "missing",
    ),
    "reordered": (
        "UPDATE audit_entry SET seq = -1 WHERE seq = 4; "
        "UPDATE audit_entry SET seq = 4 WHERE seq = 5; "
        "UPDATE audit_entry SET seq = 5 WHERE seq = -1",
        4,
        "edited",
    ),
    "truncated": ("DELETE FROM audit_entry WHERE seq > 9", 10, "truncated"),
}


def _intact(store: AuditStore) -> bool:
    return verify(
        store.sealing.chain_keys(),
        stored_records(store.engine),
        stored_checkpoints(store.engine),
        store.sealing.public_keys(),
    ).ok


def test_a_head_signed_every_few_batches_covers_the_unsigned_batches_before(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """With a checkpoint every 3 records, batches of 2: the second batch signs records 1..4,
    the two it sealed and the two before, which it reads back (it holds only its own)."""
    store = _store(database_url, tmp_path, keyring, every=3)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for first in (1, 3, 5):
        store.add_batch(
            [
                _record(i, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
                for i in (first, first + 1)
            ]
        )
    assert [c.tree_size for c in stored_checkpoints(store.engine)] == [4]
    store.checkpoint()
    assert [c.tree_size for c in stored_checkpoints(store.engine)] == [4, 6]
    assert _intact(store)


def test_a_batch_that_fails_while_it_is_written_leaves_nothing_of_itself(
    database_url: str, tmp_path: Path, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records are sealed as the database takes them: a fault sealing the third, after two
    were sent, leaves no record, checkpoint or checkpoint-file line of the batch, and the
    next batch follows the last one stored."""
    store = _store(database_url, tmp_path, keyring)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def batch(first: int) -> list[AuditRecord]:
        return [
            _record(i, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
            for i in range(first, first + 4)
        ]

    store.add_batch(batch(1))
    checkpoint_lines = (tmp_path / "checkpoints.jsonl").read_text()
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> tuple[bytes, bytes]:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("a fault while sealing")
        return linked(*args, **kwargs)

    monkeypatch.setattr("services.audit.sealing.linked", failing)
    with pytest.raises(RuntimeError, match="while sealing"):
        store.add_batch(batch(5))
    monkeypatch.undo()
    assert [r.seq for r in stored_records(store.engine)] == [1, 2, 3, 4]
    assert [c.tree_size for c in stored_checkpoints(store.engine)] == [4]
    assert (tmp_path / "checkpoints.jsonl").read_text() == checkpoint_lines
    assert store.add_batch(batch(5)) == 4
    assert _intact(store)


def test_a_new_sqlite_store_has_large_pages_and_one_made_before_keeps_its_own(
    tmp_path: Path, keyring: Keyring
) -> None:
    """Page size takes only on a new file: a store opened on an older one works on in the
    page size it was made with."""
    older = tmp_path / "older.db"
    plain = engine_for(f"sqlite:///{older}")
    with plain.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE made_before (x INTEGER)"))
        default = conn.execute(sqlalchemy.text("PRAGMA page_size")).scalar()
    plain.dispose()
    assert default != SQLITE_PAGE_BYTES
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for path, pages in ((tmp_path / "new.db", SQLITE_PAGE_BYTES), (older, default)):
        store = _store(f"sqlite:///{path}", tmp_path, keyring)
        store.add_batch([_record(1, recipient="la-x", decision=AuditOutcome.SHARED, at=t0)])
        with store.engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("PRAGMA page_size")).scalar() == pages
            assert conn.execute(sqlalchemy.text("PRAGMA journal_mode")).scalar() == "wal"
        assert _intact(store)
        store.engine.dispose()


@pytest.mark.parametrize("how", list(TAMPERING))
def test_audit_verify_names_the_first_record_altered_by_hand(
    database_url: str, tmp_path: Path, keyring: Keyring, keyring_path: Path, how: str
) -> None:
    store = _store(database_url, tmp_path, keyring, every=5)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    for start in (1, 7):  # two batches: a checkpoint after each
        batch = [
            _record(i, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
            for i in range(start, start + 6)
        ]
        store.add_batch(batch)
    env = {
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
    }
    intact = CliRunner().invoke(app, ["audit", "verify", "--no-topic"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "intact: 12 record(s)" in intact.output and "2 signed checkpoint(s)" in intact.output

    sql, seq, kind = TAMPERING[how]
    with store.engine.begin() as conn:
        for statement in sql.split("; "):
            conn.execute(sqlalchemy.text(statement))
    result = CliRunner().invoke(app, ["audit", "verify", "--no-topic"], env=env)
    assert result.exit_code == 1, result.output
    assert f"TAMPERED: record {seq}: {kind}" in result.output


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_subject_alias",
        "INSERT INTO audit_subject_alias (alias_key, subject_key, source_agency) "
        "VALUES ('upn-key', 'another-child', 'la-northshire')",
    ],
    ids=["link-removed", "link-added"],
)
def test_audit_verify_catches_an_alias_index_altered_by_hand(
    database_url: str, tmp_path: Path, keyring: Keyring, keyring_path: Path, sql: str
) -> None:
    """The alias index is not sealed itself, but derived from sealed records: verify
    rebuilds it and compares, so a search by UPN cannot be pointed at another child."""
    store = _store(database_url, tmp_path, keyring)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    record = _record(1, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
    store.add_batch(
        [
            record.model_copy(
                update={
                    "subject_key": "the-child",
                    "subject_aliases": ["upn-key"],
                    "source_agency": "la-northshire",
                }
            )
        ]
    )
    store.checkpoint()
    env = {
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
    }
    intact = CliRunner().invoke(app, ["audit", "verify", "--no-topic"], env=env)
    said = " ".join(intact.output.split())
    assert intact.exit_code == 0, intact.output
    assert "the alias, review and Merkle block indexes match" in said
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.text(sql))
    result = CliRunner().invoke(app, ["audit", "verify", "--no-topic"], env=env)
    assert result.exit_code == 1, result.output
    assert "TAMPERED: the alias index (audit_subject_alias) differs" in result.output


def test_audit_verify_resume_walks_what_was_sealed_since_the_last_intact_run(
    database_url: str, tmp_path: Path, keyring: Keyring, keyring_path: Path
) -> None:
    store = _store(database_url, tmp_path, keyring, every=5)
    t0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def batch(start: int) -> None:
        store.add_batch(
            [
                _record(i, recipient="la-northshire", decision=AuditOutcome.SHARED, at=t0)
                for i in range(start, start + 6)
            ]
        )

    env = {
        "INFOSHARE_KEYRING_FILE": str(keyring_path),
        "INFOSHARE_AUDIT_DATABASE_URL": database_url,
        "INFOSHARE_AUDIT_CHECKPOINT_FILE": str(tmp_path / "checkpoints.jsonl"),
    }
    kept = tmp_path / "verified.json"
    command = ["audit", "verify", "--no-topic", "--resume", str(kept)]
    batch(1)
    first = CliRunner().invoke(app, command, env=env)
    assert first.exit_code == 0 and "intact: 6 record(s)" in first.output, first.output
    batch(7)
    second = CliRunner().invoke(app, command, env=env)
    assert second.exit_code == 0, second.output
    assert "records 7..12 walked, the 6 before them proved intact" in second.output

    kept.write_text("not ours")
    refused = CliRunner().invoke(app, command, env=env)
    assert refused.exit_code == 2 and "cannot read --resume" in refused.output
