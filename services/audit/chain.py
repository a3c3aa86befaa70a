"""Tamper evidence for the audit trail, pure (no I/O): a keyed hash chain over every record,
and signed Merkle tree heads (RFC 6962) over the record hashes at checkpoints.

- Each record's **entry hash** is the RFC 6962 leaf hash (SHA-256 of 0x00 and the record's
  canonical bytes, its sequence number included), so moving a record changes its hash.
- The **chain hash** of record n is HMAC-SHA256(chain key, chain hash of n-1 || entry hash
  of n). Without the chain key, nobody who can write to the database can make an edited,
  inserted or reordered record whose chain checks out, even after the last checkpoint.
- A **checkpoint** signs, with Ed25519, the tree size, the Merkle tree head over the entry
  hashes and the chain head. It is kept in the database and in a file outside it: rewriting
  history, or cutting records off the end, disagrees with the last checkpoint.

``verify`` walks the records in sequence order and names the first one that is wrong.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.backbone.keyed import plain_mac

GENESIS = bytes(32)
CHECKPOINT_CONTEXT = b"infoshare audit checkpoint v1\n"


def canonical(seq: int, content: Mapping[str, Any], fields: Iterable[str] | None = None) -> bytes:
    """The bytes a record's hash covers: its sequence number and every content field, keys
    sorted, datetimes in ISO 8601 UTC (databases hand them back without a zone: they are
    stored in UTC), so the same record always gives the same bytes. A field that is null or
    an empty list is left out, as if absent: a migration that adds an optional column leaves
    the hashes of the records sealed before it as they were. ``fields``: the names covered,
    when ``content`` holds more (a stored row); by default all of it."""
    if fields is None:
        items: Iterable[tuple[str, Any]] = content.items()
    else:
        names = tuple(fields)  # a tuple's tuple is itself
        items = zip(names, map(content.get, names), strict=True)
    covered = {
        k: _utc(v) if isinstance(v, datetime) else v
        for k, v in items
        if v or (v is not None and v != _EMPTY)  # the common case, truthy, tested once
    }
    covered.setdefault("seq", seq)
    return encoded(covered)


def canonical_halves(
    content: Mapping[str, Any], fields: Sequence[str] | None = None
) -> tuple[bytes, bytes]:
    """``canonical``'s bytes for ``content`` (its times in UTC already) before and after its
    sequence number, which is not known yet: ``head + b"%d" % seq + tail`` is
    ``canonical(seq, content, fields)``. So a record's canonical bytes can be made
    anywhere, and only the chain, which needs its number, in the writer's turn.
    ``fields``: the names covered, when ``content`` holds more; by default all of it.

    Encoded once with the number 0 and cut there: ``"seq":`` can stand in these bytes
    only as that key, because inside a JSON string every ``"`` is written ``\\"``, so
    no ``q`` is ever followed by a bare ``"`` there (fields are flat: no object holds
    another). A property test holds the halves to ``canonical``."""
    items = (
        content.items() if fields is None else zip(fields, map(content.get, fields), strict=True)
    )
    covered = {
        name: value for name, value in items if value or (value is not None and value != _EMPTY)
    }
    covered["seq"] = 0
    whole = encoded(covered)
    at = whole.index(_SEQ_ZERO) + len(_SEQ_KEY)
    return whole[:at], whole[at + 1 :]


_SEQ_KEY = b'"seq":'
_SEQ_ZERO = _SEQ_KEY + b"0"


def encoded(covered: Mapping[str, Any]) -> bytes:
    return orjson.dumps(covered, option=_CANONICAL, default=str)


_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
_EMPTY: list[Any] = []


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # as the store reads them back
        return moment
    return moment.astimezone(UTC) if moment.tzinfo else moment


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def chain_hash(key: bytes, previous: bytes, entry: bytes) -> bytes:
    mac = plain_mac(key)
    mac.update(previous + entry)
    return mac.digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree head over leaf hashes (the empty tree: SHA-256 of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Bottom-up with the odd node carried up: the same tree as RFC 6962's split at the
    # largest power of two below n.
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class MerkleAccumulator:
    """The RFC 6962 tree head of a growing list of leaves, in O(log n) memory and time per
    leaf: perfect subtrees kept like the bits of a binary counter (a compact range)."""

    def __init__(self, *, keep: int = 0) -> None:
        self._peaks: list[tuple[int, bytes]] = []  # (leaf count, subtree hash), left to right
        self.size = 0
        # With ``keep`` (a power of two): every perfect subtree of that many leaves as it
        # forms, as (its index among such subtrees, its hash): the store's block index.
        self._keep = keep
        self.kept: list[tuple[int, bytes]] = []

    def append(self, leaf: bytes) -> None:
        self.size += 1
        peak = (1, leaf)
        while self._peaks and self._peaks[-1][0] == peak[0]:
            count, left = self._peaks.pop()
            peak = (count * 2, node_hash(left, peak[1]))
            if peak[0] == self._keep:
                self.kept.append(((self.size - 1) // self._keep, peak[1]))
        self._peaks.append(peak)

    def extend(self, leaves: bytes) -> None:
        """Append each 32-byte leaf hash in ``leaves``, in order."""
        for i in range(0, len(leaves), 32):
            self.append(leaves[i : i + 32])

    @property
    def peaks(self) -> list[tuple[int, str]]:
        """The compact range: enough to carry on from here without the leaves before."""
        return [(count, digest.hex()) for count, digest in self._peaks]

    @classmethod
    def resume(cls, peaks: Sequence[Sequence[Any]], *, keep: int = 0) -> MerkleAccumulator:
        """An accumulator carrying on from ``peaks`` (as :attr:`peaks` gave them)."""
        tree = cls(keep=keep)
        tree._peaks = [(int(count), bytes.fromhex(str(digest))) for count, digest in peaks]
        tree.size = sum(count for count, _ in tree._peaks)
        return tree

    def root(self) -> bytes:
        if not self._peaks:
            return hashlib.sha256(b"").digest()
        head = self._peaks[-1][1]
        for _, left in reversed(self._peaks[:-1]):
            head = node_hash(left, head)
        return head


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root: str  # hex
    chain_head: str  # hex
    created_at: str  # ISO 8601
    key_id: str
    signature: str = ""  # hex, Ed25519 over signed_bytes()

    def signed_bytes(self) -> bytes:
        body = f"{self.tree_size}\n{self.root}\n{self.chain_head}\n{self.created_at}\n{self.key_id}"
        return CHECKPOINT_CONTEXT + body.encode()

    def signed(self, key: Ed25519PrivateKey) -> Checkpoint:
        return Checkpoint(
            self.tree_size,
            self.root,
            self.chain_head,
            self.created_at,
            self.key_id,
            key.sign(self.signed_bytes()).hex(),
        )

    def signature_valid(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(bytes.fromhex(self.signature), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root": self.root,
            "chain_head": self.chain_head,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Checkpoint:
        return cls(
            int(doc["tree_size"]),
            str(doc["root"]),
            str(doc["chain_head"]),
            str(doc["created_at"]),
            str(doc["key_id"]),
            str(doc["signature"]),
        )


class Stored(NamedTuple):
    """A record as read back: its sequence number, content, and the hashes stored with it
    (a tuple: verify reads millions, and a frozen dataclass cost a microsecond each)."""

    seq: int
    content: Mapping[str, Any]
    entry_hash: str
    chain_hash: str
    # The content is already as ``canonical`` covers it (the store's reader gives it so):
    # its sequence number in it, no nulls or empty lists, times in UTC.
    canonical: bool = False


@dataclass(frozen=True)
class Sealed:
    entry_hash: str
    chain_hash: str


def seal(
    key: bytes,
    previous_chain: bytes,
    seq: int,
    content: Mapping[str, Any],
    fields: Iterable[str] | None = None,
) -> Sealed:
    """The hashes to store with a new record ``seq`` after a chain head ``previous_chain``
    (``fields`` as ``canonical``'s)."""
    entry, link = links(key, previous_chain, seq, content, fields)
    return Sealed(entry.hex(), link.hex())


def links(
    key: bytes,
    previous_chain: bytes,
    seq: int,
    content: Mapping[str, Any],
    fields: Iterable[str] | None = None,
) -> tuple[bytes, bytes]:
    """``seal``'s entry hash and chain link, as bytes (the next link follows from these)."""
    return linked(key, previous_chain, canonical(seq, content, fields))


def linked(key: bytes, previous_chain: bytes, data: bytes) -> tuple[bytes, bytes]:
    """The entry hash of a record's canonical bytes ``data`` and its link after
    ``previous_chain``."""
    entry = leaf_hash(data)
    return entry, chain_hash(key, previous_chain, entry)


@dataclass(frozen=True)
class Problem:
    seq: int | None
    kind: str  # edited | missing | out_of_order | chain_broken | checkpoint | truncated
    detail: str

    def __str__(self) -> str:
        where = f"record {self.seq}" if self.seq is not None else "the trail"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True)
