"""Inclusion and consistency proofs (services/audit/proofs.py) against an implementation of
RFC 9162's definitions written here with plain hashlib: the same proofs for every size and
leaf, every one verifies, and any changed hash, leaf or root fails."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.audit.proofs import (
    consistency_path,
    inclusion_path,
    roots_of,
    verify_consistency,
    verify_inclusion,
)
from tests.rfc9162 import leaf, mth, subproof
from tests.rfc9162 import path as ref_path


def _leaves(n: int) -> list[bytes]:
    return [leaf(f"record {i}".encode()) for i in range(n)]


@pytest.mark.parametrize("n", range(1, 34))
def test_every_inclusion_proof_is_the_rfcs_and_verifies(n: int) -> None:
    leaves = _leaves(n)
    root = mth(leaves)
    for m in range(n):
        path = inclusion_path(m, n, roots_of(leaves))
        assert path == ref_path(m, leaves)
        assert verify_inclusion(leaves[m], m, n, path, root)
        assert not verify_inclusion(leaves[(m + 1) % n], m, n, path, root) or n == 1
        if path:
            bent = [*path[:-1], hashlib.sha256(path[-1]).digest()]
            assert not verify_inclusion(leaves[m], m, n, bent, root)
            assert not verify_inclusion(leaves[m], m, n, path[:-1], root)
        # (The size comes from the signed checkpoint with the root: it is not the proof's.)


@pytest.mark.parametrize("n", range(1, 34))
def test_every_consistency_proof_is_the_rfcs_and_verifies(n: int) -> None:
    leaves = _leaves(n)
    new_root = mth(leaves)
    for m in range(1, n + 1):
        proof = consistency_path(m, n, roots_of(leaves))
        assert proof == subproof(m, leaves, True)
        old_root = mth(leaves[:m])
        assert verify_consistency(m, n, old_root, new_root, proof)
        assert not verify_consistency(m, n, new_root if m < n else b"x" * 32, new_root, proof)
        if proof:
            bent = [hashlib.sha256(proof[0]).digest(), *proof[1:]]
            assert not verify_consistency(m, n, old_root, new_root, bent)


def test_a_rewritten_past_fails_consistency() -> None:
    """A trail whose record 3 was changed after a checkpoint of 5: no proof from the old
    head reaches the new one."""
    honest = _leaves(9)
    rewritten = [*honest[:3], leaf(b"forged"), *honest[4:]]
    proof = consistency_path(5, 9, roots_of(rewritten))
    assert not verify_consistency(5, 9, mth(honest[:5]), mth(rewritten), proof)


@given(st.integers(1, 3000), st.data())
def test_proofs_verify_at_any_size(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root_of = roots_of(leaves)
    root = root_of(0, n)
    assert root == mth(leaves)
    m = data.draw(st.integers(0, n - 1))
    assert verify_inclusion(leaves[m], m, n, inclusion_path(m, n, root_of), root)
    old = data.draw(st.integers(1, n))
    proof = consistency_path(old, n, root_of)
    assert verify_consistency(old, n, root_of(0, old), root, proof)
    assert proof == subproof(old, leaves, True)


def test_out_of_range_asks_are_refused() -> None:
    leaves = _leaves(4)
    with pytest.raises(ValueError):
        inclusion_path(4, 4, roots_of(leaves))
    with pytest.raises(ValueError):
        consistency_path(0, 4, roots_of(leaves))
    assert not verify_inclusion(leaves[0], 5, 4, [], leaves[0])
    assert not verify_consistency(5, 4, b"", b"", [])
