"""``verify_trail(workers=N)`` (``infoshare audit verify``, a worker per CPU): ranges of the
trail checked in forked worker processes and joined in order give the very verdict the walk
in one process gives, intact or tampered, wherever the tampering falls against the ranges'
seams: at the first or last record of a range, across a chain key rotation, at the end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from services.audit import walking
from services.audit.blocks import BLOCK
from services.audit.chain import chain_hash
from services.audit.rotation import record_rotation
from services.audit.store import AuditStore
from services.audit.verification import TrailVerdict
from services.backbone.key_rotation import rotate_key
from services.backbone.keyring import generate_keyring, load_keyring
from tests.integration.test_audit_verification import _record, _store, _verify

RANGE = 16  # records a worker checks at a time, here: seams at 16, 32, 48 ...
ROTATED_AT = 45  # the rotation record: the chain key changes after it


@pytest.fixture(autouse=True)
def _small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walking, "RANGE", RANGE)
    monkeypatch.setattr(walking, "APART_FROM", 2 * RANGE)


@pytest.fixture
def trail(database_url: str, tmp_path: Path) -> Iterator[tuple[AuditStore, bytes]]:
    """100 records in batches of 11 (so checkpoints fall off the seams), linked under one
    chain key, then (record 45 saying so) under a newer one; some with aliases. Gives the
    store and the older chain key."""
    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    before = load_keyring(path)
    store = _store(database_url, tmp_path / "cp.jsonl", before)
    _add(store, 1, ROTATED_AT - 1)
    store.engine.dispose()
    rotate_key(path, "audit_chain")
    rotate_key(path, "audit_signing")
    store = _store(database_url, tmp_path / "cp.jsonl", load_keyring(path))
    assert record_rotation(store) is not None
    _add(store, ROTATED_AT + 1, 100)
    yield store, before.require_audit_chain().secret
    store.engine.dispose()


def _add(store: AuditStore, first: int, last: int) -> None:
    for start in range(first, last + 1, 11):
        store.add_batch(
            [
                _record(i, **({"subject_aliases": [f"upn-{i}"]} if i % 7 == 0 else {}))
                for i in range(start, min(start + 11, last + 1))
            ]
        )


def _both(store: AuditStore, **options: Any) -> tuple[TrailVerdict, TrailVerdict]:
    return _verify(store, **options), _verify(store, workers=2, **options)


def test_an_intact_trail_gives_the_same_verdict_and_kept_state_apart(
    trail: tuple[AuditStore, bytes],
) -> None:
    store, _ = trail
    one, apart = _both(store)
    assert one.ok and one.records == 100 and one.verified is not None, one.problem
    assert apart == one


def _update(store: AuditStore, sql: str, **values: Any) -> None:
    with store.engine.begin() as db:
        db.execute(sqlalchemy.text(sql), values)


SEAMS = [1, 2, 16, 17, 32, 33, ROTATED_AT, ROTATED_AT + 1, 64, 65, 99, 100]


@pytest.mark.parametrize("seq", SEAMS)
def test_an_edited_record_is_named_alike_apart(trail: tuple[AuditStore, bytes], seq: int) -> None:
    store, _ = trail
    _update(store, "UPDATE audit_entry SET decision = 'withheld' WHERE seq = :s", s=seq)
    one, apart = _both(store)
    assert str(one.problem).startswith(f"record {seq}: edited")
    assert apart == one


@pytest.mark.parametrize("seq", SEAMS)
def test_a_deleted_record_is_named_alike_apart(trail: tuple[AuditStore, bytes], seq: int) -> None:
    store, _ = trail
    _update(store, "DELETE FROM audit_entry WHERE seq = :s", s=seq)
    one, apart = _both(store)
    assert not one.ok
    assert apart == one


@pytest.mark.parametrize("seq", [2, 17, 33, ROTATED_AT, ROTATED_AT + 1, 48, 49, 65, 100])
def test_a_link_made_under_another_key_is_named_alike_apart(
    trail: tuple[AuditStore, bytes], seq: int
) -> None:
    """Record ``seq`` relinked: after the rotation under the older chain key (leaked, say),
    which may never follow the newer; before it, under a key the trail never had."""
    store, old_key = trail
    key = old_key if seq >= ROTATED_AT else secrets.token_bytes(32)
    with store.engine.connect() as db:
        rows = db.execute(
            sqlalchemy.text(
                "SELECT seq, entry_hash, chain_hash FROM audit_entry "
                "WHERE seq IN (:a, :b) ORDER BY seq"
            ),
            {"a": seq - 1, "b": seq},
        ).all()
    (_, _, previous), (_, entry, _) = rows
    relinked = chain_hash(key, bytes.fromhex(previous), bytes.fromhex(entry)).hex()
    _update(store, "UPDATE audit_entry SET chain_hash = :h WHERE seq = :s", h=relinked, s=seq)
    one, apart = _both(store)
    assert not one.ok and one.failed == "chain", one.problem
    assert apart == one


@pytest.mark.parametrize("seq", [2, 16, 17, 33, ROTATED_AT + 1, 100])
def test_a_link_rewritten_in_capitals_is_named_alike_apart(
    trail: tuple[AuditStore, bytes], seq: int
) -> None:
    """The same bytes, written otherwise: not as the store writes a link, so named."""
    store, _ = trail
    _update(store, "UPDATE audit_entry SET chain_hash = UPPER(chain_hash) WHERE seq = :s", s=seq)
    one, apart = _both(store)
    assert str(one.problem).startswith(f"record {seq}: chain_broken"), one.problem
    assert apart == one


@pytest.mark.parametrize(("deleted", "named"), [(None, 101), (40, 40)])
def test_a_record_planted_far_ahead_is_named_alike_and_ends_the_ranges(
    trail: tuple[AuditStore, bytes],
    monkeypatch: pytest.MonkeyPatch,
    deleted: int | None,
    named: int,
) -> None:
    """Ranges are planned by number, up to the last: a record planted at 10^12 would make
    them endless. A range that ends short is a gap, and no range after it is checked; the
    join names the gap from the record found after it, as one process does."""
    store, _ = trail
    _update(
        store,
        "INSERT INTO audit_entry (seq, audit_id, recorded_at, action, decision, reason_code, "
        "reason, actor, entry_hash, chain_hash) SELECT 1000000000000, 'planted', recorded_at, "
        "action, decision, reason_code, reason, actor, entry_hash, chain_hash "
        "FROM audit_entry WHERE seq = 100",
    )
    if deleted is not None:
        _update(store, "DELETE FROM audit_entry WHERE seq = :s", s=deleted)
    drawn: list[tuple[int, int]] = []
    planned = walking.planned

    def counted(after: int, through: int) -> Iterator[tuple[int, int]]:
        for span in planned(after, through):
            drawn.append(span)
            assert len(drawn) <= 12, "ranges went on past the gap"
            yield span

    monkeypatch.setattr(walking, "planned", counted)
    one, apart = _both(store)
    assert str(one.problem).startswith(f"record {named}: missing: expected record {named}")
    assert apart == one and drawn


def test_a_trail_too_short_to_split_is_walked_in_one_process(
    trail: tuple[AuditStore, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = trail
    monkeypatch.setattr(walking, "APART_FROM", 101)
    monkeypatch.setattr(walking, "_apart", _never)
    assert _verify(store, workers=2).ok


def _never(*_: Any) -> walking.Walk:
    raise AssertionError("a short trail was split")


def test_a_doctored_block_index_is_named_alike_apart(database_url: str, tmp_path: Path) -> None:
    """Blocks of 1,024 records are recomputed as the ranges are joined."""
    path = generate_keyring(tmp_path / "keyring.yaml", ["la-northshire"])
    store = _store(database_url, tmp_path / "cp.jsonl", load_keyring(path))
    for start in range(1, 2 * BLOCK + 100, 500):
        store.add_batch([_record(i) for i in range(start, start + 500)])
    one, apart = _both(store)
    assert one.ok and apart == one, one.problem
    _update(store, "UPDATE audit_merkle_block SET root = :r WHERE block = 1", r="00" * 32)
    one, apart = _both(store)
    assert one.failed == "block_index" and apart == one
    store.engine.dispose()


def test_progress_is_told_as_ranges_are_joined(trail: tuple[AuditStore, bytes]) -> None:
    store, _ = trail
    told: list[int] = []
    assert _verify(store, workers=2, progress=told.append).ok
    assert told == sorted(told) and told[-1] == 100 and len(told) == 7  # 100 in ranges of 16
