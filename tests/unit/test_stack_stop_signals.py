"""A foreground stack's stop signals: the first interrupts what runs, and none after it cuts
the stop short. The stack's processes run in sessions of their own, so a stop abandoned
half way would leave them running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
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


def test_a_signal_while_held_interrupts_as_the_held_work_ends(
    callers_handlers: list[int],
) -> None:
    steps = []
    with stop_signals() as stopping:
        with pytest.raises(KeyboardInterrupt):
            with stopping.held():  # a server being started
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("started")  # reached: the signal waits
            steps.append("after")  # not reached: it interrupts as the block ends
        assert stopping.begun and stopping.signalled
    assert steps == ["started"]


GRACE = """
import os, signal, sys
from deploy.devstack.stopping import stop_signals

with stop_signals({signal.SIGTERM}, grace_s=float(sys.argv[1]) if sys.argv[1] else None) as s:
    s.begun = True
    os.kill(os.getpid(), signal.SIGTERM)  # ignored: the stop is under way
    print("ignored", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # with a grace of 0, past it: the default action
    print("ignored again", flush=True)
"""


@pytest.mark.parametrize(("grace", "ends"), [("0", -signal.SIGTERM), ("", 0)])
def test_a_signal_past_the_grace_ends_a_stop_that_hangs(grace: str, ends: int) -> None:
    """Once the stop has begun, signals are ignored, unless a grace is given and one comes
    that long after the first ignored: then it ends the process, as without the handler."""
    done = subprocess.run(
        [sys.executable, "-c", GRACE, grace],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    said = ["ignored"] if ends else ["ignored", "ignored again"]
    assert (done.returncode, done.stdout.split("\n")[:-1]) == (ends, said), done.stderr