class Walked:
    """Where a walk of the trail stopped: enough to carry on from there without the
    records before it (the tree's compact range, the last chain link, and the chain key,
    counted from the oldest, that the last link followed under)."""

    size: int
    peaks: list[tuple[int, str]]
    chain_head: str
    key_at: int = 0


def _carried(start: Walked | None) -> tuple[bytes, int]:
    """The chain link and key (counted from the oldest) a walk carries on from: the genesis
    link and the oldest key at the trail's start."""
    return (bytes.fromhex(start.chain_head), start.key_at) if start else (GENESIS, 0)


@dataclass(frozen=True)
class Verdict:
    records: int
    checkpoints: int
    problem: Problem | None
    walked: Walked | None = None  # where an intact walk ended
    # With ``keep``: the Merkle blocks the walk completed, (index, head), for the store's
    # block index to be compared with.
    blocks: tuple[tuple[int, bytes], ...] = ()

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Segment:
    """A run of records checked on its own (``walk``), so that runs can be checked apart,
    in worker processes, and joined in order (``join``), which checks the seams."""

    first: int  # the sequence number the run should begin with
    found: int | None  # the sequence number of its first record (None: it had none)
    leaves: bytes  # the entry hashes of the records found intact, 32 bytes each, in order
    after: bytes  # the chain link it was checked to follow
    head: bytes  # the chain link after its last intact record
    heads: Mapping[int, bytes]  # the chain links after the records asked for (``marks``)
    keys: tuple[tuple[int, int], ...]  # (seq, key index): where each key's links begin
    problem: Problem | None  # the first problem, after its last intact record

    @property
    def size(self) -> int:
        return len(self.leaves) // 32


