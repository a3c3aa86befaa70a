"""The audit trail's tamper evidence: any single edit, deletion, reordering, insertion or
truncation of stored records is caught, and the first bad record is named."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from services.audit.chain import (
    GENESIS,
    Checkpoint,
    MerkleAccumulator,
    Sealed,
    Stored,
    canonical,
    canonical_halves,
    checkpoint_for,
    leaf_hash,
    merkle_root,
    node_hash,
    seal,
    verify,
)
from tests.audit_records import sealed_trail

KEY = secrets.token_bytes(32)
SIGNING = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _content(i: int) -> dict[str, Any]:
    return {
        "audit_id": f"id-{i}",
        "decision": "shared" if i % 2 else "withheld",
        "recipient": "la-northshire",
        "fields_disclosed": ["subject.nhs_number", f"f{i}"],
        "recorded_at": NOW,
    }


def _trail(n: int, key: bytes = KEY) -> list[Stored]:
    out: list[Stored] = []
    previous = GENESIS
    for seq in range(1, n + 1):
        sealed = seal(key, previous, seq, _content(seq))
        out.append(Stored(seq, _content(seq), sealed.entry_hash, sealed.chain_hash))
        previous = bytes.fromhex(sealed.chain_hash)
    return out


def _checkpoint(trail: list[Stored], size: int) -> Checkpoint:
    leaves = [bytes.fromhex(r.entry_hash) for r in trail[:size]]
    head = bytes.fromhex(trail[size - 1].chain_hash) if size else GENESIS
    return checkpoint_for(leaves, head, now=NOW, key=SIGNING, key_id="audit-signing-test")


def _verify(trail: list[Stored], checkpoints: list[Checkpoint]) -> Any:
    return verify([KEY], trail, checkpoints, {"audit-signing-test": SIGNING.public_key()})


def _rfc6962(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_rfc6962(leaves[:k]), _rfc6962(leaves[k:]))


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40))
def test_the_tree_head_is_rfc_6962s(data: list[bytes]) -> None:
    leaves = [leaf_hash(d) for d in data]
    assert merkle_root(leaves) == _rfc6962(leaves)
    growing = MerkleAccumulator()
    for i, leaf in enumerate(leaves, start=1):
        growing.append(leaf)
        assert growing.root() == _rfc6962(leaves[:i])


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_a_tree_resumed_from_its_compact_range_gives_the_same_heads(
    data: list[bytes], draw: st.DataObject
) -> None:
    leaves = [leaf_hash(d) for d in data]
    cut = draw.draw(st.integers(0, len(leaves)))
    first = MerkleAccumulator()
    for leaf in leaves[:cut]:
        first.append(leaf)
    resumed = MerkleAccumulator.resume(first.peaks)
    assert resumed.size == cut and resumed.root() == merkle_root(leaves[:cut])
    for leaf in leaves[cut:]:
        resumed.append(leaf)
    assert resumed.root() == merkle_root(leaves)


def test_canonical_bytes_leave_out_nulls_and_empty_lists() -> None:
    """So a column added later (null in old rows, empty in new) changes no old hash."""
    assert canonical(1, {"a": 1, "b": None, "c": []}) == canonical(1, {"a": 1})
    assert canonical(1, {"a": 1, "c": ["x"]}) != canonical(1, {"a": 1})


def test_an_untouched_trail_verifies_with_its_checkpoints() -> None:
    trail = _trail(12)
    verdict = _verify(trail, [_checkpoint(trail, 5), _checkpoint(trail, 12)])
    assert verdict.ok and (verdict.records, verdict.checkpoints) == (12, 2)


def test_an_empty_trail_verifies() -> None:
    assert _verify([], []).ok


trails = st.integers(min_value=2, max_value=25)


@given(trails, st.data())
def test_an_edited_record_is_named(n: int, data: st.DataObject) -> None:
    trail = _trail(n)
    i = data.draw(st.integers(0, n - 1))
    field = data.draw(st.sampled_from(["decision", "recipient", "fields_disclosed", "extra"]))
    edited = {**trail[i].content, field: "tampered"}
    trail[i] = trail[i]._replace(content=edited)
    problem = _verify(trail, []).problem
    assert problem is not None and (problem.seq, problem.kind) == (i + 1, "edited")


@given(trails, st.data())
def test_a_deleted_record_is_named(n: int, data: st.DataObject) -> None:
    trail = _trail(n)
    i = data.draw(st.integers(0, n - 2))  # the last one: see truncation
    del trail[i]
    problem = _verify(trail, []).problem
    assert problem is not None and (problem.seq, problem.kind) == (i + 1, "missing")


@given(trails, st.data())
def test_two_records_swapped_are_caught_at_the_first(n: int, data: st.DataObject) -> None:
    trail = _trail(n)
    i, j = sorted(data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)))
    how = data.draw(st.sampled_from(["rows", "contents", "contents_and_hashes"]))
    a, b = trail[i], trail[j]
    if how == "rows":  # the rows themselves change places, sequence numbers and all
        trail[i], trail[j] = b, a
    elif how == "contents":
        trail[i] = a._replace(content=b.content)
        trail[j] = b._replace(content=a.content)
    else:  # everything but the sequence number
        trail[i] = Stored(a.seq, b.content, b.entry_hash, b.chain_hash)
        trail[j] = Stored(b.seq, a.content, a.entry_hash, a.chain_hash)
    problem = _verify(trail, []).problem
    # Read in that order, the rows show a later number where record i + 1 should be (those
    # between are missing); the contents, moved, no longer give their hashes.
    kind = "missing" if how == "rows" else "edited"
    assert problem is not None and (problem.seq, problem.kind) == (i + 1, kind)


@given(trails, st.data())
def test_a_record_repeated_is_named_out_of_order(n: int, data: st.DataObject) -> None:
    """A record stored a second time (a restored backup's row, a replayed insert): where the
    next number should be, an earlier one."""
    trail = _trail(n)
    i = data.draw(st.integers(0, n - 1))
    trail.insert(i + 1, trail[i])
    problem = _verify(trail, []).problem
    assert problem is not None and (problem.seq, problem.kind) == (i + 2, "out_of_order")
    assert problem.detail == f"expected record {i + 2}, found {i + 1}"


@given(trails, st.data())
def test_an_inserted_record_is_caught_without_the_chain_key(n: int, data: st.DataObject) -> None:
    """Whoever can write to the database but not read the keyring: a record put anywhere,
    the rest renumbered and their hashes recomputed, fails at the record put in."""
    trail = _trail(n)
    i = data.draw(st.integers(0, n))
    forged_key = secrets.token_bytes(32)
    contents = [r.content for r in trail]
    contents.insert(i, {**_content(999), "audit_id": "forged"})
    previous = bytes.fromhex(trail[i - 1].chain_hash) if i else GENESIS
    rebuilt = trail[:i]
    for seq, content in enumerate(contents[i:], start=i + 1):
        sealed = seal(forged_key, previous, seq, content)
        rebuilt.append(Stored(seq, content, sealed.entry_hash, sealed.chain_hash))
        previous = bytes.fromhex(sealed.chain_hash)
    problem = _verify(rebuilt, []).problem
    assert problem is not None and (problem.seq, problem.kind) == (i + 1, "chain_broken")


@given(trails, st.data())
def test_history_rewritten_with_the_key_is_caught_by_the_checkpoint(
    n: int, data: st.DataObject
) -> None:
    """Even an insider holding the chain key cannot rewrite what a checkpoint signed."""
    trail = _trail(n)
    cp = _checkpoint(trail, n)
    i = data.draw(st.integers(0, n - 1))
    contents = [r.content for r in trail]
    contents[i] = {**contents[i], "decision": "withheld", "reason": "rewritten"}
    rebuilt, previous = [], GENESIS
    for seq, content in enumerate(contents, start=1):
        sealed = seal(KEY, previous, seq, content)
        rebuilt.append(Stored(seq, content, sealed.entry_hash, sealed.chain_hash))
        previous = bytes.fromhex(sealed.chain_hash)
    problem = _verify(rebuilt, [cp]).problem
    assert problem is not None and problem.kind == "checkpoint"


@given(trails, st.data())
def test_truncation_is_caught_against_the_last_checkpoint(n: int, data: st.DataObject) -> None:
    trail = _trail(n)
    cp = _checkpoint(trail, n)
    keep = data.draw(st.integers(0, n - 1))
    problem = _verify(trail[:keep], [cp]).problem
    assert problem is not None and (problem.seq, problem.kind) == (keep + 1, "truncated")


def test_a_checkpoint_not_signed_by_the_audit_key_is_refused() -> None:
    trail = _trail(4)
    forged = checkpoint_for(
        [bytes.fromhex(r.entry_hash) for r in trail],
        bytes.fromhex(trail[-1].chain_hash),
        now=NOW,
        key=Ed25519PrivateKey.generate(),
        key_id="audit-signing-test",
    )
    problem = _verify(trail, [forged]).problem
    assert problem is not None and problem.kind == "checkpoint" and "signature" in problem.detail


@pytest.mark.parametrize("size", [1, 2, 3, 7, 8, 9])
def test_a_checkpoint_round_trips_through_json(size: int) -> None:
    trail = _trail(size)
    cp = _checkpoint(trail, size)
    again = Checkpoint.from_json(cp.to_json())
    assert again == cp and again.signature_valid(SIGNING.public_key())


def _sealed_under(keys: list[bytes]) -> list[Stored]:
    """A trail whose record n (from 1) is linked under ``keys[n - 1]``."""
    return sealed_trail(keys, _content)


def test_a_rotated_chain_key_verifies_forward_and_never_back() -> None:
    """Links under the old key, then the new: intact. A link under the old key after one
    under the new (what a leaked old key would make) is named."""
    new = secrets.token_bytes(32)
    forward = _sealed_under([KEY, KEY, new, new])
    assert verify([new, KEY], forward, [], {"k": SIGNING.public_key()}).ok
    back = _sealed_under([KEY, KEY, new, KEY, new])
    problem = verify([new, KEY], back, [], {"k": SIGNING.public_key()}).problem
    assert problem is not None and (problem.seq, problem.kind) == (4, "chain_broken")


def test_a_larger_tree_signed_by_an_older_key_than_a_smaller_one_is_refused() -> None:
    trail = _trail(6)
    newer = Ed25519PrivateKey.generate()
    keys = {"audit-signing-old": SIGNING.public_key(), "audit-signing-new": newer.public_key()}
    leaves = [bytes.fromhex(r.entry_hash) for r in trail]

    def signed(size: int, key: Ed25519PrivateKey, key_id: str) -> Checkpoint:
        head = bytes.fromhex(trail[size - 1].chain_hash)
        return checkpoint_for(leaves[:size], head, now=NOW, key=key, key_id=key_id)

    forward = [signed(2, SIGNING, "audit-signing-old"), signed(4, newer, "audit-signing-new")]
    assert verify([KEY], trail, forward, keys).ok
    back = [signed(4, newer, "audit-signing-new"), signed(6, SIGNING, "audit-signing-old")]
    problem = verify([KEY], trail, back, keys).problem
    assert problem is not None and "rotated out before" in problem.detail


def test_a_record_seals_to_the_same_hashes_as_it_always_has() -> None:
    """A golden vector: records sealed by earlier releases must verify, so the canonical
    bytes and both hashes may never change (computed before the sealing hot path was
    rewritten). Naming the fields covered gives the same as passing only them."""
    moment = datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    content = {
        "audit_id": "a1",
        "recorded_at": moment,
        "decision": "shared",
        "fields_withheld": ["x", "y"],
        "fields_tokenised": [],
        "protocol_version": 2,
        "reason": "é ok",
        "event_id": None,
    }
    assert canonical(7, content) == (
        b'{"audit_id":"a1","decision":"shared","fields_withheld":["x","y"],'
        b'"protocol_version":2,"reason":"\xc3\xa9 ok",'
        b'"recorded_at":"2026-12-05T09:00:00.123456Z","seq":7}'
    )
    sealed = Sealed(
        "9c03420754f29cb2bd062c3a63f3bed0b66845efe6597e8faf7a642fa6e1afdb",
        "3fb95e165856dd73695117fe9133feb4bdcebe9e495e5f62a6f744bc9413ca69",
    )
    assert seal(b"k" * 32, bytes(32), 7, content) == sealed
    stored_row = {**content, "seq": 7, "entry_hash": "?", "chain_hash": "?"}
    assert seal(b"k" * 32, bytes(32), 7, stored_row, list(content)) == sealed


_NAMES = (
    "audit_id",
    "decision",
    "fields_disclosed",
    "offset_in",
    "reason",
    "recorded_at",
    "topic_in",
)
_SNEAKY = st.sampled_from(['"seq":0', '\\"seq\\":0', 'q"', "\\", '"seq":', "seq", "\u2028"])
_TEXT = st.one_of(
    st.text(), _SNEAKY, st.builds("".join, st.lists(st.one_of(st.text(max_size=3), _SNEAKY)))
)
_VALUES = st.one_of(
    st.none(),
    st.just([]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    _TEXT,
    st.lists(_TEXT, max_size=3),
    st.datetimes(timezones=st.just(UTC)),
)


@given(st.fixed_dictionaries({name: _VALUES for name in _NAMES}), st.integers(0, 2**40))
def test_the_halves_around_the_number_are_canonical_s_bytes(
    content: dict[str, Any], seq: int
) -> None:
    """A record prepared before it has its number (times in UTC already) gives canonical's
    bytes once numbered, for any values: nulls, empty lists, zero, empty text, lists, and
    text that spells the number's own key, quotes and backslashes."""
    head, tail = canonical_halves(content)
    assert head + b"%d" % seq + tail == canonical(seq, content)
    # Given the names covered, what else the row holds is left out.
    head, tail = canonical_halves({**content, "zzz": "x", "aaa": 1}, _NAMES)
    assert head + b"%d" % seq + tail == canonical(seq, content, _NAMES)
