"""Walking the trail for ``verify_trail``: in this process, or over worker processes that
each check a range of records on its own (``chain.walk``) while this one joins the ranges
in order (``chain.join``), checking the seams between them. The hashing is per record and
the chain links are stored, so a range can be checked without the ones before it; only the
Merkle tree, a few hashes per record, is grown in one place.

On the way each record is noted for the derived indexes (``Notes``): the alias links it
makes, the override review it is, the signing key it brings in; split at ``bound`` (the
largest signed head when the walk began), as a later walk resumes from there.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, func, select

from services.audit.blocks import BLOCK
from services.audit.chain import (
    GENESIS,
    Checkpoint,
    Segment,
    Stored,
    Verdict,
    Walked,
    join,
    stored_link,
    verify,
    walk,
)
from services.audit.models import AuditEntry
from services.audit.prepared import sealed_links
from services.audit.records import stored_records
from services.audit.reviews import REVIEW_ACTION, Review, sealed_review
from services.audit.rotation import ROTATION_ACTION, announced
from services.audit.store import AuditStore

Links = set[tuple[str, str, str]]
_NOTED = frozenset({REVIEW_ACTION, ROTATION_ACTION})  # actions an index notes
_TABLE: Any = AuditEntry.__table__  # type: ignore[attr-defined]
RANGE = 5_000  # records a worker checks at a time (smaller ranges keep both busy to the end)
APART_FROM = 2 * RANGE  # fewer records than this are walked in this process


@dataclass
class Notes:
    """What the derived indexes should say of the records noted."""

    links: Links = field(default_factory=set)
    reviews: set[Review] = field(default_factory=set)
    since: dict[str, int] = field(default_factory=dict)  # key id: the record it came in

    def note(self, record: Stored) -> None:
        content = record.content
        if not content.get("subject_aliases") and content.get("action") not in _NOTED:
            return  # nearly every record: a decision naming no other identifier
        self.links |= sealed_links(content)
        review = sealed_review(content)
        if review is not None:
            self.reviews.add(review)
        key = announced(content)
        if key is not None:
            self.since.setdefault(key, record.seq)

    def add(self, other: Notes) -> None:
        """``other``'s notes, of records after these."""
        self.links |= other.links
        self.reviews |= other.reviews
        for key, seq in other.since.items():
            self.since.setdefault(key, seq)


@dataclass
class Noted:
    """The notes of the records up to ``bound`` and of those after it."""

    bound: int
    upto: Notes = field(default_factory=Notes)
    after: Notes = field(default_factory=Notes)

    def walk(self, records: Iterable[Stored]) -> Iterator[Stored]:
        """The records, unchanged, noted on the way."""
        for record in records:
            (self.upto if record.seq <= self.bound else self.after).note(record)
            yield record

    def add(self, other: Noted) -> None:
        self.upto.add(other.upto)
        self.after.add(other.after)

    @property
    def all(self) -> Notes:
        every = Notes()
        every.add(self.upto)
        every.add(self.after)
        return every


Progress = Callable[[int], None]  # records walked so far


@dataclass(frozen=True)
class Walk:
    """What ``walk_trail`` found: the verdict and the notes of the records walked."""

    verdict: Verdict
    noted: Noted


def walk_trail(
    engine: Engine,
    keys: Sequence[bytes],
    checkpoints: Sequence[Checkpoint],
    public: Mapping[str, Ed25519PublicKey],
    *,
    start: Walked | None,
    bound: int,
    counted: Callable[[Iterable[Stored]], Iterable[Stored]] | None = None,
    workers: int = 1,
    progress: Progress | None = None,
) -> Walk:
    """Verify the records after ``start`` (chain.verify's checks, the Merkle blocks kept),
    noting them. With ``workers`` above 1 and more than ``APART_FROM`` records, ranges are
    checked in worker processes; ``counted`` (which sees each record) needs one process."""
    after = start.size if start else 0
    if workers > 1 and counted is None:
        with engine.connect() as conn:
            through = conn.execute(select(func.max(_TABLE.c.seq))).scalar() or 0
        if through - after >= APART_FROM:
            return _apart(
                engine, keys, checkpoints, public, start, bound, through, workers, progress
            )
    noted = Noted(bound)
    records: Iterable[Stored] = stored_records(engine, after=after)
    if counted is not None:
        records = counted(records)
    if progress is not None:
        records = _counting(records, progress)
    verdict = verify(keys, noted.walk(records), checkpoints, public, start, bound, BLOCK)
    return Walk(verdict, noted)