SEGMENT = 4096  # records per run of a walk in one process


def walk(
    keys: Sequence[bytes],
    records: Iterable[Stored],
    *,
    first: int,
    previous: bytes,
    at: int = 0,
    marks: Set[int] = frozenset(),
) -> Segment:
    """Check ``records``, which should be numbered from ``first`` and linked after
    ``previous`` under the key ``at`` (counted from the oldest) or a newer one, up to the
    first problem: a sequence number skipped (missing) or going back (out_of_order),
    content that does not give its stored hash (edited), a link that does not follow."""
    chain = _ChainKeys(keys, at=at)
    leaves = bytearray()
    heads: dict[int, bytes] = {}
    changes: list[tuple[int, int]] = []
    found: int | None = None
    problem: Problem | None = None
    link = previous
    expected = first
    for stored in records:
        seq = stored.seq
        if found is None:
            found = seq
        if seq != expected:
            kind = "missing" if seq > expected else "out_of_order"
            problem = Problem(expected, kind, f"expected record {expected}, found {seq}")
            break
        data = encoded(stored.content) if stored.canonical else canonical(seq, stored.content)
        entry = leaf_hash(data)
        if entry.hex() != stored.entry_hash:
            problem = Problem(expected, "edited", "its content does not give its stored hash")
            break
        before = chain.at
        following = chain.follows(link, entry, stored.chain_hash)
        if following is None:
            why = "its chain link does not follow from the record before"
            problem = Problem(expected, "chain_broken", why)
            break
        if keys and (not changes or chain.at != before):
            changes.append((expected, chain.at))
        leaves += entry
        link = following
        if expected in marks:
            heads[expected] = link
        expected += 1
    return Segment(first, found, bytes(leaves), previous, link, heads, tuple(changes), problem)


