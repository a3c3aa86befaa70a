"""The fast-path benchmark's clock: inputs done, timed from the first batch done to the
last, so that joining the consumer group is nobody's cost; with the process's CPU time and
the wall-clock time (comparable across processes) over the same span."""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Clock:
    """Inputs done, timed from the first batch done to the last (joining the group is
    nobody's cost), with this process's CPU time over the same span. Ticked by one
    thread only."""

    total: int
    done: int = 0
    first_done: int = 0
    first_at: float = 0.0
    last_at: float = 0.0
    first_wall: float = 0.0
    last_wall: float = 0.0
    first_cpu: float = 0.0
    last_cpu: float = 0.0
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def tick(self, count: int) -> None:
        self.done += count
        now, wall, cpu = time.perf_counter(), time.time(), cpu_seconds()
        if not self.first_done:
            self.first_at, self.first_wall, self.first_cpu = now, wall, cpu
            self.first_done = self.done
        self.last_at, self.last_wall, self.last_cpu = now, wall, cpu
        if self.done >= self.total:
            self.finished.set()

    @property
    def per_second(self) -> float:
        elapsed = self.last_at - self.first_at
        return (self.done - self.first_done) / elapsed if elapsed > 0 else 0.0

    @property
    def cpu_per_1000(self) -> float:
        counted = self.done - self.first_done
        return (self.last_cpu - self.first_cpu) * 1000 / counted if counted else 0.0
