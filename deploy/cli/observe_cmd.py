"""``infoshare observe``: the observability backends, Zipkin's server (traces) and
Prometheus (metrics), that the tests run and an operator can run beside the stack."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from deploy.cli.terminal import CacheDir
from deploy.devstack.debian import can_install
from deploy.devstack.observe import ObserveError, jaeger
from deploy.devstack.observe.install import ensure_prometheus, find_binaries
from deploy.devstack.observe.zipkin import VERSION, ensure_jar

app = typer.Typer(
    help="The observability backends: Zipkin's server, Jaeger and Prometheus",
    no_args_is_help=True,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command("fetch")
def fetch(
    cache_dir: CacheDir,
    quiet: Annotated[bool, typer.Option(help="print nothing when all is well")] = False,
) -> None:
    """Download the pinned Zipkin server jar into the cache (once, checksum verified); build
    the pinned Jaeger from the Go module proxy into the cache (once, a few minutes; skipped
    with a note where Go is missing); and, as root, install Debian's prometheus package if
    it is missing. Idempotent."""
    try:
        jar = ensure_jar(cache_dir)
        binaries = ensure_prometheus() if can_install() else find_binaries()
    except ObserveError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    jaeger_binary = None
    if jaeger.find_go() is None:
        err.print(f"no Go: Jaeger {jaeger.VERSION} is not built (traces still go to Zipkin)")
    else:
        try:
            jaeger_binary = jaeger.ensure_binary(cache_dir, say=lambda m: err.print(m))
        except ObserveError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(1) from None
    if binaries is None:
        err.print(
            "Prometheus is not installed and only root can install it: "
            "`apt-get install prometheus` as root (tests that need it cannot run until then)"
        )
    if not quiet:
        out.print(f"Zipkin {VERSION} server in {jar}")
        if jaeger_binary is not None:
            out.print(f"Jaeger {jaeger.VERSION} in {jaeger_binary}")
        if binaries is not None:
            out.print(f"Prometheus: {binaries.prometheus}, {binaries.promtool}")
