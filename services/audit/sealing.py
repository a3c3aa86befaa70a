"""The store's side of tamper evidence: seal new records into the chain as they are stored,
write signed checkpoints to the database and to a file outside it, read everything back for
``infoshare audit verify``. The hashing itself is in chain.py."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from services.audit.blocks import BLOCK, add_blocks
from services.audit.chain import GENESIS, Checkpoint, MerkleAccumulator, canonical_halves, linked
from services.audit.models import CONTENT_FIELDS, AuditCheckpoint, AuditEntry, in_utc
from services.audit.prepared import Prepared
from services.backbone.keyring import Keyring
from services.backbone.private_files import open_private

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sealing:
    chain_key: bytes
    key_id: str
    signing: Ed25519PrivateKey
    checkpoint_file: Path | None = None
    # Records between checkpoints, each signed in its batch's transaction: 1 signs every
    # batch, so no record is ever committed without a checkpoint (and one at every start).
    checkpoint_every: int = 1
    # Keys rotated out (key_rotation.py): records and checkpoints made before still verify.
    older_chain_keys: tuple[bytes, ...] = ()
    older_signers: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)

    def chain_keys(self) -> tuple[bytes, ...]:
        return (self.chain_key, *self.older_chain_keys)

    def public_keys(self) -> dict[str, Ed25519PublicKey]:
        """Every signing key's public half by key id, the active one's included."""
        return {**self.older_signers, self.key_id: self.signing.public_key()}


def seal_new(session: Session, rows: Sequence[dict[str, Any]], key: bytes) -> int:
    """Number ``rows`` (column dicts) after the last stored record and chain them to it, in
    the caller's transaction (the audit service is the only writer). Returns the new last
    seq."""
    head = chain_head(session)
    for _ in sealed_in_turn(rows, key, head):
        pass
    return head[0] + len(rows)


def chain_head(session: Session) -> tuple[int, bytes]:
    """The last stored record's seq and chain link (0 and the genesis link if none)."""
    last = session.exec(
        select(AuditEntry.seq, AuditEntry.chain_hash).order_by(col(AuditEntry.seq).desc()).limit(1)
    ).first()
    return ((last[0] or 0), bytes.fromhex(last[1])) if last else (0, GENESIS)


def sealed_in_turn(
    rows: Iterable[dict[str, Any]], key: bytes, head: tuple[int, bytes]
) -> Iterator[dict[str, Any]]:
    """Each of ``rows`` (column dicts) numbered and chained after ``head`` (``chain_head``'s)
    in place, as it is taken: for loading rows written some other way (the benchmarks'
    tables of millions). The store writes prepared records (``sealed_values``)."""
    for row in rows:
        in_utc(row)
        link, head = _chained(key, head, *canonical_halves(row, CONTENT_FIELDS))
        row["seq"], row["entry_hash"], row["chain_hash"] = link
        yield row


class Link(NamedTuple):
    seq: int
    entry_hash: str
    chain_hash: str


def sealed_values(
    records: Iterable[Prepared], key: bytes, head: tuple[int, bytes], links: list[Link]
) -> Iterator[tuple[Any, ...]]:
    """Each prepared record's values for the table's ``COLUMNS``, numbered and chained after
    ``head`` (``chain_head``'s), as it is taken: a writer streaming rows to the database
    seals the next while the server stores those before (PostgreSQL's COPY; sealing them
    all first left the server idle meanwhile, and then the ingest waiting for it). Each
    record's link is added to ``links`` as it is sealed."""
    for record in records:
        link, head = _chained(key, head, record.head, record.tail)
        links.append(link)
        yield record.values + link


def _chained(
    key: bytes, head: tuple[int, bytes], before: bytes, after: bytes
) -> tuple[Link, tuple[int, bytes]]:
    """The link of the record after ``head`` whose canonical bytes are ``before`` and
    ``after`` its number (``chain.canonical_halves``), and the new head."""
    seq = head[0] + 1
    entry, chain = linked(key, head[1], before + b"%d" % seq + after)
    return Link(seq, entry.hex(), chain.hex()), (seq, chain)


def trusted_checkpoint(session: Session, sealing: Sealing) -> AuditCheckpoint | None:
    """The newest checkpoint to build on: signed with the audit key and within the records
    stored. Anyone who can write to the database can add a row; one that is not signed, or
    covers records that are no longer there, is reported and passed over, never trusted."""
    top = session.exec(select(func.max(AuditEntry.seq))).one() or 0
    public = sealing.public_keys()
    rows = session.exec(
        select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size).desc()).limit(50)
    ).all()
    for row in rows:
        signer = public.get(row.key_id)
        if signer is None or not Checkpoint.from_json(row.model_dump()).signature_valid(signer):
            log.error(
                "an audit checkpoint row (id %s) is not signed by the audit key: ignored; "
                "run `infoshare audit verify`",
                row.id,
            )
        elif row.tree_size > top:
            log.error(
                "an audit checkpoint covers %d records but the store holds %d: records were "
                "removed; run `infoshare audit verify`",
                row.tree_size,
                top,
            )
        else:
            return row
    return None