def verify(
    keys: Sequence[bytes],
    records: Iterable[Stored],
    checkpoints: Sequence[Checkpoint],
    public: Mapping[str, Ed25519PublicKey],
    start: Walked | None = None,
    keep_at: int | None = None,
    keep: int = 0,
) -> Verdict:
    """Walk ``records`` (in the order the store returns them, by sequence number) and stop
    at the first problem: a record whose content no longer gives its stored hash (edited),
    a sequence number skipped (deleted) or out of order (reordered), a chain link that does
    not follow from the one before (inserted, or hashes recomputed without the key), a
    checkpoint that is unsigned, disagrees with the records, or lies beyond the last record
    (truncated).

    ``keys``: every chain key, the active one first, then older ones newest first (none:
    the links are not checked; a verifier outside the hub relies on the signed heads); a
    rotation leaves the records before it linked under the older key. Along the trail a key
    may only give way to a newer one: once a link follows under a key, no later link may
    under a key rotated out before it (a leaked old key cannot re-link what came after).
    ``public``: the signing keys' public halves by key id, oldest first; each checkpoint is
    checked with the key it names, and a larger tree may not be signed by an older key than
    a smaller one was. ``start``: carry on from an earlier walk (``records`` then begin
    after it); checkpoints within it are checked for their signatures only. The verdict's
    ``walked`` is where the walk stood after record ``keep_at`` (a checkpoint's size; None:
    the last record), for a later walk to carry on from; with ``keep`` (a power of two), its
    ``blocks`` are the perfect subtrees of that many records the walk completed."""
    marks = {cp.tree_size for cp in checkpoints} | ({keep_at} if keep_at is not None else set())

    def runs() -> Iterator[Segment]:
        it = iter(records)
        first = (start.size if start else 0) + 1
        link, at = _carried(start)
        while True:
            run = walk(keys, islice(it, SEGMENT), first=first, previous=link, at=at, marks=marks)
            yield run
            if run.problem is not None or run.size < SEGMENT:
                return
            first, link, at = first + run.size, run.head, run.keys[-1][1] if run.keys else at

    return join(runs(), checkpoints, public, start, keep_at, keep)


def join(
    runs: Iterable[Segment],
    checkpoints: Sequence[Checkpoint],
    public: Mapping[str, Ed25519PublicKey],
    start: Walked | None = None,
    keep_at: int | None = None,
    keep: int = 0,
) -> Verdict:
    """The verdict over ``runs`` checked in order (``walk``), as ``verify``'s: each run must
    begin where the one before it ended, follow its last link, and under the same or a
    newer key; every checkpoint is checked against the tree and chain at its size."""
    ordered, problem = _signed(checkpoints, public)
    if problem is not None:
        return Verdict(0, 0, problem)
    tree = (
        MerkleAccumulator.resume(start.peaks, keep=keep) if start else MerkleAccumulator(keep=keep)
    )
    link, at = _carried(start)
    pending = iter([cp for cp in ordered if cp.tree_size > tree.size])
    due = next(pending, None)
    checked = 0
    kept = start if keep_at is not None and keep_at <= tree.size else None

    def verdict(problem: Problem | None) -> Verdict:
        return Verdict(tree.size, checked, problem, None, tuple(tree.kept))

    for run in runs:
        expected = tree.size + 1
        if run.found is None:  # nothing in its range: a later run names the gap, if any
            continue
        if run.first != expected:  # the run before ended short: records are missing
            why = f"expected record {expected}, found {run.found}"
            return verdict(Problem(expected, "missing", why))
        if run.size and (run.after != link or (run.keys and run.keys[0][1] < at)):
            why = "its chain link does not follow from the record before"
            return verdict(Problem(expected, "chain_broken", why))
        changes = dict(run.keys)
        end = expected + run.size - 1
        # Only where a key changes, a checkpoint is due or the walk is asked to stand is
        # each record looked at; the tree takes the leaves between in one go.
        stops = {*changes, *run.heads, *((keep_at,) if keep_at is not None else ()), end}
        for seq in sorted(s for s in stops if expected <= s <= end):
            tree.extend(run.leaves[32 * (tree.size - expected + 1) : 32 * (seq - expected + 1)])
            at = changes.get(seq, at)
            head = run.heads.get(seq, run.head)
            while due is not None and due.tree_size == seq:
                problem = _check_checkpoint(due, tree.root(), head)
                if problem is not None:
                    return verdict(problem)
                checked += 1
                due = next(pending, None)
            if seq == keep_at:
                kept = Walked(tree.size, tree.peaks, head.hex(), at)
        link = run.head
        if run.problem is not None:
            return verdict(run.problem)
    if due is not None:
        last = ordered[-1]
        return verdict(
            Problem(
                tree.size + 1,
                "truncated",
                f"checkpoint {last.created_at} covers {last.tree_size} records, "
                f"the store holds {tree.size}",
            )
        )
    if keep_at is None:
        kept = Walked(tree.size, tree.peaks, link.hex(), at)
    return Verdict(tree.size, checked, None, kept, tuple(tree.kept))


