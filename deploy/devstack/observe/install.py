"""Find Debian's Prometheus (``prometheus`` and ``promtool``), installing the package when
it is missing and we may.

infoshare runs ``/usr/bin/prometheus`` itself, with a config and storage of its own, on a
port it chooses; the package's own service is not needed. Where systemd runs, the service
the package starts on install is stopped and disabled again, as the PostgreSQL installer
turns off Debian's "main" cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.devstack import debian
from deploy.devstack.observe.errors import ObserveError

PACKAGE = "prometheus"
USR_BIN = Path("/usr/bin")


@dataclass(frozen=True)
class PrometheusBinaries:
    prometheus: Path
    promtool: Path


def find_binaries() -> PrometheusBinaries | None:
    """Debian's binaries (or, failing those, the ones on PATH); None if either is missing."""
    found: list[Path] = []
    for name in ("prometheus", "promtool"):
        path = USR_BIN / name if (USR_BIN / name).exists() else None
        on_path = shutil.which(name)
        path = path or (Path(on_path) if on_path else None)
        if path is None:
            return None
        found.append(path)
    return PrometheusBinaries(*found)


def _install() -> None:
    failed = debian.install(PACKAGE)
    if failed is not None:
        raise ObserveError(f"apt-get install {PACKAGE} failed:\n{failed}")


def _turn_off_package_service() -> None:
    """Stop the service the package may have started on port 9090: we run our own."""
    if not Path("/run/systemd/system").is_dir() or shutil.which("systemctl") is None:
        return  # no systemd: nothing was started (a container's policy-rc.d says no)
    subprocess.run(
        ["systemctl", "disable", "--now", "prometheus.service"],
        capture_output=True,
        check=False,
    )


def ensure_prometheus() -> PrometheusBinaries:
    """``prometheus`` and ``promtool``; installs Debian's ``prometheus`` package first if
    they are missing and we may (root with apt-get). Idempotent and quiet."""
    found = find_binaries()
    if found is not None:
        return found
    if not debian.can_install():
        raise ObserveError(
            "Prometheus is not installed: run `apt-get install prometheus` as root "
            "(infoshare runs /usr/bin/prometheus itself; the package's service is not needed)"
        )
    _install()
    _turn_off_package_service()
    found = find_binaries()
    if found is None:
        raise ObserveError(f"the {PACKAGE} package installed no prometheus and promtool")
    return found
