"""``infoshare browser``: what the real-browser tests need, Debian's Chromium and the
pinned axe-core accessibility checker."""

from __future__ import annotations

from typing import Annotated

import typer

from deploy.cli.terminal import CacheDir, fail, out
from deploy.devstack.browser import AXE_VERSION, BrowserToolsError, ensure_axe, ensure_chromium

app = typer.Typer(
    help="The browser tests' tools: Debian's Chromium and axe-core",
    no_args_is_help=True,
)


@app.command("fetch")
def fetch(
    cache_dir: CacheDir,
    quiet: Annotated[bool, typer.Option(help="print nothing when all is well")] = False,
) -> None:
    """As root, install Debian's chromium package if /usr/bin/chromium is missing; install
    the pinned axe-core with npm into the cache (once). Idempotent."""
    try:
        chromium = ensure_chromium()
        axe = ensure_axe(cache_dir)
    except BrowserToolsError as exc:
        raise fail(str(exc)) from None
    if not quiet:
        out.print(f"Chromium: {chromium}")
        out.print(f"axe-core {AXE_VERSION}: {axe}")
