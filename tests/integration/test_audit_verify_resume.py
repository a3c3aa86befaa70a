"""A verification resumed from where the last one proved the trail intact
(``verify_trail(resume=...)``, ``infoshare audit verify --resume FILE``): it walks only the
records sealed since, proves they extend the very tree and chain verified before, and still
compares the alias and review indexes whole. What it does not read again (the records
before) is the next full verification's: the test says so as well."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlalchemy

from services.audit.anchoring import file_anchor
from services.audit.blocks import BLOCK
from services.audit.chain import Stored
from services.audit.resume import Verified, load, save
from services.audit.store import AuditStore
from services.audit.verification import verify_trail
from services.backbone.keyring import Keyring
from tests.integration.test_audit_verification import _edit_record_2, _record, _store, _verify


def _grown(database_url: str, tmp_path: Path, keyring: Keyring) -> tuple[AuditStore, Verified]:
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i, subject_aliases=[f"upn-{i}"]) for i in range(1, 7)])
    full = _verify(store)
    assert full.ok and full.verified is not None and full.resumed_at == 0
    return store, full.verified


def test_a_resumed_verification_walks_only_what_was_sealed_since(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store, kept = _grown(database_url, tmp_path, keyring)
    path = tmp_path / "verified.json"
    save(path, kept)
    assert (path.stat().st_mode & 0o777) == 0o600
    store.add_batch([_record(i, subject_aliases=[f"upn-{i}"]) for i in range(7, 10)])
    store.add_batch([_record(i) for i in range(10, 12)])

    resumed = _verify(store, resume=load(path))
    assert resumed.ok, resumed.problem
    assert (resumed.resumed_at, resumed.records, resumed.checkpoints) == (6, 11, 2)
    assert resumed.verified is not None and resumed.verified.walked.size == 11
    # The state it leaves says what a full walk would.
    full = _verify(store)
    assert full.verified == resumed.verified
    again = _verify(store, resume=resumed.verified)  # nothing new: nothing walked
    assert again.ok and (again.resumed_at, again.records) == (11, 11)


def test_an_edit_after_the_resumed_head_is_found_one_before_it_by_a_full_walk(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store, kept = _grown(database_url, tmp_path, keyring)
    store.add_batch([_record(i) for i in range(7, 9)])
    with store.engine.begin() as db:
        db.execute(sqlalchemy.text("UPDATE audit_entry SET decision = 'withheld' WHERE seq = 8"))
    after = _verify(store, resume=kept)
    assert after.failed == "chain" and str(after.problem).startswith("record 8: edited")

    with store.engine.begin() as db:
        db.execute(sqlalchemy.text("UPDATE audit_entry SET decision = 'shared' WHERE seq = 8"))
    _edit_record_2(store.engine)
    assert _verify(store, resume=kept).ok  # record 2 was proved before; not read again
    full = _verify(store)
    assert full.failed == "chain" and str(full.problem).startswith("record 2: edited")


def test_a_trail_rewritten_since_or_another_trail_is_not_resumed(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store, _kept = _grown(database_url, tmp_path / "a", keyring)
    other = _store(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other.jsonl", keyring)
    other.add_batch([_record(i, subject_aliases=["another"]) for i in range(1, 7)])
    theirs = _verify(other).verified
    verdict = _verify(store, resume=theirs)
    assert verdict.failed == "anchor" and "verified last is in neither" in str(verdict.problem)


def test_the_alias_index_is_compared_whole_on_a_resumed_walk(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store, kept = _grown(database_url, tmp_path, keyring)
    with store.engine.begin() as db:  # a link for an old record's child, added by hand
        db.execute(
            sqlalchemy.text(
                "INSERT INTO audit_subject_alias (alias_key, subject_key, source_agency) "
                "VALUES ('forged-alias', 'child-3', 'la-northshire')"
            )
        )
    verdict = _verify(store, resume=kept)
    assert verdict.failed == "alias_index", verdict.problem


def test_a_block_completed_by_the_resumed_walk_is_checked_from_its_earlier_leaves(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i) for i in range(1, BLOCK - 10)])
    kept = _verify(store).verified
    assert kept is not None and kept.walked.size == BLOCK - 11  # a part block: in its peaks
    store.add_batch([_record(i) for i in range(BLOCK - 10, BLOCK + 20)])
    resumed = _verify(store, resume=kept)
    assert resumed.ok, resumed.problem
    with store.engine.begin() as db:  # the block index doctored: the resumed walk names it
        db.execute(sqlalchemy.text("UPDATE audit_merkle_block SET root = :r"), {"r": "00" * 32})
    doctored = _verify(store, resume=kept)
    assert doctored.failed == "block_index", doctored.problem


def test_the_kept_state_reads_back_as_written_and_a_stranger_file_is_refused(
    tmp_path: Path, database_url: str, keyring: Keyring
) -> None:
    kept = _grown(database_url, tmp_path, keyring)[1]
    path = tmp_path / "verified.json"
    save(path, kept)
    assert load(path) == kept
    assert load(tmp_path / "none.json") is None
    path.write_text('{"format": "something else"}')
    try:
        load(path)
    except ValueError as exc:
        assert "not a infoshare-audit-verified/1 file" in str(exc)
    else:
        raise AssertionError("a stranger file was read")


def test_records_sealed_while_it_walks_leave_a_state_at_the_last_signed_head(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    """On a live store a batch is sealed between reading the checkpoints and walking the
    records: the walk is intact, and keeps its state at the head signed when it began."""
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i, subject_aliases=[f"upn-{i}"]) for i in range(1, 7)])

    def and_one_more_batch(records: Iterable[Stored]) -> Iterator[Stored]:
        store.add_batch([_record(i, subject_aliases=[f"upn-{i}"]) for i in range(7, 9)])
        yield from records

    live = _verify(store, counted=and_one_more_batch, settle_s=5.0)  # the file read again
    assert live.ok and live.records == 8, live.problem
    assert live.verified is not None and live.verified.walked.size == 6
    resumed = _verify(store, resume=live.verified)
    assert resumed.ok and (resumed.resumed_at, resumed.records) == (6, 8)
    assert resumed.verified == _verify(store).verified


def test_a_state_kept_without_the_chain_keys_is_not_resumed_by_a_keyed_verifier(
    database_url: str, tmp_path: Path, keyring: Keyring
) -> None:
    store = _store(database_url, tmp_path / "cp.jsonl", keyring)
    store.add_batch([_record(i) for i in range(1, 5)])
    keyless = verify_trail(
        store.engine,
        public_keys=store.sealing.public_keys(),
        anchors=lambda: [file_anchor(tmp_path / "cp.jsonl")],
        settle_s=0.0,
    )
    assert keyless.ok and keyless.verified is not None and not keyless.verified.keyed
    keyed = _verify(store, resume=keyless.verified)
    assert keyed.ok and keyed.resumed_at == 0  # every link walked and checked
    assert keyed.verified is not None and keyed.verified.keyed