def _signed(
    checkpoints: Sequence[Checkpoint], public: Mapping[str, Ed25519PublicKey]
) -> tuple[list[Checkpoint], Problem | None]:
    """The checkpoints in tree order, and the first whose signature fails or whose key is
    older than a smaller tree's."""
    ranks = {key_id: rank for rank, key_id in enumerate(public)}
    ordered = sorted(checkpoints, key=lambda c: (c.tree_size, ranks.get(c.key_id, -1)))
    newest = -1
    for cp in ordered:
        signer = public.get(cp.key_id)
        if signer is None or not cp.signature_valid(signer):
            why = "bad signature" if signer else f"signed by an unknown key {cp.key_id!r}"
            return ordered, Problem(None, "checkpoint", f"{why} at size {cp.tree_size}")
        if ranks[cp.key_id] < newest:
            why = f"signed by {cp.key_id!r}, rotated out before a smaller tree's key"
            return ordered, Problem(None, "checkpoint", f"{why} at size {cp.tree_size}")
        newest = ranks[cp.key_id]
    return ordered, None


class _ChainKeys:
    """The chain keys, oldest first, and the one the last link was made with: a link may
    follow under it or a newer one, never an older one (so nearly every link costs one
    HMAC, and a rotation is crossed once)."""

    def __init__(self, keys: Sequence[bytes], *, at: int = 0) -> None:
        self._keys = list(reversed(keys))  # given newest first
        self._at = at  # a trail begins before any rotation

    @property
    def at(self) -> int:
        return self._at

    def follows(self, previous: bytes, entry: bytes, stored: str) -> bytes | None:
        """The link, if ``stored`` is one that follows (as the store writes it, so compared
        as text); None if not."""
        if not self._keys:  # a verifier without the secret: the signed heads cover all
            return stored_link(stored)
        if not isinstance(stored, str) or not stored.isascii():
            return None
        for i in range(self._at, len(self._keys)):
            made = chain_hash(self._keys[i], previous, entry)
            if hmac.compare_digest(made.hex(), stored):
                self._at = i
                return made
        return None


def stored_link(stored: str | None) -> bytes | None:
    """A stored chain link (or entry hash) as bytes; None unless it is written exactly as
    the store writes one: 64 lowercase hex digits (``bytes.fromhex`` alone would take
    capitals and spaces, and a link rewritten so would pass unseen)."""
    try:
        link = bytes.fromhex(stored)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None
    return link if len(link) == 32 and link.hex() == stored else None


def _check_checkpoint(cp: Checkpoint, root: bytes, head: bytes) -> Problem | None:
    if root.hex() != cp.root or head.hex() != cp.chain_head:
        return Problem(
            cp.tree_size,
            "checkpoint",
            f"records 1..{cp.tree_size} differ from the checkpoint signed at {cp.created_at}",
        )
    return None


def checkpoint_for(
    leaves: Sequence[bytes], head: bytes, *, now: datetime, key: Ed25519PrivateKey, key_id: str
) -> Checkpoint:
    return Checkpoint(
        len(leaves), merkle_root(leaves).hex(), head.hex(), now.isoformat(), key_id
    ).signed(key)


def entries(records: Iterable[Stored]) -> Iterator[bytes]:
    for r in records:
        yield bytes.fromhex(r.entry_hash)
