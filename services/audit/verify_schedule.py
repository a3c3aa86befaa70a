"""The audit service's own check of its trail, on a schedule (``verify_every``): each check
after the first resumes from where the last intact one ended, walking only the records
sealed since (services/audit/resume.py), and one now and then walks every record again.
The verdict feeds the gauge an alert watches; a failure is logged by sequence number and
check, never by what a record says."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from services.audit.anchoring import Anchor, file_anchor
from services.audit.chain import Stored
from services.audit.resume import Verified
from services.audit.store import AuditStore
from services.audit.verification import TrailVerdict, verify_trail

log = logging.getLogger("services.audit.verification")  # the name alerts are set up on


class _Halted(Exception):
    """The service is stopping: the walk ends at the next record."""


async def verify_every(
    every_s: float,
    store: AuditStore,
    *,
    stop: asyncio.Event,
    report: Callable[[bool], None],
    full_every_s: float = 3600.0,
    noted: Callable[[TrailVerdict], None] | None = None,
) -> None:
    """Verify the trail now and then every ``every_s`` seconds until ``stop``, off the event
    loop: each check after the first resumes from where the last intact one ended (the
    records sealed since), and one every ``full_every_s`` walks every record again.
    ``report`` gets each verdict (True intact), ``noted`` the whole of it; a failed one is
    logged as an ERROR starting ``ALERT``. A trail that cannot be read is logged, by the
    error's type only (its text may quote data), and reported as nothing: it is not a
    verdict. Never raises."""
    halt = threading.Event()  # ``stop`` is the loop's; the walk runs in a thread
    stopping = asyncio.ensure_future(stop.wait())
    stopping.add_done_callback(lambda _: halt.set())
    kept: Verified | None = None
    full_at = 0.0
    try:
        while not stop.is_set():
            full = kept is None or time.monotonic() - full_at >= full_every_s
            started = time.monotonic()
            verdict = await _verify_once(store, halt, report, None if full else kept)
            if verdict is not None and noted is not None:
                noted(verdict)
            if verdict is not None:
                kept = verdict.verified if verdict.ok else None
                full_at = started if full else full_at
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
    finally:
        stopping.cancel()


async def _verify_once(
    store: AuditStore,
    halt: threading.Event,
    report: Callable[[bool], None],
    resume: Verified | None,
) -> TrailVerdict | None:
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
            anchors=lambda: file_anchors(store),
            counted=until_halted,
            resume=resume,
        )
    except _Halted:
        return None
    except Exception as exc:
        log.error("audit trail not verified: cannot read it (%s)", type(exc).__name__)
        return None
    report(verdict.ok)
    if verdict.ok:
        log.info(
            "audit trail verified: %d record(s) (%d walked), %d signed checkpoint(s) agree",
            verdict.records,
            verdict.records - verdict.resumed_at,
            verdict.checkpoints,
        )
    else:
        log.error("ALERT audit trail verification failed: %s", verdict.problem)
    return verdict


def file_anchors(store: AuditStore) -> list[Anchor]:
    """The service's own check: against the checkpoint file (the topic is ``infoshare
    audit verify``'s to read)."""
    path = store.sealing.checkpoint_file
    return [file_anchor(path)] if path is not None else []
