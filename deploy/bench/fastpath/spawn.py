"""Start a ``child.Job`` in a fresh process and collect what it measured. Spawned, not
forked: the child shares no memory or threads with the parent, though it imports the
parent's main module again (the CLI), so its baseline memory includes that (report.py
states the idle child's peak beside the variants')."""

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

    def result(self, timeout: float = 600.0) -> Measured:
        """What the job measured; RuntimeError with the child's traceback if it failed, or
        if it died or overran ``timeout`` seconds without a word (then it is killed)."""
        deadline = time.monotonic() + timeout
        got: Any = None
        while got is None:
            try:
                got = self._results.get(timeout=1.0)
            except queue.Empty:
                if not self.process.is_alive():
                    try:  # it may have put its result just before it exited
                        got = self._results.get(timeout=1.0)
                    except queue.Empty:
                        raise RuntimeError(
                            f"variant {self.job.variant} died (exit {self.process.exitcode})"
                        ) from None
                elif time.monotonic() > deadline:
                    self._end()
                    raise RuntimeError(
                        f"variant {self.job.variant} overran {timeout:.0f} s"
                    ) from None
        self.process.join(30)
        if self.process.is_alive():  # never left running beside the next measurement
            self._end()
        if isinstance(got, str):
            raise RuntimeError(f"variant {self.job.variant} failed:\n{got}")
        assert isinstance(got, Measured)
        return got

    def abandon(self) -> None:
        """Stop it after a failure elsewhere; if it failed too, raise its error (the likelier
        cause), chained to the one being handled."""
        self.stop()
        try:
            self.result(timeout=60.0)
        finally:
            self._end()

    def _end(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(10)


def run(job: Job, timeout: float = 900.0) -> Measured:
    """Run ``job`` to its end in a fresh process."""
    return Running(job).result(timeout)
