"""Stopping the local stack is not cut short by a second Ctrl-C: the stack's processes run
in sessions of their own, so a stop abandoned half way would leave them running."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import pytest

from deploy.cli.stack_cmd import STOP_SIGNALS, uninterruptible

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers can be set only in the main thread",
)


def test_a_stop_signal_during_the_stop_changes_nothing_and_the_handlers_come_back() -> None:
    seen: list[int] = []

    def caller_handler(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)  # what the caller had: it would cut the stop short

    before = {sig: signal.signal(sig, caller_handler) for sig in STOP_SIGNALS}
    try:
        steps = []
        with uninterruptible():
            for sig in sorted(STOP_SIGNALS):
                os.kill(os.getpid(), sig)  # a second Ctrl-C, a supervisor's SIGTERM
                steps.append(sig)  # handled before this line runs
        assert steps == sorted(STOP_SIGNALS)  # the stop went on to its end
        assert seen == []
        assert all(signal.getsignal(sig) is caller_handler for sig in STOP_SIGNALS)
        os.kill(os.getpid(), signal.SIGINT)  # once stopped, the caller's handler again
        assert seen == [signal.SIGINT]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
