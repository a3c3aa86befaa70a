"""The audit store's schema and its writers, on SQLite and PostgreSQL alike: the Alembic
revisions build exactly what the models describe, a trail sealed under the first revision
still verifies after the upgrade, and concurrent writers never break the chain."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import Session, SQLModel, col, select

from services.audit import migrate
from services.audit.chain import checkpoint_for, verify
from services.audit.models import AuditEntry
from services.audit.records import stored_records
from services.audit.sealing import seal_new, sealing_from, stored_checkpoints
from services.audit.store import AuditStore
from services.backbone.audit_contract import AuditOutcome, AuditRecord, audit_id_for
from services.backbone.keyring import Keyring


def _record(offset: int, *, subject: str = "s1", aliases: list[str] | None = None) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id_for(
            topic="source.x", partition=0, offset=offset, recipient="r", protocol="p@1"
        ),
        recorded_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC) + timedelta(seconds=offset),
        action="disclose",
        decision=AuditOutcome.SHARED,
        reason_code="shared.protocol_allows",
        reason="because",
        actor="test",
        recipient="r",
        subject_key=subject,
        subject_aliases=aliases or [],
        offset_in=offset,
    )


def _store(url: str, tmp_path: Path, keyring: Keyring) -> AuditStore:
    return AuditStore(url, sealing_from(keyring, tmp_path / "cp.jsonl", checkpoint_every=10**9))


def _problem(store: AuditStore, keyring: Keyring) -> str | None:
    verdict = verify(
        [keyring.require_audit_chain().secret],
        stored_records(store.engine),
        stored_checkpoints(store.engine),
        keyring.audit_verifying_keys(),
    )
    return str(verdict.problem) if verdict.problem else None


def test_the_revisions_build_what_the_models_describe(database_url: str) -> None:
    engine = sqlalchemy.create_engine(database_url)
    assert migrate.current(engine) is None
    assert migrate.upgrade(engine) == migrate.head()
    assert migrate.upgrade(engine) == migrate.head()  # idempotent
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": migrate.include_name,
                "include_object": migrate.include_object,
                "compare_type": True,
            },
        )
        assert compare_metadata(context, SQLModel.metadata) == []
    engine.dispose()


def test_a_trail_sealed_before_an_upgrade_still_verifies(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path, keyring)
    migrate.upgrade(store.engine, "0001")
    # Written as the first revision's code did: no subject_aliases or references, no
    # checkpoint peaks.
    old_entry = _without("audit_entry", "subject_aliases", "refers_to")
    old_checkpoint = _without("audit_checkpoint", "peaks")
    rows = [_record(i).model_dump(exclude={"subject_aliases", "refers_to"}) for i in range(1, 6)]
    with Session(store.engine) as session:
        seal_new(session, rows, keyring.require_audit_chain().secret)
        session.execute(sqlalchemy.insert(old_entry), rows)
        key_id, signing = keyring.require_audit_signing()
        cp = checkpoint_for(
            [bytes.fromhex(r["entry_hash"]) for r in rows],
            bytes.fromhex(rows[-1]["chain_hash"]),
            now=datetime.now(UTC),
            key=signing,
            key_id=key_id,
        )
        session.execute(sqlalchemy.insert(old_checkpoint), [cp.to_json()])
        session.commit()

    assert migrate.upgrade(store.engine) == migrate.head()
    store.add_batch([_record(6, aliases=["alias-1"])])
    assert store.checkpoint() is not None  # from the old checkpoint, which has no peaks
    store.add_batch([_record(7)])
    assert store.checkpoint() is not None  # from the new one's peaks
    assert _problem(store, keyring) is None
    assert len(stored_checkpoints(store.engine)) == 3
    assert store.subject_keys("alias-1") == ["alias-1", "s1"]


def _without(table: str, *later: str) -> sqlalchemy.Table:
    """``table`` as it was before the columns ``later`` were added."""
    columns = SQLModel.metadata.tables[table].columns
    return sqlalchemy.Table(
        table,
        sqlalchemy.MetaData(),
        *(sqlalchemy.Column(c.name, c.type) for c in columns if c.name not in later),
    )


def test_a_database_made_before_migrations_is_refused_with_advice(database_url: str) -> None:
    engine = sqlalchemy.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("CREATE TABLE audit_entry (seq INTEGER PRIMARY KEY)"))
    with pytest.raises(migrate.MigrationError, match="before infoshare kept migrations"):
        migrate.upgrade(engine)
    engine.dispose()


def test_aliases_find_a_child_by_another_identifier(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path, keyring)
    store.create_schema()
    store.add_batch([_record(1, subject="child-a", aliases=["upn-a", "la-a"])])
    store.add_batch([_record(2, subject="child-a", aliases=["upn-a"])])  # already linked
    store.add_batch([_record(3, subject="child-b")])
    assert store.subject_keys("upn-a") == ["child-a", "upn-a"]
    assert store.subject_keys("nobody") == ["nobody"]
    found = store.by_subject(store.subject_keys("la-a"), limit=10)
    assert [e.offset_in for e in found] == [1, 2]


def test_times_in_any_zone_come_back_as_the_same_instant(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path, keyring)
    store.create_schema()
    record = _record(1)
    at = datetime(2026, 6, 1, 9, 30, tzinfo=timezone(timedelta(hours=1)))  # BST
    store.add_batch([record.model_copy(update={"recorded_at": at, "occurred_at": at})])
    (entry,) = store.by_subject(["s1"], limit=10)
    assert entry.recorded_at.replace(tzinfo=entry.recorded_at.tzinfo or UTC) == at
    assert _problem(store, keyring) is None


def test_concurrent_writers_keep_one_unbroken_chain(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """The ingester and the API's access records write from two threads; on PostgreSQL a
    second process may write too (here: a second store with its own engine)."""
    first = _store(database_url, tmp_path, keyring)
    first.create_schema()
    second = first if database_url.startswith("sqlite") else _store(database_url, tmp_path, keyring)
    errors: list[BaseException] = []

    def write(store: AuditStore, base: int) -> None:
        try:
            for i in range(20):
                store.add_batch([_record(base + i * 3 + j) for j in range(3)])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, base))
        for store, base in ((first, 0), (second, 1000), (first, 2000))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records = list(stored_records(first.engine))
    assert [r.seq for r in records] == list(range(1, 181))
    first.checkpoint()
    assert _problem(first, keyring) is None


def test_a_checkpoint_row_written_by_hand_is_never_built_on(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """A forged row claiming a huge tree must not stop checkpoints (then records could be
    cut off the end unseen); one with a wrong compact range must not be resumed from."""
    store = _store(database_url, tmp_path, keyring)
    store.create_schema()
    store.add_batch([_record(i) for i in range(1, 6)])
    assert store.checkpoint() is not None
    forged = {"tree_size": 2**30, "root": "ab" * 32, "chain_head": "cd" * 32}
    with store.engine.begin() as conn:
        conn.execute(
            sqlalchemy.insert(SQLModel.metadata.tables["audit_checkpoint"]),
            [
                {
                    **forged,
                    "created_at": "2026-11-26T00:00:00+00:00",
                    "key_id": "x",
                    "signature": "00" * 64,
                    "peaks": [[2**30, "ab" * 32]],
                },
            ],
        )
        # And the real checkpoint's compact range altered.
        conn.execute(
            sqlalchemy.text("UPDATE audit_checkpoint SET peaks = :p WHERE tree_size = 5"),
            {"p": '[[5, "' + "ee" * 32 + '"]]'},
        )
    store.add_batch([_record(i) for i in range(6, 16)])
    signed = store.checkpoint()
    assert signed is not None and signed.tree_size == 15
    with store.engine.begin() as conn:  # now cut the last records off, and the forged row
        conn.execute(sqlalchemy.text("DELETE FROM audit_entry WHERE seq > 12"))
        conn.execute(sqlalchemy.text("DELETE FROM audit_checkpoint WHERE key_id = 'x'"))
    assert _problem(store, keyring) == (
        "record 13: truncated: checkpoint "
        f"{signed.created_at} covers 15 records, the store holds 12"
    )


def test_reviews_made_before_they_were_chained_are_sealed_at_start(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """A review in the index alone (as the code before chained reviews wrote them) is
    sealed into the chain when the service starts, once, and the trail then verifies."""
    from services.audit.models import OVERRIDE_CODE, OverrideReview
    from services.audit.reviews import REVIEW_ACTION, seal_unchained_reviews

    store = _store(database_url, tmp_path, keyring)
    store.create_schema()
    override = _record(1).model_copy(update={"reason_code": OVERRIDE_CODE})
    store.add_batch([override])
    with Session(store.engine) as session:
        session.add(
            OverrideReview(
                audit_id=override.audit_id,
                reviewer="ig-officer:sam",
                note="checked",
                reviewed_at=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
            )
        )
        session.commit()
    assert seal_unchained_reviews(store) == 1
    assert seal_unchained_reviews(store) == 0  # once
    store.checkpoint()
    with Session(store.engine) as session:
        sealed = session.exec(select(AuditEntry).where(col(AuditEntry.action) == REVIEW_ACTION))
        assert [(r.refers_to, r.actor) for r in sealed] == [(override.audit_id, "ig-officer:sam")]
    assert _problem(store, keyring) is None
