"""What the real-browser tests need: Debian's Chromium, and axe-core (the accessibility
checker) at a pinned version from the npm registry, cached once.

Chromium comes from Debian's ``chromium`` package, never a browser a test tool downloads
itself (``playwright install`` cannot reach its download host here). axe-core is installed
with npm into ``<cache>/axe-core/<version>``: beside that directory first, then moved into
place, so an interrupted install is never taken for a complete one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.devstack import debian

CHROMIUM_PACKAGE = "chromium"
CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"

# Headless on a closed network: without the background-networking flags Chromium keeps
# trying Google's hosts, and as root it will not start sandboxed.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
FETCH_HINT = "run: infoshare browser fetch"


class BrowserToolsError(RuntimeError):
    """Chromium or axe-core could not be found or installed; the message says what to do."""


def ensure_chromium() -> Path:
    """``/usr/bin/chromium``, installing Debian's ``chromium`` package first when it is
    missing and we may (root with apt-get). Idempotent and quiet."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not debian.can_install():
        raise BrowserToolsError(
            f"Chromium is not installed: run `apt-get install {CHROMIUM_PACKAGE}` as root "
            f"(the browser tests drive {CHROMIUM})"
        )
    failed = debian.install(CHROMIUM_PACKAGE)
    if failed is not None:
        raise BrowserToolsError(f"apt-get install {CHROMIUM_PACKAGE} failed:\n{failed}")
    if not CHROMIUM.exists():
        raise BrowserToolsError(f"the {CHROMIUM_PACKAGE} package installed no {CHROMIUM}")
    return CHROMIUM


def axe_dir(cache_dir: Path, version: str = AXE_VERSION) -> Path:
    """The npm prefix axe-core ``version`` is installed under."""
    return cache_dir / "axe-core" / version


def _script_under(prefix: Path) -> Path:
    return prefix / "node_modules" / "axe-core" / "axe.min.js"


def axe_script(cache_dir: Path, version: str = AXE_VERSION) -> Path:
    """Where ``axe.min.js`` of axe-core ``version`` is once installed (it may not be yet)."""
    return _script_under(axe_dir(cache_dir, version))


def _version_under(prefix: Path) -> str | None:
    script = _script_under(prefix)
    try:
        manifest = json.loads((script.parent / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = manifest.get("version") if isinstance(manifest, dict) else None
    return found if isinstance(found, str) and script.exists() else None


def installed_axe_version(cache_dir: Path, version: str = AXE_VERSION) -> str | None:
    """The version of axe-core installed under ``axe_dir``, or None when it is not there."""
    return _version_under(axe_dir(cache_dir, version))


def _npm_install(npm: str, prefix: Path, version: str) -> None:
    # npm's own notices (update checks, funding) must not reach a quiet `make test`.
    env = {**os.environ, "npm_config_update_notifier": "false"}
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent"]
    result = subprocess.run(
        [*argv, f"axe-core@{version}"], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise BrowserToolsError(f"npm could not install axe-core@{version}:\n{tail}")


def ensure_axe(cache_dir: Path, version: str = AXE_VERSION) -> Path:
    """The path of the pinned axe-core's ``axe.min.js``, installed with npm on first use."""
    if installed_axe_version(cache_dir, version) == version:
        return axe_script(cache_dir, version)
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserToolsError(
            f"npm is needed once to install axe-core {version}: install Node.js and npm "
            "(apt-get install npm) and run the command again"
        )
    target = axe_dir(cache_dir, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{version}-", dir=target.parent))
    try:
        _npm_install(npm, staging, version)
        if _version_under(staging) != version:
            raise BrowserToolsError(f"npm installed no axe-core {version} in {staging}")
        staging.chmod(0o755)  # a temporary directory is made private
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return axe_script(cache_dir, version)
