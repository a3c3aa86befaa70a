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
import os, subprocess, sys, threading, time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _until(name):
    deadline = time.monotonic() + 60
    while not (HERE / name).exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture(scope="session")
def server():
    (HERE / "setting-up").touch()
    _until("set-up")  # a signal may arrive here, before the server is started
    child = subprocess.Popen(
        [sys.executable, "-c", "import threading; threading.Event().wait(120)"],
        start_new_session=True,  # as the broker is: no signal to the run reaches it
    )
    (HERE / "server.pid").write_text(str(child.pid))
    yield child
    (HERE / "tearing").touch()
    _until("go")  # the later signals arrive here
    child.kill()
    child.wait()
    (HERE / "torn").touch()


def test_runs_until_stopped(server):
    (HERE / "running").touch()
    if os.environ["INNER_RUNS"] == "until stopped":
        threading.Event().wait(120)
"""

MODES = {
    "stopped while setting up": [],
    "stopped while running": [],
    "stopped while running on two workers": ["-n", "2"],
    "signalled only as the run ends": [],
}


@pytest.mark.parametrize("mode", list(MODES))
def test_sigterm_ends_a_run_with_its_fixtures_torn_down(tmp_path: Path, mode: str) -> None:
    """SIGTERM while a session fixture starts its server, or while a test runs (in one
    process or on workers), then twice more while the fixtures are torn down; or only while
    the fixtures of a run ending by itself are torn down: each time the server is stopped."""
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    inner = ["-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)]
    inner += ["--basetemp", str(tmp_path / "inner-tmp")]  # never the outer run's
    plugins = ["-p", "no:cacheprovider", "-p", "tests.stopping"]
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", *plugins, *MODES[mode], *inner],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={  # without the outer run's PYTEST_ADDOPTS (its --basetemp would be wiped)
            **outer,
            "PYTHONPATH": str(ROOT),
            "INNER_RUNS": "and ends" if mode.startswith("signalled") else "until stopped",
        },
    )
    server = 0
    try:
        _wait_for(lambda: (tmp_path / "setting-up").exists() or run.poll() is not None)
        if mode == "stopped while setting up":
            run.send_signal(signal.SIGTERM)
        (tmp_path / "set-up").touch()
        _wait_for(lambda: (tmp_path / "server.pid").exists() or run.poll() is not None)
        server = int((tmp_path / "server.pid").read_text())
        if mode.startswith("stopped while running"):
            _wait_for(lambda: (tmp_path / "running").exists() or run.poll() is not None)
            run.send_signal(signal.SIGTERM)
        _wait_for(lambda: (tmp_path / "tearing").exists() or run.poll() is not None)
        run.send_signal(signal.SIGTERM)  # again, twice, while the fixtures are torn down
        run.send_signal(signal.SIGTERM)
        (tmp_path / "go").touch()
        output = run.communicate(timeout=60)[0].decode()
    finally:
        if run.poll() is None:
            run.kill()
        left = server and _alive(server)
        if left:
            os.kill(server, signal.SIGKILL)
    assert (tmp_path / "torn").exists() and not left, output
    if mode == "stopped while setting up":
        assert not (tmp_path / "running").exists(), output  # interrupted once set up
    ended = pytest.ExitCode.OK if mode.startswith("signalled") else pytest.ExitCode.INTERRUPTED
    assert run.returncode == ended, output


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
