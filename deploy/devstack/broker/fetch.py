"""Resolve the pinned Kafka jars from Maven Central into a cache, once.

The pinned version lives in ``deploy/kafka/pom.xml``; Maven copies the jars into a staging
directory beside ``<cache>/kafka/<version>/libs``, a marker file is written there last and
the whole directory is renamed into place, so ``libs`` is complete from the moment it
exists. A complete ``libs`` is never removed or replaced: a broker may be starting from it.
One process fetches at a time (a lock beside it); the others wait and use its jars.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from deploy.devstack.broker.errors import BrokerError

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "kafka"
_MARKER = ".complete"
_STAGING = ".libs-"  # prefix of the directories a fetch fills before they are renamed

log = logging.getLogger(__name__)


def pinned_version(pom: Path | None = None) -> str:
    """The Kafka version pinned in deploy/kafka/pom.xml."""
    text = (pom or DEPLOY_DIR / "pom.xml").read_text(encoding="utf-8")
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text)
    if not match:
        raise BrokerError("deploy/kafka/pom.xml does not pin <kafka.version>")
    return match.group(1).strip()


def libs_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / "kafka" / version / "libs"


def _copy_dependencies(into: Path, version: str, *, quiet: bool) -> None:
    """Have Maven copy the pinned broker's runtime jars into ``into``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Apache Maven is needed once to fetch Kafka from Maven Central: "
            "install it (apt-get install maven) and run the command again"
        )
    cmd = [
        mvn,
        "-B",
        "-f",
        str(DEPLOY_DIR / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={into}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise BrokerError("Maven could not fetch Kafka " + version + ":\n" + "\n".join(tail))


@contextlib.contextmanager
def _fetching(target: Path, version: str) -> Iterator[None]:
    """Hold the lock of the fetches into ``target`` (waiting, and saying so, while another
    process holds it)."""
    with (target.parent / ".fetch.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process fetching Kafka %s into %s", version, target)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def ensure_jars(cache_dir: Path, *, quiet: bool = True) -> Path:
    """Return the directory of the pinned broker's jars, fetching them on first use."""
    version = pinned_version()
    target = libs_dir(cache_dir, version)
    if (target / _MARKER).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _fetching(target, version):
        if (target / _MARKER).exists():  # fetched by the process we waited for
            return target
        # Left by a fetch that was killed: nobody else fetches while we hold the lock.
        for stale in target.parent.glob(_STAGING + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=_STAGING, dir=target.parent))
        try:
            _copy_dependencies(staging / "libs", version, quiet=quiet)
            (staging / "libs" / _MARKER).write_text(version, encoding="utf-8")
            if target.exists():
                # Incomplete (no marker), so unused: readers take only a complete one.
                os.rename(target, staging / "incomplete")
            os.rename(staging / "libs", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
