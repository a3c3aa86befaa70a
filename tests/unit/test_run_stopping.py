"""A test run stopped by SIGTERM (a supervisor's, ``timeout``'s) tears its fixtures down, as
Ctrl-C does, and a second signal does not cut that short: the servers fixtures start run in
sessions of their own, and a run killed outright left them running (tests/stopping.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INNER = """
import os, signal, subprocess, sys, threading, time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def server():
    child = subprocess.Popen(
        [sys.executable, "-c", "import threading; threading.Event().wait(120)"],
        start_new_session=True,  # as the broker is: no signal to the run reaches it
    )
    (HERE / "server.pid").write_text(str(child.pid))
    yield child
    (HERE / "tearing").touch()
    deadline = time.monotonic() + 60
    while not (HERE / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the second signal arrives here
    child.kill()
    child.wait()
    (HERE / "torn").touch()


def test_runs_until_stopped(server):
    (HERE / "running").touch()
    if os.environ["INNER_RUNS"] == "until stopped":
        threading.Event().wait(120)
"""


@pytest.mark.parametrize("stopped", [True, False], ids=["stopped-while-running", "ending"])
def test_sigterm_ends_a_run_with_its_fixtures_torn_down(tmp_path: Path, stopped: bool) -> None:
    """Stopped while a test runs, then signalled twice more while the fixtures are torn
    down; or signalled only while the fixtures of a run ending by itself are torn down."""
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    inner = ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)]
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.stopping",
            *inner,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "INNER_RUNS": "until stopped" if stopped else "and ends",
        },
    )
    server = 0
    try:
        _wait_for(lambda: (tmp_path / "running").exists() or run.poll() is not None)
        server = int((tmp_path / "server.pid").read_text())
        if stopped:
            run.send_signal(signal.SIGTERM)
        _wait_for(lambda: (tmp_path / "tearing").exists() or run.poll() is not None)
        run.send_signal(signal.SIGTERM)  # again, while the fixtures are torn down
        run.send_signal(signal.SIGINT)
        (tmp_path / "go").touch()
        output = run.communicate(timeout=60)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
        left = server and _alive(server)
        if left:
            os.kill(server, signal.SIGKILL)
    assert (tmp_path / "torn").exists() and not left, output
    assert run.returncode == (pytest.ExitCode.INTERRUPTED if stopped else pytest.ExitCode.OK), (
        output
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the inner run never got there"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
