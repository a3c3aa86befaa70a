"""Find Debian's PostgreSQL server binaries, installing the package when they are missing.

The package is installed with its default "main" cluster turned off: infoshare runs its own
cluster, in its own directory, on a port it chooses, and leaves nothing else running.
"""

from __future__ import annotations

from pathlib import Path

from deploy.devstack import debian
from deploy.devstack.postgres.errors import PostgresError

LIB = Path("/usr/lib/postgresql")
NO_MAIN_CLUSTER = Path("/etc/postgresql-common/createcluster.d/infoshare.conf")


def find_bin() -> Path | None:
    """The newest installed server's bin directory (``/usr/lib/postgresql/<v>/bin``)."""
    found = [p.parent for p in LIB.glob("*/bin/postgres") if p.parent.parent.name.isdigit()]
    return max(found, key=lambda b: int(b.parent.name)) if found else None


def bin_for(version: str) -> Path | None:
    """The bin directory of the installed server of major ``version`` (a data directory's
    ``PG_VERSION``), or None: a cluster runs only under the version that made it."""
    bin_dir = LIB / version / "bin"
    return bin_dir if version.isdigit() and (bin_dir / "postgres").exists() else None


def data_version(data_dir: Path) -> str | None:
    """The major version that made the cluster in ``data_dir``; None if there is none."""
    try:
        return (data_dir / "PG_VERSION").read_text().strip() or None
    except OSError:
        return None


def pg_ctl_for(data_dir: Path) -> Path | None:
    """A pg_ctl that can say whether the cluster in ``data_dir`` runs and stop it: its own
    version's if installed, else any (status and stop only read postmaster.pid and signal
    that process). None: no server is installed, so none can be running."""
    version = data_version(data_dir)
    bin_dir = (bin_for(version) if version else None) or find_bin()
    return None if bin_dir is None else bin_dir / "pg_ctl"


def _install(package: str) -> None:
    failed = debian.install(package)
    if failed is not None:
        raise PostgresError(f"apt-get install {package} failed:\n{failed}")


def ensure_server() -> Path:
    """The server's bin directory; installs Debian's ``postgresql`` package first if this
    machine has none and we may (root with apt-get). Idempotent and quiet."""
    found = find_bin()
    if found is not None:
        return found
    if not debian.can_install():
        raise PostgresError(
            "PostgreSQL's server is not installed: run `apt-get install postgresql` as root "
            "(or point INFOSHARE_AUDIT_DATABASE_URL at a server of your own)"
        )
    _install("postgresql-common")
    # Debian would create and start a "main" cluster on port 5432; we run our own.
    NO_MAIN_CLUSTER.parent.mkdir(parents=True, exist_ok=True)
    NO_MAIN_CLUSTER.write_text("create_main_cluster = false\n")
    _install("postgresql")
    found = find_bin()
    if found is None:
        raise PostgresError(f"the postgresql package installed no server under {LIB}")
    return found
