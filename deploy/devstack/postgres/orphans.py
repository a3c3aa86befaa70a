"""Clusters left behind: a test run that is killed leaves its clusters running and their
data under the root data directory, where nothing else would ever remove them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from deploy.devstack.postgres.install import pg_ctl_for


def sweep(root: Path) -> list[Path]:
    """Stop (immediate shutdown) and delete every cluster under ``root`` whose recorded
    home (the ``home`` file beside its data) no longer exists; return their directories.
    A cluster with no record is left alone: nothing says whose it is."""
    if os.geteuid() != 0 or not root.is_dir():
        return []  # only root runs clusters there
    swept = []
    for cluster in sorted(root.iterdir()):
        try:
            home = (cluster / "home").read_text().strip()
        except OSError:
            continue
        if not home or Path(home).exists():
            continue
        data = cluster / "data"
        pg_ctl = pg_ctl_for(data)
        if pg_ctl is not None and (data / "postmaster.pid").exists():
            # As the postgres user, so a stale pid file can only ever signal its processes.
            stop = [str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"]
            subprocess.run(
                ["runuser", "-u", "postgres", "--", *stop],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(cluster, ignore_errors=True)
        swept.append(cluster)
    return swept
