"""Clusters left behind: a test run that is killed leaves its clusters running and their
data under the root data directory, where nothing else would ever remove them.

A cluster is swept only when it is truly orphaned, since test workers and developers share
that directory: its recorded home (the state directory it belongs to) is gone, it is older
than ``GRACE_S``, no live process has claimed it (``claim``: the process that started it
holds a shared lock on its ``owner.lock`` for as long as it lives), and its postmaster, if
one still runs, runs in our mount namespace (where the home's absence means something).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from deploy.devstack.postgres.install import pg_ctl_for

GRACE_S = 600.0  # a cluster this young may still be being made, or its home written
OWNER_LOCK = "owner.lock"


def claim(cluster: Path) -> int | None:
    """Mark ``cluster`` as this process's for as long as the returned descriptor stays open
    (a shared lock: several processes may claim one cluster). None if the cluster was swept
    away meanwhile: make it again and claim it again."""
    path = cluster / OWNER_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        same = False
    if not same:  # a sweep deleted it while we waited: our lock holds nothing
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def _unclaimed(cluster: Path) -> Iterator[bool]:
    """Whether no live process claims ``cluster``; while True, none can claim it."""
    try:
        fd = os.open(cluster / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _home_gone(cluster: Path) -> bool:
    """Whether the cluster's recorded home no longer exists (False with no record yet)."""
    try:
        home = (cluster / "home").read_text().strip()
    except OSError:
        return False
    return bool(home) and not Path(home).exists()


def _age(cluster: Path) -> float:
    newest = max(p.stat().st_mtime for p in (cluster, cluster / "home"))
    return time.time() - newest


def _postmaster(data: Path) -> int | None:
    """The pid of the postmaster running on ``data``, if one is alive: the pid its
    ``postmaster.pid`` names, if that process works in ``data`` (a postmaster's working
    directory is its data directory; a pid reused by any other process is not it)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        return pid if os.path.samefile(f"/proc/{pid}/cwd", data) else None
    except FileNotFoundError:
        return None  # no such process (or no data directory)
    except OSError:
        return pid  # cannot tell: taken as alive


def _in_our_mount_namespace(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    except OSError:
        return False


def _stop(data: Path) -> None:
    """Immediate shutdown of the postmaster on ``data``, as the postgres user."""
    pg_ctl = pg_ctl_for(data)
    if pg_ctl is not None:
        stop = [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(["runuser", "-u", "postgres", "--", *stop], capture_output=True, check=False)


def sweep(root: Path) -> list[Path]:
    """Stop (immediate shutdown) and delete every truly orphaned cluster under ``root`` (see
    the module's docstring); return their directories. A cluster with no record of its home
    is left alone: nothing says whose it is."""
    if os.geteuid() != 0 or not root.is_dir():
        return []  # only root runs clusters there
    swept = []
    for cluster in sorted(root.iterdir()):
        try:
            if not _home_gone(cluster) or _age(cluster) < GRACE_S:
                continue
        except OSError:
            continue  # being made, or swept by another process meanwhile
        with _unclaimed(cluster) as free:
            if not free or not _home_gone(cluster):
                continue
            data = cluster / "data"
            pid = _postmaster(data)
            if pid is not None:
                if not _in_our_mount_namespace(pid):
                    continue  # its home may well exist where it runs
                _stop(data)
                if _postmaster(data) is not None:
                    continue  # would not stop: leave it rather than pull its data away
            shutil.rmtree(cluster, ignore_errors=True)
        swept.append(cluster)
    return swept
