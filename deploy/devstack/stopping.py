"""Stop signals for a process that started others in sessions of their own (a foreground
stack, a test run and its broker): a Ctrl-C or SIGTERM reaches only it, so a stop it cut
short would leave them running with nothing left to stop them. The first signal
interrupts what runs (KeyboardInterrupt), which the process's ``finally`` turns into the
stop; none after it changes anything."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class Stopping:
    """The stop signals, as ``stop_signals`` handles them: the first interrupts what runs,
    unless the stop has ``begun``; none after it changes anything. A process forked from
    this one (a worker pool's) inherits the handler but not the stop: it dies of the signal
    as it would have without it."""

    def __init__(self) -> None:
        self.begun = False  # set first thing where the stop begins: no signal interrupts it
        self._pid = os.getpid()

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if self.begun:
            return  # the stop under way is what was asked for
        self.begun = True
        raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals() -> Iterator[Stopping]:
    """Ctrl-C and SIGTERM handled by a ``Stopping`` for the block, even when this process
    was launched with SIGINT ignored (as a shell does for a command run in the background);
    the handlers before are restored after it. The block sets ``begun`` as the first
    statement of the ``finally`` that stops what it started: Python runs a signal's handler
    only between calls and loops, so none can run between entering that ``finally`` and
    it."""
    stopping = Stopping()
    previous = {sig: signal.signal(sig, stopping.handle) for sig in STOP_SIGNALS}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