def _counting(records: Iterable[Stored], progress: Progress) -> Iterator[Stored]:
    for n, record in enumerate(records, 1):
        if n % 5000 == 0:
            progress(n)
        yield record


def _apart(
    engine: Engine,
    keys: Sequence[bytes],
    checkpoints: Sequence[Checkpoint],
    public: Mapping[str, Ed25519PublicKey],
    start: Walked | None,
    bound: int,
    through: int,
    workers: int,
    progress: Progress | None,
) -> Walk:
    """The records ``start``..``through`` checked a range at a time in ``workers`` forked
    processes (a few ranges ahead of the join, so memory stays bounded), joined in order."""
    url = engine.url.render_as_string(hide_password=False)
    marks = frozenset({cp.tree_size for cp in checkpoints} | {bound})
    after = start.size if start else 0
    ranges = planned(after, through)
    noted = Noted(bound)
    # Forked, not spawned: a worker starts in milliseconds, with the modules loaded. It
    # opens its own connections; the parent's pool is emptied first.
    context = multiprocessing.get_context("fork")
    engine.dispose()  # no connection of ours is open across the fork
    with _left_alone_inherited(), ProcessPoolExecutor(workers, context) as pool:
        ahead: deque[tuple[int, Future[tuple[Segment, Noted]]]] = deque()

        def submit() -> None:
            span = next(ranges, None)
            if span is not None:
                lo, hi = span
                job = pool.submit(_check_range, url, tuple(keys), lo, hi, bound, marks)
                ahead.append((hi, job))

        for _ in range(workers * 2):
            submit()

        def runs() -> Iterator[Segment]:
            walked = 0
            while ahead:
                hi, job = ahead.popleft()
                run, notes = job.result()
                noted.add(notes)
                walked += run.size
                if progress is not None:
                    progress(walked)
                yield run
                if run.problem is None and run.first + run.size <= hi:
                    # Ended short of its range: records are missing (or one was planted
                    # far ahead). No more ranges: the join names the gap from the next
                    # record there is, as the one-process walk would.
                    gap = _after_gap(engine, run.first + run.size - 1)
                    if gap is not None:
                        yield gap
                    return
                submit()

        try:
            verdict = join(runs(), checkpoints, public, start, bound, BLOCK)
        finally:
            for _, job in ahead:
                job.cancel()
    return Walk(verdict, noted)


@contextlib.contextmanager
def _left_alone_inherited() -> Iterator[None]:
    """What forked workers inherit left out of their garbage collections: a full one went
    over every object of this process, copying each page it touched, and the range it
    befell took twice as long (a walk of 100,000 records met two or three). A process that
    froze its own objects before (``freeze_startup_objects``) keeps them frozen: the freeze
    does not nest, so it is undone only if it was this walk's."""
    frozen_before = gc.get_freeze_count() > 0
    gc.freeze()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()


def planned(after: int, through: int) -> Iterator[tuple[int, int]]:
    """The ranges (after the first number, through the last) the records after ``after``
    through ``through`` are checked in, in order, as they are asked for."""
    for lo in range(after, through, RANGE):
        yield lo, min(lo + RANGE, through)


def _after_gap(engine: Engine, last: int) -> Segment | None:
    """An empty run beginning at the next record after ``last`` there is, so that the join
    names the records missing before it. None if there is none, or it is the very next
    (stored since the worker read): the walk ends at ``last``, the rest is the next's."""
    with engine.connect() as conn:
        found = conn.execute(select(func.min(_TABLE.c.seq)).where(_TABLE.c.seq > last)).scalar()
    if found is None or found == last + 1:
        return None
    return Segment(found, found, b"", GENESIS, GENESIS, {}, (), None)


@functools.cache
def _engine(url: str, pid: int) -> Engine:
    return AuditStore.engine_for(url)


def _check_range(
    url: str, keys: tuple[bytes, ...], lo: int, hi: int, bound: int, marks: frozenset[int]
) -> tuple[Segment, Noted]:
    """In a worker: records lo+1..hi checked on their own (the first against the link
    stored with record lo) and noted."""
    engine = _engine(url, os.getpid())
    link = GENESIS
    if lo > 0:
        with engine.connect() as conn:
            stored = conn.execute(select(_TABLE.c.chain_hash).where(_TABLE.c.seq == lo)).scalar()
        link = stored_link(stored) or GENESIS  # none, or no hash: the range before names it
    noted = Noted(bound)
    records = noted.walk(stored_records(engine, after=lo, through=hi))
    return walk(keys, records, first=lo + 1, previous=link, marks=marks), noted
