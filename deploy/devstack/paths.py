"""Where the dev stack keeps state and caches (XDG base directories, or INFOSHARE_* overrides)."""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(var: str, fallback: str) -> Path:
    return Path(os.environ.get(var) or Path.home() / fallback) / "infoshare"


def default_state_dir() -> Path:
    return Path(os.environ.get("INFOSHARE_STATE_DIR") or _xdg("XDG_STATE_HOME", ".local/state"))


def default_cache_dir() -> Path:
    return Path(os.environ.get("INFOSHARE_CACHE_DIR") or _xdg("XDG_CACHE_HOME", ".cache"))
