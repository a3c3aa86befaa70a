"""What the IG console shows of the trail's integrity: the last verification's verdict and
time (the service's scheduled ones, and those an officer asked for), and a verification an
officer starts from the console, walking every record in a thread of its own, with its
progress. One runs at a time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from services.audit.chain import Stored
from services.audit.health import audit_health
from services.audit.store import AuditStore
from services.audit.verification import TrailVerdict, verify_trail
from services.audit.verify_schedule import file_anchors

log = logging.getLogger(__name__)
SCHEDULE = "the service's scheduled check"


@dataclass(frozen=True)
class Verified:
    ok: bool
    problem: str | None
    records: int
    walked: int
    checkpoints: int
    finished_at: datetime
    by: str


@dataclass(frozen=True)
class Running:
    by: str
    started_at: datetime
    walked: int
    total: int  # the records stored when it began (more may be sealed while it walks)


class _Halted(Exception):
    pass


class Integrity:
    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last: Verified | None = None
        self._running: Running | None = None
        self._walked = 0
        self._halt = threading.Event()

    def noted(self, verdict: TrailVerdict, by: str = SCHEDULE) -> None:
        """Keep ``verdict`` as the last one (a scheduled check's, or the console's)."""
        last = Verified(
            verdict.ok,
            verdict.problem,
            verdict.records,
            verdict.records - verdict.resumed_at,
            verdict.checkpoints,
            datetime.now(UTC),
            by,
        )
        with self._lock:
            self._last = last

    def status(self) -> tuple[Verified | None, Running | None]:
        with self._lock:
            running = self._running
            if running is not None:
                running = Running(running.by, running.started_at, self._walked, running.total)
            return self._last, running

    def start(self, by: str) -> bool:
        """Begin a verification of every record on ``by``'s behalf; False if one runs."""
        total = int(audit_health(self.store)["records"])
        with self._lock:
            if self._running is not None:
                return False
            self._running = Running(by, datetime.now(UTC), 0, total)
            self._walked = 0
        threading.Thread(target=self._walk, args=(by,), name="audit verify now").start()
        return True

    def close(self) -> None:
        """Stop a walk under way at its next record (the service is stopping)."""
        self._halt.set()

    def _count(self, records: Iterable[Stored]) -> Iterator[Stored]:
        for record in records:
            if self._halt.is_set():
                raise _Halted
            self._walked += 1
            yield record

    def _walk(self, by: str) -> None:
        store = self.store
        try:
            verdict = verify_trail(
                store.engine,
                chain_keys=store.sealing.chain_keys(),
                public_keys=store.sealing.public_keys(),
                anchors=lambda: file_anchors(store),
                counted=self._count,
            )
            self.noted(verdict, by)
            if not verdict.ok:
                log.error("ALERT audit trail verification failed: %s", verdict.problem)
        except _Halted:
            pass
        except Exception as exc:  # its text may quote data: the type only
            log.error("audit trail not verified: cannot read it (%s)", type(exc).__name__)
            with self._lock:
                self._last = Verified(
                    False,
                    f"the trail could not be read ({type(exc).__name__})",
                    0,
                    self._walked,
                    0,
                    datetime.now(UTC),
                    by,
                )
        finally:
            with self._lock:
                self._running = None
