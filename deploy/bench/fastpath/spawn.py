"""Start a ``child.Job`` in a fresh process (spawned, so nothing of the parent's state comes
along) and collect what it measured."""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any

from deploy.bench.fastpath.child import Job, Measured, main

_CONTEXT = multiprocessing.get_context("spawn")


class Running:
    """One job's process: tell it to stop (open-loop runs), tell the audit ingester how
    many records to expect, and take its result."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self._results: Any = _CONTEXT.Queue()
        self._stop = _CONTEXT.Event()
        self._expected: Any = _CONTEXT.Value("q", 0)
        self.process = _CONTEXT.Process(
            target=main,
            args=(job, self._results, self._stop, self._expected),
            name=f"bench-{job.variant}",
            daemon=True,
        )
        self.process.start()

    def stop(self) -> None:
        self._stop.set()

    def expect(self, count: int) -> None:
        self._expected.value = count

    def result(self, timeout: float = 900.0) -> Measured:
        """What the job measured; RuntimeError with the child's traceback if it failed, or
        if it died or overran ``timeout`` seconds without a word."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                got = self._results.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(
                        f"variant {self.job.variant} died (exit {self.process.exitcode})"
                    ) from None
                if time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(
                        f"variant {self.job.variant} overran {timeout:.0f} s"
                    ) from None
        self.process.join(60)
        if isinstance(got, str):
            raise RuntimeError(f"variant {self.job.variant} failed:\n{got}")
        assert isinstance(got, Measured)
        return got


def run(job: Job, timeout: float = 900.0) -> Measured:
    """Run ``job`` to its end in a fresh process."""
    return Running(job).result(timeout)