def _resumed(checkpoint: AuditCheckpoint | None) -> MerkleAccumulator:
    """The tree as of ``checkpoint``, from its compact range if that gives its signed root;
    an empty tree otherwise (every record is then hashed again)."""
    if checkpoint is None or not checkpoint.peaks:
        return MerkleAccumulator(keep=BLOCK)
    try:
        tree = MerkleAccumulator.resume(checkpoint.peaks, keep=BLOCK)
    except (ValueError, TypeError):
        tree = None
    if tree is None or tree.size != checkpoint.tree_size or tree.root().hex() != checkpoint.root:
        log.error(
            "the compact range kept with the checkpoint of %d records does not give its "
            "signed root (altered by hand?): hashing every record again",
            checkpoint.tree_size,
        )
        return MerkleAccumulator(keep=BLOCK)
    return tree


def sign_head(
    session: Session,
    sealing: Sealing,
    *,
    now: datetime,
    min_new: int = 1,
    sealed: Sequence[Link] = (),
) -> Checkpoint | None:
    """Sign the tree head over every record in ``session``'s view, in its transaction (the
    caller commits); None if fewer than ``min_new`` records are new since the last
    checkpoint, or a record is missing. Hashes only the records after the last checkpoint
    (its compact range carries the rest), and indexes the blocks of records it completes.
    ``sealed``: the links of the records the transaction just sealed and stored
    (``sealed_values``'), the last ones; when they are all that came after the last
    checkpoint, they are not read back."""
    tree = _resumed(trusted_checkpoint(session, sealing))
    rows: Sequence[Any]
    if sealed and sealed[0].seq == tree.size + 1:
        rows = sealed
    else:
        rows = session.exec(
            select(AuditEntry.seq, AuditEntry.entry_hash, AuditEntry.chain_hash)
            .where(col(AuditEntry.seq) > tree.size)
            .order_by(col(AuditEntry.seq))
        ).all()
    if not rows or len(rows) < min_new:
        return None
    for _, entry, _ in rows:
        tree.append(bytes.fromhex(entry))
    if rows[-1][0] != tree.size:  # a record is missing: never sign over the gap
        log.error(
            "audit checkpoint not signed: %d records after seq %d end at seq %d; "
            "run `infoshare audit verify`",
            len(rows),
            tree.size - len(rows),
            rows[-1][0],
        )
        return None
    cp = Checkpoint(
        tree.size, tree.root().hex(), rows[-1][2], now.isoformat(), sealing.key_id
    ).signed(sealing.signing)
    session.add(AuditCheckpoint(**cp.to_json(), peaks=[list(p) for p in tree.peaks]))
    add_blocks(session, tree.kept)
    return cp


def append_to_file(sealing: Sealing, checkpoint: Checkpoint | None) -> None:
    """Keep a committed checkpoint in the file outside the database too."""
    if checkpoint is not None and sealing.checkpoint_file is not None:
        with open_private(sealing.checkpoint_file, "ab") as out:
            out.write(orjson.dumps(checkpoint.to_json()) + b"\n")


def write_checkpoint(engine: Engine, sealing: Sealing, *, now: datetime) -> Checkpoint | None:
    """Sign the tree head over every record stored so far, in a transaction of its own."""
    with Session(engine) as session:
        cp = sign_head(session, sealing, now=now)
        session.commit()
    append_to_file(sealing, cp)
    return cp


def sealing_from(
    keyring: Keyring, checkpoint_file: Path | None, *, checkpoint_every: int = 1
) -> Sealing:
    """The store's keys from the keyring; refuses (ConfigurationError) without them."""
    key_id, signing = keyring.require_audit_signing()
    return Sealing(
        keyring.require_audit_chain().secret,
        key_id,
        signing,
        checkpoint_file,
        checkpoint_every,
        older_chain_keys=tuple(k.secret for k in keyring.keys_of("audit_chain")[1:]),
        older_signers={i: k for i, k in keyring.audit_verifying_keys().items() if i != key_id},
    )


def stored_checkpoints(engine: Engine) -> list[Checkpoint]:
    with Session(engine) as session:
        rows = session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.tree_size)))
        return [Checkpoint.from_json(r.model_dump()) for r in rows]


def file_checkpoints(path: Path) -> list[Checkpoint]:
    """The checkpoints kept outside the database, one JSON object per line."""
    if not path.exists():
        return []
    return [
        Checkpoint.from_json(orjson.loads(line))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
