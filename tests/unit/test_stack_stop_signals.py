"""A foreground stack's stop signals: the first interrupts what runs, and none after it cuts
the stop short. The stack's processes run in sessions of their own, so a stop abandoned
half way would leave them running."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import pytest

from deploy.devstack.stopping import STOP_SIGNALS, stop_signals

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers can be set only in the main thread",
)


@pytest.fixture
def callers_handlers() -> Iterator[list[int]]:
    """Handlers that record the signals they get, as the caller's, for the test's length."""
    seen: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)

    before = {sig: signal.signal(sig, record) for sig in STOP_SIGNALS}
    yield seen
    for sig, handler in before.items():
        signal.signal(sig, handler)


def test_the_first_signal_interrupts_and_none_after_it_does(callers_handlers: list[int]) -> None:
    caller = signal.getsignal(signal.SIGINT)
    steps: list[int] = []
    with stop_signals() as stopping:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # a supervisor's, or the first Ctrl-C
            steps.append(0)  # not reached
        assert stopping.begun
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGINT):
            _sent_while_stopping(sig)  # pressed again while the stack stops
            steps.append(sig)  # handled, and nothing raised, before this line runs
    assert steps == [signal.SIGINT, signal.SIGTERM, signal.SIGINT]
    assert callers_handlers == []
    assert signal.getsignal(signal.SIGINT) is caller  # restored after the block
    os.kill(os.getpid(), signal.SIGINT)
    assert callers_handlers == [signal.SIGINT]


def test_no_signal_interrupts_a_stop_once_begun(callers_handlers: list[int]) -> None:
    with stop_signals() as stopping:
        stopping.begun = True  # as the stack's stop sets it, first thing
        for sig in sorted(STOP_SIGNALS):
            _sent_while_stopping(sig)
    assert callers_handlers == []


def _sent_while_stopping(sig: int) -> None:
    try:
        os.kill(os.getpid(), sig)
    except KeyboardInterrupt:  # caught here, or it would end the whole test run
        pytest.fail(f"signal {sig} cut the stop short")
