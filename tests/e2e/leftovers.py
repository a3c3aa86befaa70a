"""Run a command and say which of the processes it started outlive it, looking at nothing
else on the machine (another test worker's Kafka, PostgreSQL or demo is never in question).

This process makes itself a child subreaper (Linux): a process the command started and
left running, however it got away (a session of its own, a daemon that forked off, as
PostgreSQL's server does), is re-parented here instead of to init. So once the command has
exited, its leftovers are exactly this process's live descendants.

    python -m tests.e2e.leftovers REPORT COMMAND...

runs COMMAND (passing SIGINT and SIGTERM on to it), writes the JSON list of its leftovers
(``pid``, ``cmdline``) to REPORT, kills them, and exits with COMMAND's status.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def children(pid: int) -> list[int]:
    """The children of ``pid`` (every thread's), none if it is gone."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited: only its exit status is left


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` in the process tree."""
    found, todo = [], children(pid)
    while todo:
        child = todo.pop()
        if alive(child):
            found.append(child)
        todo += children(child)
    return found


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def _reap() -> None:
    """Collect the exit status of every child that has exited (re-parented ones too)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_all() -> None:
    """Kill every descendant, those re-parented here as their parents die included."""
    while left := descendants(os.getpid()):
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)  # one at least exits; the loop sees to the rest
        except ChildProcessError:
            break
    _reap()


def main(report: Path, command: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    proc = subprocess.Popen(command)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: proc.send_signal(signum))
    status = proc.wait()
    _reap()
    left = [{"pid": pid, "cmdline": cmdline(pid)} for pid in descendants(os.getpid())]
    report.write_text(json.dumps(left), encoding="utf-8")
    _kill_all()  # so that a failing test leaves nothing running either
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))
