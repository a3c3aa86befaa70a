"""Verify the whole audit trail, for ``infoshare audit verify`` and for the audit service's
own periodic check (which an alert watches): every checkpoint kept outside the database is
in it, every record's hash and chain link hold, every signed checkpoint agrees with the
records, and the alias, review and Merkle block indexes say what the sealed records say.

It reads while the service writes on, so it reads in an order that a live store cannot
fail: the checkpoint file before the database's checkpoints, those before the records, and
the links of records sealed after the walk are not taken for links added by hand. What it
reports names sequence numbers and checks, never what a record says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.anchoring import Anchor
from services.audit.blocks import blocks_problem
from services.audit.chain import Checkpoint, MerkleAccumulator, Stored, Walked
from services.audit.models import AuditEntry
from services.audit.prepared import sealed_links
from services.audit.resume import Verified, digests
from services.audit.reviews import (
    index_problem,
    review_index,
    reviews_after,
)
from services.audit.rotation import out_of_period
from services.audit.sealing import stored_checkpoints
from services.audit.store import alias_links
from services.audit.walking import Noted, Progress, walk_trail

log = logging.getLogger(__name__)

Check = Literal["anchor", "chain", "alias_index", "review_index", "block_index"]
Links = set[tuple[str, str, str]]
SETTLE_S = 5.0  # how long a head may wait for its anchor (commit, then publish)


@dataclass(frozen=True)
class TrailVerdict:
    records: int  # records verified (before the problem, if there is one)
    checkpoints: int  # signed checkpoints that agree with them
    problem: str | None = None  # in the words ``infoshare audit verify`` prints
    failed: Check | None = None  # the check that found the problem
    links_checked: bool = True  # the keyed chain links too (with the chain key)
    anchored: int = 0  # the largest tree an anchor outside the store vouches for
    verified: Verified | None = None  # intact: what to keep to resume from its head
    resumed_at: int = 0  # the records before this were verified before, not walked again

    @property
    def ok(self) -> bool:
        return self.problem is None


Anchors = Callable[[], Sequence[Anchor]]  # read again when asked: they grow while we walk


def verify_trail(
    engine: Engine,
    *,
    public_keys: Mapping[str, Ed25519PublicKey],
    anchors: Anchors,
    chain_keys: Sequence[bytes] = (),
    counted: Callable[[Iterable[Stored]], Iterable[Stored]] | None = None,
    settle_s: float = SETTLE_S,
    resume: Verified | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> TrailVerdict:
    """Verify the trail in ``engine``'s store with public material only: every record's
    hash and number, every checkpoint's signature (by the key it names, ``public_keys``
    oldest first) and tree head, against the checkpoints in the store and in ``anchors``
    outside it. It fails, naming why, when an anchored checkpoint is missing from the store
    or disagrees with another, when the store is shorter than an anchor says, and when no
    anchor covers the store's head. With ``chain_keys`` (the audit service's secret) the
    keyed chain links are checked too. ``counted`` sees each record as it is walked. With
    ``resume`` (an earlier intact verdict's ``verified``), only the records after its head
    are walked (services/audit/resume.py says what that proves).
    Raises what the database driver or an anchor raise when they cannot be read."""
    outside = anchors()  # before the store's: a checkpoint is committed, then anchored
    in_db = stored_checkpoints(engine)
    merged = {c.signature: c for c in [*in_db, *(c for a in outside for c in a.checkpoints)]}
    disagreement = _disagreement(list(merged.values()))
    if disagreement is not None:
        return TrailVerdict(0, 0, disagreement, "anchor")
    signed = {c.signature for c in in_db}
    for anchor in outside:
        missing = [c for c in anchor.checkpoints if c.signature not in signed]
        if missing:
            return TrailVerdict(
                0,
                0,
                f"the checkpoint of {missing[0].tree_size} records signed at "
                f"{missing[0].created_at} is in {anchor.where} but not (as signed) in the store",
                "anchor",
            )
    if resume is not None and chain_keys and not resume.keyed:
        resume = None  # its links were never checked: a keyed verifier walks them all
    start = resume.walked if resume is not None else None
    if resume is not None:
        gone = _resumed_problem(resume, merged)
        if gone is not None:
            return TrailVerdict(0, 0, gone, "anchor")
    after = start.size if start else 0
    # What a later walk may carry on from: the largest signed head known now (records
    # sealed while this one walks come after it, and the next walk reads them again).
    bound = max((c.tree_size for c in merged.values()), default=0)
    walked = walk_trail(
        engine,
        chain_keys,
        list(merged.values()),
        public_keys,
        start=start,
        bound=bound,
        counted=counted,
        workers=workers,
        progress=progress,
    )
    verdict, noted = walked.verdict, walked.noted
    every = noted.all
    since = dict(resume.since) if resume else {}
    for key, seq in every.since.items():
        since.setdefault(key, seq)
    sealed, reviews = every.links, every.reviews
    linked = bool(chain_keys)
    if verdict.problem is not None:
        failed: Check = "anchor" if verdict.problem.kind == "truncated" else "chain"
        return TrailVerdict(
            verdict.records, verdict.checkpoints, str(verdict.problem), failed, linked
        )
    backdated = out_of_period(merged.values(), since)
    if backdated is not None:
        return TrailVerdict(verdict.records, verdict.checkpoints, backdated, "chain", linked)
    anchored, short = _anchored(anchors, outside, verdict.records, settle_s)
    if short is not None:
        return TrailVerdict(verdict.records, verdict.checkpoints, short, "anchor", linked, anchored)
    before_links = resume.links if resume else set()
    alias_problem = _alias_problem(engine, before_links | digests(sealed), verdict.records)
    if alias_problem is not None:
        return TrailVerdict(
            verdict.records, verdict.checkpoints, alias_problem, "alias_index", linked, anchored
        )
    indexed = review_index(engine)  # read before what was sealed after the walk
    before_reviews = resume.reviews if resume else set()
    review_problem = index_problem(
        digests(indexed),
        before_reviews | digests(reviews) | digests(reviews_after(engine, verdict.records)),
    )
    if review_problem is not None:
        return TrailVerdict(
            verdict.records, verdict.checkpoints, review_problem, "review_index", linked, anchored
        )
    with Session(engine) as session:
        block_problem = blocks_problem(session, verdict.blocks)
    if block_problem is not None:
        return TrailVerdict(
            verdict.records, verdict.checkpoints, block_problem, "block_index", linked, anchored
        )
    keep = _kept(verdict.walked, merged, noted, resume, keyed=linked)
    return TrailVerdict(
        verdict.records, verdict.checkpoints, None, None, linked, anchored, keep, after
    )


def _kept(
    walked: Walked | None,
    merged: Mapping[str, Checkpoint],
    noted: Noted,
    resume: Verified | None,
    *,
    keyed: bool,
) -> Verified | None:
    """What to keep to resume from the walk's state at its bound (a signed head)."""
    if walked is None or walked.size == 0:
        return None
    if resume is not None and walked == resume.walked:
        return resume  # nothing new was signed: resume from the same head again
    signature = next(c.signature for c in merged.values() if c.tree_size == walked.size)
    since = dict(resume.since) if resume else {}
    for key, seq in noted.upto.since.items():
        since.setdefault(key, seq)
    return Verified(
        walked,
        signature,
        (resume.links if resume else set()) | digests(noted.upto.links),
        (resume.reviews if resume else set()) | digests(noted.upto.reviews),
        since,
        keyed=keyed,
    )


def _resumed_problem(resume: Verified, merged: Mapping[str, Checkpoint]) -> str | None:
    """Why the trail cannot be resumed from ``resume``: its checkpoint is no longer in the
    store or its anchors as signed, or does not head the tree and chain kept."""
    size = resume.walked.size
    cp = merged.get(resume.signature)
    if cp is None:
        return (
            f"the checkpoint of {size} records verified last is in neither the store nor its "
            "anchors, as signed: the trail was rewritten (or --resume names another trail's file)"
        )
    root = MerkleAccumulator.resume(resume.walked.peaks).root().hex()
    if (cp.tree_size, cp.root, cp.chain_head) != (size, root, resume.walked.chain_head):
        return f"the --resume file does not match the checkpoint of {size} records it names"
    return None


def _disagreement(checkpoints: Sequence[Checkpoint]) -> str | None:
    """Two signed checkpoints of one size with different heads: the trail was forked."""
    by_size: dict[int, Checkpoint] = {}
    for cp in checkpoints:
        seen = by_size.setdefault(cp.tree_size, cp)
        if (seen.root, seen.chain_head) != (cp.root, cp.chain_head):
            return (
                f"checkpoints disagree: two signed heads of {cp.tree_size} records "
                f"({seen.created_at} and {cp.created_at}) differ"
            )
    return None


def _anchored(
    anchors: Anchors, first: Sequence[Anchor], head: int, settle_s: float
) -> tuple[int, str | None]:
    """How far every anchor vouches for the store (the smallest of their largest trees),
    and why that falls short of the ``head`` if it does: no anchor at all, one missing, or
    one that stops before the head. A live store anchors each checkpoint a moment after it
    commits it: the anchors are read again for up to ``settle_s`` before they are judged."""
    given = [a for a in first if a.covers_head]
    deadline = time.monotonic() + settle_s
    while given and _reach(given) < head and time.monotonic() < deadline:
        time.sleep(0.2)
        given = [a for a in anchors() if a.covers_head]
    if not given:
        if head == 0:
            return 0, None
        return 0, (
            f"no anchor covers the store's head: records 1..{head} are in no checkpoint kept "
            "outside the store (no anchor was given)"
        )
    reach = _reach(given)
    for anchor in given:
        if anchor.missing and head > 0:
            return reach, f"{anchor.where} is not there (deleted?): it anchors the store"
    top = max(a.size for a in given)
    if head > top:
        where = ", ".join(a.where for a in given)
        return reach, (
            f"no anchor covers the store's head: records {top + 1}..{head} are in no "
            f"checkpoint kept outside the store ({where})"
        )
    for anchor in given:
        if anchor.size < head:
            return reach, (
                f"{anchor.where} covers records up to {anchor.size} only, the store holds "
                f"{head} (rewound, or cut off?)"
            )
    return reach, None


def _reach(anchors: Sequence[Anchor]) -> int:
    return min((a.size for a in anchors), default=0)


def _alias_problem(engine: Engine, sealed: set[str], records: int) -> str | None:
    """``sealed``: digests (resume.py) of the links the records walked make."""
    indexed = digests(alias_links(engine))
    added = indexed - sealed - digests(_links_after(engine, records))  # read after the index
    removed = sealed - indexed
    if added or removed:
        return (
            "the alias index (audit_subject_alias) differs from the sealed records: "
            f"{len(added)} link(s) added, {len(removed)} removed; a search by UPN or LA "
            "person id would find the wrong decisions"
        )
    return None


def _links_after(engine: Engine, seq: int) -> Links:
    """The alias links of records sealed after ``seq`` (stored while the walk went on;
    the next verification walks them)."""
    stmt = select(AuditEntry.subject_key, AuditEntry.source_agency, AuditEntry.subject_aliases)
    with Session(engine) as session:
        rows = session.exec(stmt.where(col(AuditEntry.seq) > seq)).all()
    links: Links = set()
    for subject, agency, aliases in rows:
        links |= sealed_links(
            {"subject_key": subject, "source_agency": agency, "subject_aliases": aliases}
        )
    return links
