"""Debian packages the project's own scripts install when a machine lacks them (PostgreSQL,
Prometheus): as root with apt-get only, quietly, refreshing the package lists once if an
install fails on stale ones."""

from __future__ import annotations

import os
import shutil
import subprocess


def can_install() -> bool:
    """Whether this process may install packages (root, with apt-get)."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(
        ["apt-get", "-q", "-y", "-o", "Dpkg::Use-Pty=0", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def install(package: str) -> str | None:
    """Install ``package`` (without recommends); None when it worked, else the end of
    apt-get's output, for the caller's error."""
    result = _apt("install", "--no-install-recommends", package)
    if result.returncode != 0:  # the package lists may be missing or stale
        _apt("update")
        result = _apt("install", "--no-install-recommends", package)
    if result.returncode == 0:
        return None
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-8:])
