"""What every command group shares: the two consoles, how a command fails, and the options
that name the state and cache directories."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from deploy.devstack.paths import default_cache_dir, default_state_dir
from services.backbone.errors import ConfigurationError
from services.backbone.kafka_access import ENV_NAMES, KafkaAccess
from services.backbone.private_files import private_dir
from services.backbone.settings import BackboneSettings

# Wide enough for tables when piped into a file or a test; the terminal's width otherwise.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True, highlight=False)


def wide_out() -> Console:
    """A console for wide tables: the terminal's width, or 160 columns when the output is a
    pipe (rich would assume 80) unless COLUMNS says otherwise."""
    wide = sys.stdout.isatty() or os.environ.get("COLUMNS")
    return Console(highlight=False, width=None if wide else 160)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Say what went wrong on stderr (markup in ``message`` is shown as typed) and give the
    exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code=code)


def kafka_access(settings: BackboneSettings, bootstrap: str | None = None) -> KafkaAccess:
    """The settings' Kafka access (at ``bootstrap`` if given), or a clear failure (exit 2)."""
    if bootstrap:
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
    try:
        return settings.kafka_access()
    except ConfigurationError as exc:
        raise fail(str(exc), 2) from None


def stack_admin_defaults(state_dir: Path) -> None:
    """Where the environment names no Kafka principal and a local stack has written its
    administrator's settings (``<state>/kafka-clients/admin.env``), use those: after
    ``infoshare up``, ``infoshare status`` and the others just work."""
    if any(name in os.environ for name in ENV_NAMES):
        return
    env_file = state_dir / "kafka-clients" / "admin.env"
    try:
        lines = env_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name in ENV_NAMES:
            os.environ[name] = value


def _private_state_dir(path: Path) -> Path:
    """The state directory, made 0700 with any missing parents: it will hold keys,
    passwords, databases and logs, and nothing below it may be listed by others."""
    try:
        return private_dir(path)
    except OSError as exc:
        raise typer.BadParameter(f"cannot make {path} ({exc.strerror or exc})") from None


StateDir = Annotated[
    Path,
    typer.Option(
        help="where state lives (env INFOSHARE_STATE_DIR); made private (0700) if new",
        default_factory=default_state_dir,
        callback=_private_state_dir,
    ),
]
CacheDir = Annotated[
    Path,
    typer.Option(
        help="where Kafka jars are cached (INFOSHARE_CACHE_DIR)", default_factory=default_cache_dir
    ),
]
