"""Resolve the pinned Kafka jars from Maven Central into a cache, once.

The pinned version lives in ``deploy/kafka/pom.xml``; the jars are copied by Maven into
``<cache>/kafka/<version>/libs`` and a marker file is written last, so an interrupted fetch
is never mistaken for a complete one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.devstack.broker.errors import BrokerError

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "kafka"
_MARKER = ".complete"


def pinned_version(pom: Path | None = None) -> str:
    """The Kafka version pinned in deploy/kafka/pom.xml."""
    text = (pom or DEPLOY_DIR / "pom.xml").read_text(encoding="utf-8")
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", text)
    if not match:
        raise BrokerError("deploy/kafka/pom.xml does not pin <kafka.version>")
    return match.group(1).strip()


def libs_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / "kafka" / version / "libs"


def ensure_jars(cache_dir: Path, *, quiet: bool = True) -> Path:
    """Return the directory of the pinned broker's jars, fetching them on first use."""
    version = pinned_version()
    target = libs_dir(cache_dir, version)
    if (target / _MARKER).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Apache Maven is needed once to fetch Kafka from Maven Central: "
            "install it (apt-get install maven) and run the command again"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=target.parent))
    cmd = [
        mvn,
        "-B",
        "-f",
        str(DEPLOY_DIR / "pom.xml"),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise BrokerError("Maven could not fetch Kafka " + version + ":\n" + "\n".join(tail))
    (staging / _MARKER).write_text(version, encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
