"""What the audit chain's verifier and tree promise beyond catching each tampering (in
test_audit_chain.py): a walk carried on from where an earlier one stopped, the Merkle block
index, the counts and words a verdict reports, checkpoints by rotated signing keys, and
timestamps hashed as UTC wherever the verifier runs. Each test here was written against a
mutant `make mutate` found surviving (docs/mutation.md)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.chain import (
    GENESIS,
    Checkpoint,
    MerkleAccumulator,
    Problem,
    Stored,
    Verdict,
    Walked,
    canonical,
    checkpoint_for,
    leaf_hash,
    merkle_root,
    verify,
)
from tests.audit_records import sealed_trail

KEY = secrets.token_bytes(32)
NEW_KEY = secrets.token_bytes(32)
SIGNING = Ed25519PrivateKey.generate()
PUBLIC = {"audit-signing-test": SIGNING.public_key()}
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _content(i: int) -> dict[str, Any]:
    return {"audit_id": f"id-{i}", "decision": "shared", "recorded_at": NOW}


def _trail(keys: list[bytes]) -> list[Stored]:
    """Record n (from 1) linked under ``keys[n - 1]``."""
    return sealed_trail(keys, _content)


def _leaves(trail: list[Stored]) -> list[bytes]:
    return [bytes.fromhex(r.entry_hash) for r in trail]


def _checkpoint(trail: list[Stored], size: int, key_id: str = "audit-signing-test") -> Checkpoint:
    head = bytes.fromhex(trail[size - 1].chain_hash) if size else GENESIS
    return checkpoint_for(_leaves(trail)[:size], head, now=NOW, key=SIGNING, key_id=key_id)


def _walked(trail: list[Stored], size: int, key_at: int = 0) -> Walked:
    tree = MerkleAccumulator()
    for leaf in _leaves(trail)[:size]:
        tree.append(leaf)
    head = trail[size - 1].chain_hash if size else GENESIS.hex()
    return Walked(size, tree.peaks, head, key_at)


# -- a walk carried on from an earlier one (the periodic verifier's resume) --


def test_a_walk_says_where_it_stood_after_the_record_asked_for_and_at_its_end() -> None:
    trail = _trail([KEY] * 10)
    assert verify([KEY], trail, [], PUBLIC) == Verdict(10, 0, None, _walked(trail, 10))
    assert verify([KEY], trail, [], PUBLIC, keep_at=6).walked == _walked(trail, 6)
    assert verify([KEY], trail, [], PUBLIC, keep_at=11).walked is None  # never reached


def test_a_walk_carried_on_from_an_earlier_one_checks_what_follows_it() -> None:
    trail = _trail([KEY] * 10)
    start = _walked(trail, 6)
    cps = [_checkpoint(trail, 6), _checkpoint(trail, 8), _checkpoint(trail, 10)]
    verdict = verify([KEY], trail[6:], cps, PUBLIC, start)
    # The checkpoint at the resume point is within the earlier walk (its signature only).
    assert verdict == Verdict(10, 2, None, _walked(trail, 10))
    assert verify([KEY], trail[6:], cps, PUBLIC, start, keep_at=8).walked == _walked(trail, 8)
    # Asked for a point the earlier walk already passed: where that walk stood.
    assert verify([KEY], trail[6:], [], PUBLIC, start, keep_at=6).walked == start
    assert verify([KEY], trail[6:], [], PUBLIC, start, keep_at=12).walked is None


def test_a_carried_on_walk_starts_from_the_earlier_head_and_tree() -> None:
    trail = _trail([KEY] * 8)
    wrong_head = Walked(5, _walked(trail, 5).peaks, GENESIS.hex(), 0)
    problem = verify([KEY], trail[5:], [], PUBLIC, wrong_head).problem
    assert problem is not None and (problem.seq, problem.kind) == (6, "chain_broken")
    cp = _checkpoint(trail, 8)
    other = MerkleAccumulator()
    for i in range(5):
        other.append(leaf_hash(bytes([i])))
    wrong_tree = Walked(5, other.peaks, trail[4].chain_hash, 0)
    problem = verify([KEY], trail[5:], [cp], PUBLIC, wrong_tree).problem
    assert problem is not None and (problem.seq, problem.kind) == (8, "checkpoint")


def test_a_carried_on_walk_keeps_the_key_the_chain_had_moved_on_to() -> None:
    """After a rotation the earlier walk noted the newer key; a link under the old key
    after it is named even though this walk never saw the rotation."""
    trail = _trail([KEY, KEY, NEW_KEY, NEW_KEY])
    walked = verify([NEW_KEY, KEY], trail, [], PUBLIC, keep_at=3).walked
    assert walked == _walked(trail, 3, key_at=1)
    assert verify([NEW_KEY, KEY], trail, [], PUBLIC).walked == _walked(trail, 4, key_at=1)
    relinked = _trail([KEY, KEY, NEW_KEY, KEY])  # record 4 linked under the old key
    problem = verify([NEW_KEY, KEY], relinked[3:], [], PUBLIC, walked).problem
    assert problem is not None and (problem.seq, problem.kind) == (4, "chain_broken")


# -- what a verdict reports --


def test_a_verdict_counts_the_records_and_checkpoints_before_the_problem() -> None:
    trail = _trail([KEY] * 9)
    cps = [_checkpoint(trail, 3), _checkpoint(trail, 6)]
    edited = [*trail[:7], Stored(8, {**trail[7].content, "decision": "x"}, *_hashes(trail[7]))]
    assert _counts(verify([KEY], edited, cps, PUBLIC)) == (7, 2, 8, "edited")
    stale = [cps[0], _checkpoint(_trail([NEW_KEY] * 6), 6)]
    assert _counts(verify([KEY], trail, stale, PUBLIC)) == (6, 1, 6, "checkpoint")
    assert _counts(verify([KEY], trail[:4], cps, PUBLIC)) == (4, 1, 5, "truncated")


def _hashes(record: Stored) -> tuple[str, str]:
    return record.entry_hash, record.chain_hash


def _counts(verdict: Verdict) -> tuple[int, int, int | None, str]:
    assert verdict.problem is not None and verdict.walked is None
    return verdict.records, verdict.checkpoints, verdict.problem.seq, verdict.problem.kind


def test_problems_are_told_in_the_words_infoshare_audit_verify_prints() -> None:
    trail = _trail([KEY] * 4)
    cp = _checkpoint(trail, 4)
    edited = [trail[0], Stored(2, {**trail[1].content, "decision": "x"}, *_hashes(trail[1]))]
    assert str(verify([KEY], edited, [], PUBLIC).problem) == (
        "record 2: edited: its content does not give its stored hash"
    )
    relinked = _trail([KEY, NEW_KEY])
    assert str(verify([KEY], relinked, [], PUBLIC).problem) == (
        "record 2: chain_broken: its chain link does not follow from the record before"
    )
    assert str(verify([KEY], trail[:2], [cp], PUBLIC).problem) == (
        f"record 3: truncated: checkpoint {cp.created_at} covers 4 records, the store holds 2"
    )
    other = _checkpoint(_trail([NEW_KEY] * 4), 4)
    assert str(verify([KEY], trail, [other], PUBLIC).problem) == (
        f"record 4: checkpoint: records 1..4 differ from the checkpoint signed at {NOW.isoformat()}"
    )
    assert str(Problem(None, "checkpoint", "bad signature at size 4")) == (
        "the trail: checkpoint: bad signature at size 4"
    )


# -- checkpoints and their signing keys --


def test_a_checkpoint_by_an_unknown_or_wrong_key_is_named_before_any_record_is_walked() -> None:
    trail = _trail([KEY] * 4)
    stranger = Ed25519PrivateKey.generate()
    forged = checkpoint_for(
        _leaves(trail), bytes.fromhex(trail[-1].chain_hash), now=NOW, key=stranger, key_id="x"
    )
    assert verify([KEY], trail, [forged], PUBLIC) == Verdict(
        0, 0, Problem(None, "checkpoint", "signed by an unknown key 'x' at size 4")
    )
    wrong = {"x": SIGNING.public_key()}
    assert verify([KEY], trail, [forged], wrong) == Verdict(
        0, 0, Problem(None, "checkpoint", "bad signature at size 4")
    )


def test_a_head_signed_again_by_the_new_key_at_a_rotation_verifies_in_any_order() -> None:
    """At a signing key's rotation the same head may be signed by both keys: the older
    signature is checked first, whatever order the store returns them in. A larger tree
    signed by the older key after that is refused before any record is walked."""
    trail = _trail([KEY] * 4)
    newer = Ed25519PrivateKey.generate()
    keys = {"old": SIGNING.public_key(), "new": newer.public_key()}

    def by_new(size: int) -> Checkpoint:
        head = bytes.fromhex(trail[size - 1].chain_hash)
        return checkpoint_for(_leaves(trail)[:size], head, now=NOW, key=newer, key_id="new")

    both = [by_new(4), _checkpoint(trail, 4, key_id="old")]
    assert verify([KEY], trail, both, keys) == Verdict(4, 2, None, _walked(trail, 4))
    back = [by_new(2), _checkpoint(trail, 4, key_id="old")]
    why = "signed by 'old', rotated out before a smaller tree's key at size 4"
    assert verify([KEY], trail, back, keys) == Verdict(0, 0, Problem(None, "checkpoint", why))


def test_an_unknown_key_beside_a_known_one_at_the_same_size_is_named() -> None:
    trail = _trail([KEY] * 3)
    stranger = checkpoint_for(
        _leaves(trail),
        bytes.fromhex(trail[-1].chain_hash),
        now=NOW,
        key=Ed25519PrivateKey.generate(),
        key_id="stranger",
    )
    verdict = verify([KEY], trail, [_checkpoint(trail, 3), stranger], PUBLIC)
    assert verdict.problem == Problem(
        None, "checkpoint", "signed by an unknown key 'stranger' at size 3"
    )


def test_without_the_chain_key_an_intact_trail_verifies_and_a_relinked_head_is_caught() -> None:
    """A verifier outside the hub has no chain key: the signed chain head binds the links,
    so a trail whose contents are intact but whose links were remade still fails there."""
    trail = _trail([KEY] * 5)
    cp = _checkpoint(trail, 5)
    assert verify([], trail, [cp], PUBLIC) == Verdict(5, 1, None, _walked(trail, 5))
    relinked = _trail([NEW_KEY] * 5)  # the same contents and entry hashes, other links
    verdict = verify([], relinked, [cp], PUBLIC)
    assert verdict.problem is not None and (verdict.problem.seq, verdict.problem.kind) == (
        5,
        "checkpoint",
    )


@pytest.mark.parametrize("link", ["zz" * 32, "ab" * 31, "", "ab" * 33, "AB" * 32, "ab " * 32])
@pytest.mark.parametrize("keys", [[], [KEY]])
def test_a_stored_link_that_is_no_hash_is_named_with_or_without_the_key(
    link: str, keys: list[bytes]
) -> None:
    """Not hex, not 32 bytes, or not written as the store writes a link (capitals, spaces):
    named, never a crash, and never read as the bytes it might spell."""
    trail = _trail([KEY] * 5)
    trail[2] = trail[2]._replace(chain_hash=link)
    verdict = verify(keys, trail, [], PUBLIC)
    assert verdict.problem is not None
    assert (verdict.records, verdict.problem.seq, verdict.problem.kind) == (2, 3, "chain_broken")


# -- the tree's block index --


@pytest.mark.parametrize("n", [0, 3, 4, 9, 16, 17])
def test_the_tree_keeps_every_full_block_as_it_forms(n: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(n)]
    tree = MerkleAccumulator(keep=4)
    for leaf in leaves:
        tree.append(leaf)
    assert tree.kept == [(i, merkle_root(leaves[4 * i : 4 * i + 4])) for i in range(n // 4)]


def test_a_resumed_tree_goes_on_keeping_blocks() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(12)]
    first = MerkleAccumulator(keep=4)
    for leaf in leaves[:5]:
        first.append(leaf)
    resumed = MerkleAccumulator.resume(first.peaks, keep=4)
    for leaf in leaves[5:]:
        resumed.append(leaf)
    assert resumed.kept == [(1, merkle_root(leaves[4:8])), (2, merkle_root(leaves[8:12]))]


# -- the bytes a hash covers --


@pytest.mark.usefixtures("new_york")
def test_times_are_hashed_as_utc_whatever_the_machines_zone() -> None:
    """The database hands times back without a zone (stored in UTC): they are read as UTC,
    not as the verifier's local time, and zoned times are hashed as the same UTC instant."""
    utc = canonical(1, {"at": datetime(2026, 7, 1, 9, 0, tzinfo=UTC)})
    assert utc == b'{"at":"2026-07-01T09:00:00Z","seq":1}'
    assert canonical(1, {"at": datetime(2026, 7, 1, 9, 0)}) == utc
    zoned = datetime(2026, 7, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert canonical(1, {"at": zoned}) == utc


def test_a_value_json_has_no_form_for_is_hashed_as_its_text() -> None:
    assert canonical(1, {"amount": Decimal("1.50")}) == b'{"amount":"1.50","seq":1}'
