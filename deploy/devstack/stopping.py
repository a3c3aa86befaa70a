"""Stop signals for a process that started others in sessions of their own (a foreground
stack, a test run and its broker): a Ctrl-C or SIGTERM reaches only it, so a stop it cut
short would leave them running with nothing left to stop them. The first signal
interrupts what runs (KeyboardInterrupt), which the process's ``finally`` turns into the
stop; none after it changes anything (for ``grace_s``, if given)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Iterator
from types import FrameType

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class Stopping:
    """The stop signals, as ``stop_signals`` handles them: the first interrupts what runs,
    unless the stop has ``begun``, or waits while the work is ``held`` and interrupts as it
    ends. Once the stop has begun, later ones change nothing, unless ``grace_s`` is given:
    one that comes that long after the first it ignored ends the process as it would have
    without this (a stop that hangs can still be ended). A process forked from this one (a
    worker pool's) inherits the handler but not the stop: it gets the signal's default
    action, and ends."""

    def __init__(self, grace_s: float | None = None) -> None:
        self.begun = False  # set first thing where the stop begins: no signal interrupts it
        self.signalled = False  # a signal interrupted the work
        self._pid = os.getpid()
        self._grace_s = grace_s
        self._ignoring_since: float | None = None
        self._holding = 0
        self._pending = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != self._pid:
            _default(signum)
            return
        if self.begun:
            self._after_begun(signum)
            return  # the stop under way is what was asked for
        if self._holding:
            self._pending = True  # interrupts as the held work ends
            return
        self._interrupt()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A signal during the block (starting a server, or stopping one) interrupts only
        as the block ends, so that what it starts is known to whatever stops it."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if self._pending and not self._holding and not self.begun:
            self._interrupt()

    def _interrupt(self) -> None:
        self.begun = True
        self.signalled = True
        raise KeyboardInterrupt

    def _after_begun(self, signum: int) -> None:
        if self._grace_s is None:
            return
        now = time.monotonic()
        if self._ignoring_since is None:
            self._ignoring_since = now
        elif now - self._ignoring_since >= self._grace_s:
            _default(signum)


def _default(signum: int) -> None:
    """The signal's default action, here and now."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


@contextlib.contextmanager
def stop_signals(
    signals: Iterable[int] = STOP_SIGNALS, *, grace_s: float | None = None
) -> Iterator[Stopping]:
    """``signals`` (Ctrl-C and SIGTERM) handled by a ``Stopping`` for the block, even when
    this process was launched with SIGINT ignored (as a shell does for a command run in the
    background); the handlers before are restored after it. The block sets ``begun`` as the
    first statement of the ``finally`` that stops what it started: Python runs a signal's
    handler only between calls and loops, so none can run between entering that
    ``finally`` and it."""
    stopping = Stopping(grace_s)
    previous = {sig: signal.signal(sig, stopping.handle) for sig in signals}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
