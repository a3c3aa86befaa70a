"""Verify the whole audit trail, for ``infoshare audit verify`` and for the audit service's
own periodic check (which an alert watches): every checkpoint kept outside the database is
in it, every record's hash and chain link hold, every signed checkpoint agrees with the
records, and the alias index says what the sealed records say.

It reads while the service writes on, so it reads in an order that a live store cannot
fail: the checkpoint file before the database's checkpoints, those before the records, and
the links of records sealed after the walk are not taken for links added by hand. What it
reports names sequence numbers and checks, never what a record says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.audit.chain import Stored, verify
from services.audit.models import AuditEntry
from services.audit.sealing import file_checkpoints, stored_checkpoints, stored_records
from services.audit.store import AuditStore, alias_links, sealed_links

log = logging.getLogger(__name__)

Check = Literal["checkpoint_file", "chain", "alias_index"]
Links = set[tuple[str, str, str]]


@dataclass(frozen=True)
class TrailVerdict:
    records: int  # records verified (before the problem, if there is one)
    checkpoints: int  # signed checkpoints that agree with them
    problem: str | None = None  # in the words ``infoshare audit verify`` prints
    failed: Check | None = None  # the check that found the problem
    checkpoint_file_missing: bool = False  # no checkpoint in the file: only the database's

    @property
    def ok(self) -> bool:
        return self.problem is None


def identity(records: Iterable[Stored]) -> Iterator[Stored]:
    yield from records


def verify_trail(
    engine: Engine,
    *,
    chain_keys: Sequence[bytes],
    public_keys: Mapping[str, Ed25519PublicKey],
    checkpoint_file: Path | None,
    counted: Callable[[Iterable[Stored]], Iterable[Stored]] = identity,
) -> TrailVerdict:
    """Verify the trail in ``engine``'s store against the checkpoints there and in
    ``checkpoint_file``; ``counted`` sees each record as it is walked (a progress bar, a
    way to stop). Raises what the database driver or the file raise when they cannot be
    read: that is not a verdict."""
    # The file first: the store commits a checkpoint before it appends it to the file.
    outside = file_checkpoints(checkpoint_file) if checkpoint_file else []
    in_db = stored_checkpoints(engine)
    missing = [c for c in outside if c not in in_db]
    if missing:
        return TrailVerdict(
            0,
            0,
            f"the checkpoint of {missing[0].tree_size} records signed at "
            f"{missing[0].created_at} is in {checkpoint_file} but not (as signed) in the database",
            "checkpoint_file",
        )
    no_file = not outside
    merged = {c.signature: c for c in [*in_db, *outside]}
    sealed: Links = set()
    verdict = verify(
        chain_keys,
        _links_into(sealed, counted(stored_records(engine))),
        list(merged.values()),
        public_keys,
    )
    if verdict.problem is not None:
        return TrailVerdict(
            verdict.records, verdict.checkpoints, str(verdict.problem), "chain", no_file
        )
    indexed = alias_links(engine)
    added = indexed - sealed - _links_after(engine, verdict.records)  # read after the index
    removed = sealed - indexed
    if added or removed:
        return TrailVerdict(
            verdict.records,
            verdict.checkpoints,
            "the alias index (audit_subject_alias) differs from the sealed records: "
            f"{len(added)} link(s) added, {len(removed)} removed; a search by UPN or LA "
            "person id would find the wrong decisions",
            "alias_index",
            no_file,
        )
    return TrailVerdict(verdict.records, verdict.checkpoints, None, None, no_file)


def _links_into(links: Links, records: Iterable[Stored]) -> Iterator[Stored]:
    """The records, unchanged, noting on the way the alias links each makes."""
    for record in records:
        links |= sealed_links(record.content)
        yield record


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


class _Halted(Exception):
    """The service is stopping: the walk ends at the next record."""


async def verify_every(
    every_s: float, store: AuditStore, *, stop: asyncio.Event, report: Callable[[bool], None]
) -> None:
    """Verify the trail now and then every ``every_s`` seconds until ``stop``, off the event
    loop. ``report`` gets each verdict (True intact); a failed one is logged as an ERROR
    starting ``ALERT``. A trail that cannot be read is logged, by the error's type only (its
    text may quote data), and reported as nothing: it is not a verdict. Never raises."""
    halt = threading.Event()  # ``stop`` is the loop's; the walk runs in a thread
    stopping = asyncio.ensure_future(stop.wait())
    stopping.add_done_callback(lambda _: halt.set())
    try:
        while not stop.is_set():
            await _verify_once(store, halt, report)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
    finally:
        stopping.cancel()


async def _verify_once(
    store: AuditStore, halt: threading.Event, report: Callable[[bool], None]
) -> None:
    def until_halted(records: Iterable[Stored]) -> Iterator[Stored]:
        for record in records:
            if halt.is_set():
                raise _Halted
            yield record

    try:
        verdict = await asyncio.to_thread(
            verify_trail,
            store.engine,
            chain_keys=store.sealing.chain_keys(),
            public_keys=store.sealing.public_keys(),
            checkpoint_file=store.sealing.checkpoint_file,
            counted=until_halted,
        )
    except _Halted:
        return
    except Exception as exc:
        log.error("audit trail not verified: cannot read it (%s)", type(exc).__name__)
        return
    report(verdict.ok)
    if verdict.ok:
        log.info(
            "audit trail verified: %d record(s), %d signed checkpoint(s) agree",
            verdict.records,
            verdict.checkpoints,
        )
    else:
        log.error("ALERT audit trail verification failed: %s", verdict.problem)
