"""Making proofs from the store. An inclusion proof of one record (``infoshare audit
prove``): the record's canonical bytes, the newest signed checkpoint that covers it (or the
one of a given size), and the RFC 9162 audit path to that checkpoint's root. A consistency
proof between two signed checkpoints (``infoshare audit prove-growth``). The store is
checked on the way: a proof is never made of a record whose content no longer gives its
hash, nor against a checkpoint the records no longer give. Subtree heads come from the
block index (blocks.py), so a proof reads about n / 1,024 rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.blocks import StoreRoots
from services.audit.chain import Checkpoint, canonical, leaf_hash
from services.audit.models import AuditEntry
from services.audit.proof_doc import consistency_document, inclusion_document
from services.audit.proofs import RootOf, consistency_path, inclusion_path


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
        root_of = _checked_roots(session, checkpoint)
        path = inclusion_path(seq - 1, checkpoint.tree_size, root_of)
    return inclusion_document(audit_id, seq, record, checkpoint, path)


def prove_growth(
    engine: Engine, checkpoints: Sequence[Checkpoint], old: int, new: int | None = None
) -> dict[str, Any]:
    """An RFC 9162 consistency proof that the signed checkpoint of ``old`` records is the
    start of the one of ``new`` (default: the newest): the trail only grew between them."""
    older = _of_size(checkpoints, old)
    newer = _of_size(checkpoints, new) if new is not None else max(checkpoints, key=_size)
    if newer.tree_size < old:
        raise ProofError(f"the checkpoint of {newer.tree_size} records is older than {old}")
    with Session(engine) as session:
        root_of = _checked_roots(session, newer)
        path = consistency_path(old, newer.tree_size, root_of) if old < newer.tree_size else []
    return consistency_document(older, newer, path)


def _checked_roots(session: Session, checkpoint: Checkpoint) -> RootOf:
    """Subtree heads over the records ``checkpoint`` signs, once they are seen to give its
    root (never a proof from a store that no longer agrees with what was signed)."""
    root_of = StoreRoots(session, checkpoint.tree_size)
    if root_of(0, checkpoint.tree_size).hex() != checkpoint.root:
        raise ProofError(
            f"the store's first {checkpoint.tree_size} records differ from the checkpoint "
            f"signed at {checkpoint.created_at}: run `infoshare audit verify`"
        )
    return root_of


def _size(checkpoint: Checkpoint) -> int:
    return checkpoint.tree_size


def _of_size(checkpoints: Sequence[Checkpoint], size: int) -> Checkpoint:
    chosen = [c for c in checkpoints if c.tree_size == size]
    if not chosen:
        raise ProofError(f"no signed checkpoint of {size} records")
    return chosen[0]


def _covering(checkpoints: Sequence[Checkpoint], seq: int, size: int | None) -> Checkpoint:
    if size is not None:
        chosen = _of_size(checkpoints, size)
        if size < seq:
            raise ProofError(f"the checkpoint of {size} records was signed before record {seq}")
        return chosen
    covering = [c for c in checkpoints if c.tree_size >= seq]
    if not covering:
        raise ProofError(f"no signed checkpoint covers record {seq} yet: try again shortly")
    return max(covering, key=lambda c: c.tree_size)
