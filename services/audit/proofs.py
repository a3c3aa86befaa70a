"""Merkle proofs over the audit trail, as RFC 9162 (Certificate Transparency 2.0) defines
them, pure (no I/O).

The trail's tree is RFC 9162's: leaves are the records' entry hashes (SHA-256 of 0x00 and
the record's canonical bytes), interior nodes SHA-256 of 0x01 and their two children, the
split at the largest power of two below the size (``chain.merkle_root``). So:

- an **inclusion proof** (section 2.1.3) shows that one record is the ``index``-th leaf of
  the tree a signed checkpoint names by its size and root, with log2(size) hashes;
- a **consistency proof** (section 2.1.4) shows that the tree of an older checkpoint is a
  prefix of a newer one's: the trail only grew, nothing before was changed or removed.

Anyone can check both with SHA-256 alone and the checkpoint's public signing key: no secret.
Making a proof needs the roots of subtrees (``RootOf``); the store computes them from its
records, tests from a list of leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from services.audit.chain import merkle_root, node_hash

RootOf = Callable[[int, int], bytes]  # (start, end) -> the tree head of leaves[start:end]


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (size >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_path(index: int, size: int, root_of: RootOf, start: int = 0) -> list[bytes]:
    """PATH(index, D[start:start+size]): the sibling hashes from the leaf up, RFC 9162
    2.1.3.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*inclusion_path(index, k, root_of, start), root_of(start + k, start + size)]
    return [*inclusion_path(index - k, size - k, root_of, start + k), root_of(start, start + k)]


def consistency_path(old: int, new: int, root_of: RootOf) -> list[bytes]:
    """PROOF(old, D[new]), RFC 9162 2.1.4.1: that the first ``old`` leaves' tree is the
    start of the ``new`` leaves' tree."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    return _subproof(old, 0, new, root_of, whole=True)


def _subproof(m: int, start: int, size: int, root_of: RootOf, *, whole: bool) -> list[bytes]:
    if m == size:
        return [] if whole else [root_of(start, start + size)]
    k = _split(size)
    if m <= k:
        return [*_subproof(m, start, k, root_of, whole=whole), root_of(start + k, start + size)]
    return [
        *_subproof(m - k, start + k, size - k, root_of, whole=False),
        root_of(start, start + k),
    ]


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``path`` proves ``leaf`` (a leaf hash) is leaf ``index`` of the tree of
    ``size`` leaves with head ``root`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows the tree of ``old`` leaves (head ``old_root``) is the start
    of the tree of ``new`` leaves (head ``new_root``), RFC 9162 2.1.4.2."""
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old tree is a node of the new one
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def roots_of(leaves: Sequence[bytes]) -> RootOf:
    """``RootOf`` over a list of leaf hashes held in memory (subtrees remembered)."""
    known: dict[tuple[int, int], bytes] = {}

    def root_of(start: int, end: int) -> bytes:
        if (start, end) not in known:
            known[start, end] = merkle_root(leaves[start:end])
        return known[start, end]

    return root_of
