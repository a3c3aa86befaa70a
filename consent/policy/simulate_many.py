"""Dry runs over many events: a protocol change tried on a year of history in minutes.

The events file is cut into byte ranges at line ends, and each range is read and decided by
a worker process (forked, so the compiled protocol sets are shared, not rebuilt, and no
event passes through the parent). Each range comes back as a tally: decisions counted per
recipient, protocol and outcome under both sets, the first rows for display, and every
changed row for ``--changes``, numbered by the range's own lines until the parent, taking
the ranges in order, gives them their lines in the file. Memory stays flat whatever the
file's size; nothing is written anywhere but where the caller says.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from consent.core.model import ProtocolSet
from consent.policy.simulate import Row, SimulationInputError, Simulator, sim_event

RANGE_BYTES = 4 << 20
Outcomes = tuple[str, str, str, str]  # (recipient, protocol, candidate, live or "")


@dataclass
class Tally:
    events: int = 0
    lines: int = 0  # lines read, blank ones included
    counts: Counter[Outcomes] = field(default_factory=Counter)
    changed: int = 0
    shown: list[Row] = field(default_factory=list)  # the first rows, for display
    changes: list[Row] = field(default_factory=list)  # changed rows not yet handed on

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def add(self, rows: list[Row], keep: int) -> None:
        self.events += 1
        for row in rows:
            self.counts[(row.recipient, row.protocol, row.candidate, row.live or "")] += 1
            if row.changed:
                self.changed += 1
                self.changes.append(row)
        room = keep - len(self.shown)
        if room > 0:
            self.shown += rows[:room]

    def merge(self, other: Tally, keep: int) -> None:
        self.events += other.events
        self.lines += other.lines
        self.counts += other.counts
        self.changed += other.changed
        self.changes += other.changes
        self.shown += other.shown[: max(0, keep - len(self.shown))]


class _BadLine(Exception):
    """A line of a range that cannot be simulated: its number in the range, and why."""

    def __init__(self, number: int, reason: str) -> None:
        super().__init__(number, reason)
        self.number, self.reason = number, reason


def _decide_range(simulator: Simulator, path: Path, start: int, end: int, keep: int) -> Tally:
    with path.open("rb") as fh:
        fh.seek(start)
        lines = fh.read(end - start).split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline ending the range's last line
    tally = Tally(lines=len(lines))
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _BadLine(number, f"not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise _BadLine(number, "not a JSON object")
        try:
            event = sim_event(doc, index=number)
        except SimulationInputError as exc:
            raise _BadLine(number, exc.reason) from None
        tally.add(simulator.rows(number, event), keep)
    return tally


def _ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``RANGE_BYTES``, each ending at a line's end (or the file's)."""
    bounds = [0]
    with path.open("rb") as fh:
        while bounds[-1] < size:
            fh.seek(min(size, bounds[-1] + RANGE_BYTES))
            fh.readline()
            bounds.append(min(size, fh.tell()))
    return list(itertools.pairwise(bounds))


# What a forked worker decides with: set in the parent just before the pool forks.
_WORKER: tuple[Simulator, Path, int] | None = None


def _in_worker(span: tuple[int, int]) -> Tally:
    assert _WORKER is not None, "the pool must fork after simulate_file sets _WORKER"
    simulator, path, keep = _WORKER
    return _decide_range(simulator, path, span[0], span[1], keep)


Progress = Callable[[int, int, int], None]  # (events decided, bytes done, file size)
Changes = Callable[[list[Row]], None]


def simulate_file(
    path: Path,
    candidate: ProtocolSet,
    live: ProtocolSet | None = None,
    *,
    workers: int | None = None,
    keep: int = 200,
    progress: Progress | None = None,
    changes: Changes | None = None,
) -> Tally:
    """Decide every event of the JSON-lines file ``path`` under ``candidate`` (and ``live``);
    ``changes`` is handed the changed rows in file order, ``progress`` told how far the run
    is. SimulationInputError names the line of the first bad event."""
    global _WORKER
    simulator = Simulator(candidate, live)
    size = path.stat().st_size
    total = Tally()

    def absorb(part: Future[Tally] | Tally, end: int) -> None:
        try:
            tally = part.result() if isinstance(part, Future) else part
        except _BadLine as bad:
            line = total.lines + bad.number
            raise SimulationInputError(f"{path.name} line {line}: {bad.reason}") from None
        base = total.lines
        if changes is not None and tally.changes:
            changes([replace(r, index=r.index + base) for r in tally.changes])
        tally.changes = []
        tally.shown = [replace(r, index=r.index + base) for r in tally.shown]
        total.merge(tally, keep)
        if progress is not None:
            progress(total.events, end, size)

    spans = _ranges(path, size)
    count = min(workers or len(os.sched_getaffinity(0)) or 1, max(1, len(spans)))
    if count <= 1:
        for start, end in spans:
            try:
                part = _decide_range(simulator, path, start, end, keep)
            except _BadLine as bad:
                raise SimulationInputError(
                    f"{path.name} line {total.lines + bad.number}: {bad.reason}"
                ) from None
            absorb(part, end)
        return total
    _WORKER = (simulator, path, keep)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(count, mp_context=context) as pool:
            pending: deque[tuple[Future[Tally], int]] = deque()
            try:
                for start, end in spans:  # a few ranges per worker in flight: results small
                    pending.append((pool.submit(_in_worker, (start, end)), end))
                    if len(pending) >= 3 * count:
                        absorb(*pending.popleft())
                while pending:
                    absorb(*pending.popleft())
            except BaseException:
                pool.shutdown(cancel_futures=True)  # a bad line: no need to decide the rest
                raise
    finally:
        _WORKER = None
    return total
