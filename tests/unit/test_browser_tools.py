"""`infoshare browser fetch`'s work: axe-core installed once, into place only when complete,
and a clear word on what to install where Chromium is missing and we may not install it."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from deploy.devstack import browser, debian

# Stands in for npm: writes what `npm install --prefix DIR axe-core@X` leaves, and counts
# its calls, so a test sees whether npm ran at all.
FAKE_NPM = """#!/bin/sh
echo run >> "$(dirname "$0")/calls"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift ;;
    axe-core@*) version="${1#axe-core@}" ;;
  esac
  shift
done
mkdir -p "$prefix/node_modules/axe-core"
printf '{"name": "axe-core", "version": "%s"}' "$version" \
  > "$prefix/node_modules/axe-core/package.json"
echo 'window.axe = {};' > "$prefix/node_modules/axe-core/axe.min.js"
"""


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM, encoding="utf-8")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir / "calls"


def test_axe_is_installed_once(tmp_path: Path, fake_npm: Path) -> None:
    cache = tmp_path / "cache"
    script = browser.ensure_axe(cache)
    assert script == browser.axe_script(cache)
    assert script.read_text(encoding="utf-8").startswith("window.axe")
    assert browser.installed_axe_version(cache) == browser.AXE_VERSION
    assert browser.ensure_axe(cache) == script
    assert fake_npm.read_text(encoding="utf-8").count("run") == 1
    # Nothing left of the staging directory beside the installed version.
    assert [p.name for p in (cache / "axe-core").iterdir()] == [browser.AXE_VERSION]


def test_a_different_version_in_place_is_replaced(tmp_path: Path, fake_npm: Path) -> None:
    cache = tmp_path / "cache"
    manifest = browser.axe_script(cache).parent / "package.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"version": "4.0.0"}), encoding="utf-8")
    browser.axe_script(cache).write_text("old", encoding="utf-8")
    browser.ensure_axe(cache)
    assert browser.installed_axe_version(cache) == browser.AXE_VERSION
    assert fake_npm.exists()


def test_missing_npm_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(browser.BrowserToolsError, match="apt-get install npm"):
        browser.ensure_axe(tmp_path / "cache")


def test_missing_chromium_without_root_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(debian, "can_install", lambda: False)
    with pytest.raises(browser.BrowserToolsError, match=r"apt-get install chromium` as root"):
        browser.ensure_chromium()
