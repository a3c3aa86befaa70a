"""Making an inclusion proof of one record from the store (``infoshare audit prove``): the
record's canonical bytes, the newest signed checkpoint that covers it (or the one of a given
size), and the RFC 9162 audit path to that checkpoint's root. The store is checked on the
way: a proof is never made of a record whose content no longer gives its hash, nor against
a checkpoint the records no longer give."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.chain import Checkpoint, canonical, leaf_hash
from services.audit.models import AuditEntry
from services.audit.proof_doc import inclusion_document
from services.audit.proofs import inclusion_path, roots_of


class ProofError(Exception):
    """No proof can be made; the message says why."""


def prove(
    engine: Engine, audit_id: str, checkpoints: Sequence[Checkpoint], *, size: int | None = None
) -> dict[str, Any]:
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(col(AuditEntry.audit_id) == audit_id)).first()
        if entry is None or entry.seq is None:
            raise ProofError(f"no record {audit_id} in the audit store")
        seq, record = entry.seq, canonical(entry.seq, entry.content())
        if leaf_hash(record).hex() != entry.entry_hash:
            raise ProofError(f"record {seq} no longer gives its hash: run `infoshare audit verify`")
        checkpoint = _covering(checkpoints, seq, size)
        leaves = [
            bytes.fromhex(h)
            for h in session.exec(
                select(AuditEntry.entry_hash)
                .where(col(AuditEntry.seq) <= checkpoint.tree_size)
                .order_by(col(AuditEntry.seq))
            )
        ]
    root_of = roots_of(leaves)
    if len(leaves) != checkpoint.tree_size or root_of(0, len(leaves)).hex() != checkpoint.root:
        raise ProofError(
            f"the store's first {checkpoint.tree_size} records differ from the checkpoint "
            f"signed at {checkpoint.created_at}: run `infoshare audit verify`"
        )
    path = inclusion_path(seq - 1, checkpoint.tree_size, root_of)
    return inclusion_document(audit_id, seq, record, checkpoint, path)


def _covering(checkpoints: Sequence[Checkpoint], seq: int, size: int | None) -> Checkpoint:
    if size is not None:
        chosen = [c for c in checkpoints if c.tree_size == size]
        if not chosen:
            raise ProofError(f"no signed checkpoint of {size} records")
        if size < seq:
            raise ProofError(f"the checkpoint of {size} records was signed before record {seq}")
        return chosen[0]
    covering = [c for c in checkpoints if c.tree_size >= seq]
    if not covering:
        raise ProofError(f"no signed checkpoint covers record {seq} yet: try again shortly")
    return max(covering, key=lambda c: c.tree_size)
