"""``infoshare kafka``: the pinned Apache Kafka broker (single-node KRaft, loopback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import CacheDir, StateDir, err, fail, out
from deploy.devstack.broker import BrokerError, BrokerNode
from deploy.devstack.broker.fetch import ensure_jars, pinned_version

app = typer.Typer(
    help="Run the pinned Apache Kafka broker (single-node KRaft, loopback)", no_args_is_help=True
)
Port = Annotated[int, typer.Option(help="Kafka client port on 127.0.0.1")]
ControllerPort = Annotated[int, typer.Option(help="KRaft controller port on 127.0.0.1")]


def _node(state_dir: Path, cache_dir: Path, port: int, controller_port: int) -> BrokerNode:
    return BrokerNode(
        state_dir=state_dir / "kafka",
        cache_dir=cache_dir,
        port=port,
        controller_port=controller_port,
    )


@app.command("fetch")
def kafka_fetch(cache_dir: CacheDir, quiet: bool = False) -> None:
    """Resolve the pinned Kafka jars from Maven Central into the cache (once)."""
    try:
        libs = ensure_jars(cache_dir)
    except BrokerError as exc:
        raise fail(str(exc)) from None
    if not quiet:
        out.print(f"Kafka {pinned_version()} jars in {libs}")


@app.command("start")
def kafka_start(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Start the broker in the background and wait until it accepts clients."""
    try:
        with err.status(f"starting Kafka {pinned_version()} ..."):
            status = _node(state_dir, cache_dir, port, controller_port).start()
    except BrokerError as exc:
        raise fail(str(exc)) from None
    out.print(status.describe())


@app.command("stop")
def kafka_stop(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Stop the broker started from this state directory."""
    stopped = _node(state_dir, cache_dir, port, controller_port).stop()
    out.print("Kafka stopped" if stopped else "Kafka was not running")


@app.command("status")
def kafka_status(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Say whether the broker runs; exit status 0 if it does, 3 if not."""
    status = _node(state_dir, cache_dir, port, controller_port).status()
    out.print(status.describe())
    if not status.running:
        raise typer.Exit(code=3)
