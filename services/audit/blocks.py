"""The store's Merkle block index, so that a proof costs a row per 1,024 records rather than
a row per record: the tree head of every complete, aligned block of ``BLOCK`` records
(records 1..1024, 1025..2048, ...), added in the transaction that signs over it.

RFC 9162's tree splits a range of more than ``BLOCK`` leaves at a power of two no smaller
than ``BLOCK``, so the head of any range that starts on a block boundary is the tree head
over its blocks' heads and, last, the head of the part block at its end. A proof then reads
the block index up to its checkpoint (n / 1,024 rows) and the records of at most two blocks.

The index is derived and never trusted: ``prove`` checks that what it gives is the signed
root before it answers, a proof made from a doctored block does not check anywhere, and
``infoshare audit verify`` recomputes every block from the records and names one that
differs. A block missing from the index is computed from its records.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from services.audit.chain import merkle_root, node_hash
from services.audit.models import AuditEntry, AuditMerkleBlock

BLOCK = 1024  # a power of two


def add_blocks(session: Session, formed: Sequence[tuple[int, bytes]]) -> None:
    """Index the blocks ``formed`` (index, head) in the session's transaction, except those
    already indexed (the tree was hashed again from the start)."""
    if not formed:
        return
    wanted = {index for index, _ in formed}
    known = set(
        session.exec(select(AuditMerkleBlock.block).where(col(AuditMerkleBlock.block).in_(wanted)))
    )
    session.add_all(
        AuditMerkleBlock(block=index, root=head.hex())
        for index, head in formed
        if index not in known
    )


def indexed_blocks(session: Session, *, below: int) -> dict[int, str]:
    """The block index's heads (hex) of the blocks numbered under ``below``."""
    rows = session.exec(
        select(AuditMerkleBlock.block, AuditMerkleBlock.root).where(
            col(AuditMerkleBlock.block) < below
        )
    )
    return dict(rows.all())


class StoreRoots:
    """``proofs.RootOf`` over the first ``size`` records of the store in ``session``: the
    head of any range of them, from the block index and at most two blocks' records."""

    def __init__(self, session: Session, size: int) -> None:
        self._session = session
        self._size = size
        self._blocks = {
            i: bytes.fromhex(h) for i, h in indexed_blocks(session, below=size // BLOCK).items()
        }
        self._leaves: dict[int, list[bytes]] = {}
        self.records_read = 0  # for the benchmark: leaf hashes read from the store

    def __call__(self, start: int, end: int) -> bytes:
        if not 0 <= start < end <= self._size:
            raise ValueError(f"no range {start}..{end} in a tree of {self._size}")
        first = start // BLOCK
        whole = start % BLOCK == 0 and end - start >= BLOCK
        if not whole and (end - 1) // BLOCK == first:  # within one block
            leaves = self._block_leaves(first)
            return merkle_root(leaves[start - first * BLOCK : end - first * BLOCK])
        if not whole:  # off a boundary (never in a proof): split as RFC 9162 does
            k = 1 << ((end - start - 1).bit_length() - 1)
            return node_hash(self(start, start + k), self(start + k, end))
        heads = [self._block(b) for b in range(first, end // BLOCK)]
        if end % BLOCK:
            heads.append(self(end - end % BLOCK, end))
        return merkle_root(heads)

    def _block(self, index: int) -> bytes:
        if index not in self._blocks:
            self._blocks[index] = merkle_root(self._block_leaves(index))
        return self._blocks[index]

    def _block_leaves(self, index: int) -> list[bytes]:
        if index not in self._leaves:
            first, last = index * BLOCK + 1, min((index + 1) * BLOCK, self._size)
            hashes = self._session.exec(
                select(AuditEntry.entry_hash)
                .where(col(AuditEntry.seq) >= first, col(AuditEntry.seq) <= last)
                .order_by(col(AuditEntry.seq))
            ).all()
            self.records_read += len(hashes)
            self._leaves[index] = [bytes.fromhex(h) for h in hashes]
        return self._leaves[index]


def blocks_problem(session: Session, heads: Sequence[tuple[int, bytes]]) -> str | None:
    """Why the stored index differs from the blocks a walk completed (``heads``: index and
    head, from the records' own hashes); None if it does not. Blocks completed after the
    walk are the next verification's."""
    stored = indexed_blocks(session, below=max((i for i, _ in heads), default=-1) + 1)
    for index, head in heads:
        if index in stored and stored[index] != head.hex():
            return (
                f"the Merkle block index (audit_merkle_block) differs from the records "
                f"at block {index} (records {index * BLOCK + 1}..{(index + 1) * BLOCK}): "
                "proofs made from it would not check"
            )
    return None
