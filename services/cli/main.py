"""The ``infoshare`` command: run Kafka, the stack, the demo, and each component."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.broker import BrokerError, BrokerNode
from services.broker.fetch import ensure_jars, pinned_version
from services.cli import (
    api_keys_cmd,
    audit_cmd,
    dlq_cmd,
    observe_cmd,
    persons_cmd,
    postgres_cmd,
    protocols_cmd,
    replay_cmd,
    status_cmd,
)
from services.cli.paths import CacheDir, StateDir, default_cache_dir

app = typer.Typer(
    help="infoshare: information sharing between schools, social care and the NHS",
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
)
kafka_app = typer.Typer(
    help="Run the pinned Apache Kafka broker (single-node KRaft, loopback)", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Manage the keyring (routing, audit and pseudonym keys)", no_args_is_help=True
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(postgres_cmd.app, name="postgres")
app.add_typer(protocols_cmd.app, name="protocols")
app.add_typer(dlq_cmd.app, name="dlq")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(persons_cmd.app, name="persons")
app.add_typer(observe_cmd.app, name="observe")
app.command("replay", short_help="Decide a range of a source topic again, audited as replay")(
    replay_cmd.replay
)
app.command("status", short_help="One screen: health, lag, dead letters, circuits, audit")(
    status_cmd.status
)
app.add_typer(keys_app, name="keys")
keys_app.add_typer(api_keys_cmd.app, name="api-key")
console = Console(width=None if sys.stdout.isatty() else 150)
err = Console(stderr=True)


Port = Annotated[int, typer.Option(help="Kafka client port on 127.0.0.1")]
ControllerPort = Annotated[int, typer.Option(help="KRaft controller port on 127.0.0.1")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


def _node(state_dir: Path, cache_dir: Path, port: int, controller_port: int) -> BrokerNode:
    return BrokerNode(
        state_dir=state_dir / "kafka",
        cache_dir=cache_dir,
        port=port,
        controller_port=controller_port,
    )


@kafka_app.command("fetch")
def kafka_fetch(cache_dir: CacheDir, quiet: bool = False) -> None:
    """Resolve the pinned Kafka jars from Maven Central into the cache (once)."""
    try:
        libs = ensure_jars(cache_dir)
    except BrokerError as exc:
        raise _fail(str(exc)) from None
    if not quiet:
        console.print(f"Kafka {pinned_version()} jars in {libs}")


@kafka_app.command("start")
def kafka_start(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Start the broker in the background and wait until it accepts clients."""
    try:
        with console.status(f"starting Kafka {pinned_version()} ..."):
            status = _node(state_dir, cache_dir, port, controller_port).start()
    except BrokerError as exc:
        raise _fail(str(exc)) from None
    console.print(status.describe())


@kafka_app.command("stop")
def kafka_stop(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Stop the broker started from this state directory."""
    stopped = _node(state_dir, cache_dir, port, controller_port).stop()
    console.print("Kafka stopped" if stopped else "Kafka was not running")


@kafka_app.command("status")
def kafka_status(
    state_dir: StateDir,
    cache_dir: CacheDir,
    port: Port = 9092,
    controller_port: ControllerPort = 9093,
) -> None:
    """Say whether the broker runs; exit status 0 if it does, 3 if not."""
    status = _node(state_dir, cache_dir, port, controller_port).status()
    console.print(status.describe())
    if not status.running:
        raise typer.Exit(code=3)


@keys_app.command("generate")
def keys_generate(
    out: Annotated[Path, typer.Option(help="keyring file to write (mode 0600)")],
    force: Annotated[bool, typer.Option(help="overwrite an existing keyring")] = False,
) -> None:
    """Write a keyring with fresh random keys for every agency in the directory."""
    from services.backbone.directory import load_directory
    from services.backbone.errors import ConfigurationError
    from services.backbone.keyring import generate_keyring

    try:
        generate_keyring(out, [a.id for a in load_directory(None)], overwrite=force)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    console.print(f"keyring written to {out} (keep it secret; never commit it)")
    console.print(
        f"each agency's delivery API token: {out.parent / 'agency-tokens'}/<agency>.token "
        "(the keyring holds only their hashes)"
    )


bench_app = typer.Typer(help="Benchmarks: measure and report, side by side", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
WriteSection = Annotated[
    Path | None,
    typer.Option(help="replace this section of a Markdown file (docs/benchmarks.md)"),
]


def _show_bench(text: str, write: Path | None, heading: str) -> None:
    """Print a benchmark's report; with --write, replace its section of the Markdown file."""
    from services.cli.benchmarks_doc import replace_section

    console.print(text, markup=False, highlight=False)
    if write is not None:
        replace_section(write, heading, text)
        console.print(f"written to {write}")


@bench_app.command("policy")
def bench_policy(
    iterations: Annotated[int, typer.Option(min=100, help="decisions timed per case")] = 5000,
    write: WriteSection = None,
) -> None:
    """Time one policy decision (5 recipients, mixed rules) against 10 and 1,000 protocols."""
    from services.cli.bench_policy import report, run

    text = report(run(iterations), iterations)
    _show_bench(text, write, "## Policy decision")


@bench_app.command("processor")
def bench_processor(
    events: Annotated[int, typer.Option(min=1000, help="attendances per batch size")] = 20000,
    write: WriteSection = None,
) -> None:
    """Time the processor on a broker of its own: events/s at batch_max 100 and 500."""
    from services.cli.bench_processor import report, run

    text = report(run(default_cache_dir(), events, say=lambda m: err.print(m)))
    _show_bench(text, write, "## Processor throughput")


@bench_app.command("audit")
def bench_audit(
    report_records: Annotated[
        int,
        typer.Option(min=1000, help="records in the table for the disclosure-report timing"),
    ] = 5_000_000,
    write: WriteSection = None,
) -> None:
    """The audit store on SQLite and PostgreSQL side by side: sealed ingest and verify at 10k
    and 100k records, and disclosure-report p50/p95 with --report-records in the table."""
    from services.cli.bench_audit import report, run

    results, reports = run(report_records=report_records, say=lambda m: err.print(m))
    _show_bench(report(results, reports), write, "## Audit store")


@bench_app.command("telemetry")
def bench_telemetry(
    events: Annotated[int, typer.Option(min=1000, help="attendances per run")] = 20000,
    write: WriteSection = None,
) -> None:
    """The processor with no trace exporter and with every span sent to a real Zipkin, side
    by side: events/s, and how many spans Zipkin received."""
    from services.cli.bench_telemetry import report, run

    runs = run(default_cache_dir(), events=events, say=lambda m: err.print(m))
    _show_bench(report(runs), write, "## What tracing costs the processor")


@bench_app.command("agencies")
def bench_agencies(
    requests: Annotated[int, typer.Option(min=200, help="requests per load")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="requests in flight")] = 16,
    write: WriteSection = None,
) -> None:
    """Each agency service alone on loopback: accepted requests and events/s, p50/p99
    latency, and whether the outbox relay keeps up with what is accepted."""
    from services.cli.bench_agencies import report, run

    results = run(
        default_cache_dir(), requests=requests, concurrency=concurrency, say=lambda m: err.print(m)
    )
    _show_bench(report(results, concurrency=concurrency), write, "## Agency services")


@keys_app.command("rotate")
def keys_rotate(
    keyring: Annotated[Path, typer.Option(help="the keyring file", exists=True)],
) -> None:
    """Make a new active token key; older ones stay to reverse tokens already given out."""
    from services.backbone.errors import ConfigurationError
    from services.backbone.keyring import rotate_token_key

    try:
        key_id = rotate_token_key(keyring)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    console.print(f"new active token key {key_id}; restart the processor to use it")


@keys_app.command("add-audit")
def keys_add_audit(
    keyring: Annotated[Path, typer.Option(help="the keyring file", exists=True)],
) -> None:
    """Add the audit trail's chain and signing keys to an older keyring, keeping every
    other key (regenerating would change every pseudonym)."""
    from services.backbone.errors import ConfigurationError
    from services.backbone.keyring import add_audit_keys

    try:
        added = add_audit_keys(keyring)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    if added:
        console.print(f"added {', '.join(added)}; restart the audit service to use them")
    else:
        console.print("the keyring has its audit keys already; nothing changed")


@keys_app.command("retire")
def keys_retire(
    keyring: Annotated[Path, typer.Option(help="the keyring file", exists=True)],
    key_id: Annotated[str, typer.Option(help="the inactive token key to remove")],
) -> None:
    """Remove an old token key: tokens made with it can never be reversed again."""
    from services.backbone.errors import ConfigurationError
    from services.backbone.keyring import retire_token_key

    try:
        retire_token_key(keyring, key_id)
    except ConfigurationError as exc:
        raise _fail(str(exc)) from None
    console.print(f"token key {key_id} retired")


@app.command("run")
def run(
    component: Annotated[
        str, typer.Argument(help="processor | audit | consent | delivery | socialcare | health")
    ],
) -> None:
    """Run one component in the foreground; settings come from INFOSHARE_* variables."""
    from services.cli.components import BY_NAME, run_component

    if component not in BY_NAME:
        raise _fail(f"unknown component {component!r}; one of: {', '.join(BY_NAME)}")
    run_component(component)


def _stack(
    state_dir: Path,
    cache_dir: Path,
    bootstrap: str | None,
    *,
    free_ports: bool,
    base_port: int = 8100,
    kafka_port: int = 9092,
    postgres_port: int | None = None,
    observe: bool = False,
) -> object:
    from services.cli.components import COMPONENTS
    from services.cli.stack import Stack, StackConfig, free_ports_config

    if free_ports:
        # Topics, groups and transactional ids of their own: a demo on a shared broker must
        # never fence, join or read the stack that already runs there.
        namespace = f"demo{uuid.uuid4().hex[:8]}."
        config = free_ports_config(
            state_dir,
            cache_dir,
            bootstrap=bootstrap,
            namespace=namespace,
            postgres=postgres_port is not None,  # on a free port, below the ephemeral range
            observe=observe,
        )
        return Stack(config)
    ports = {c.name: base_port + c.port % 100 for c in COMPONENTS if c.port is not None}
    # Their usual ports beside the usual stack; next to the services' ports otherwise.
    usual = base_port == 8100
    ports |= {"zipkin": 9411 if usual else base_port + 50}
    ports |= {"prometheus": 9090 if usual else base_port + 51}
    return Stack(
        StackConfig(
            state_dir=state_dir,
            cache_dir=cache_dir,
            bootstrap=bootstrap,
            kafka_port=kafka_port,
            controller_port=kafka_port + 1,
            ports=ports,
            postgres_port=postgres_port,
            observe=observe,
        )
    )


Bootstrap = Annotated[
    str | None, typer.Option(help="use this running Kafka instead of starting one (host:port)")
]
Observe = Annotated[
    bool,
    typer.Option(
        help="run Zipkin (traces) and Prometheus (metrics, alert rules) beside the stack; "
        "either that cannot be had is left out"
    ),
]
Postgres = Annotated[
    bool,
    typer.Option(
        help="keep the audit trail in the project's PostgreSQL (installed and started if "
        "need be) instead of SQLite"
    ),
]


@app.command("up")
def up(
    state_dir: StateDir,
    cache_dir: CacheDir,
    bootstrap: Bootstrap = None,
    base_port: Annotated[
        int,
        typer.Option(
            help="HTTP ports: socialcare base+1, health base+2, delivery base+10, audit base+20"
        ),
    ] = 8100,
    kafka_port: Port = 9092,
    postgres: Postgres = False,
    postgres_port: Annotated[int, typer.Option(help="PostgreSQL port, with --postgres")] = 5433,
    observe: Observe = True,
) -> None:
    """Run Kafka and every service in the foreground until Ctrl-C, printing where each listens."""
    from services.cli.stack import Stack

    stack = _stack(
        state_dir,
        cache_dir,
        bootstrap,
        free_ports=False,
        base_port=base_port,
        kafka_port=kafka_port,
        postgres_port=postgres_port if postgres else None,
        observe=observe,
    )
    assert isinstance(stack, Stack)
    try:
        with console.status("starting infoshare ..."):
            stack.start(say=console.print)
        for r in stack.running:
            page = "/metrics" if r.component.name == "processor" else "/docs"
            where = stack.url(r.component.name) + page
            console.print(f"  {r.component.name:<11} {where:<34} {r.component.description}")
        console.print(
            f"  kafka       {stack.bootstrap}\nlogs in {state_dir / 'logs'}; "
            "Ctrl-C stops everything"
        )
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # children started unblocked
        while signal.sigtimedwait(stop_signals, 1.0) is None:
            for name in stack.restart_exited():
                err.print(f"[yellow]{name} stopped; restarted it[/] (see its log)")
    except Exception as exc:
        raise _fail(str(exc)) from None
    finally:
        with console.status("stopping ..."):
            stack.stop()


@app.command("demo")
def demo(
    cache_dir: CacheDir,
    bootstrap: Bootstrap = None,
    keep_state: Annotated[bool, typer.Option(help="keep the demo's state directory")] = False,
    postgres: Postgres = False,
    observe: Observe = True,
) -> None:
    """Play the CP-IS scenario end to end on a real Kafka, show the result, stop everything."""
    from services.cli.demo import play
    from services.cli.demo_observe import observe as observed
    from services.cli.demo_render import render, render_operations, render_reviews
    from services.cli.stack import Stack

    state_dir = Path(tempfile.mkdtemp(prefix="infoshare-demo-"))
    stack = _stack(
        state_dir,
        cache_dir,
        bootstrap,
        free_ports=True,
        postgres_port=0 if postgres else None,
        observe=observe,
    )
    assert isinstance(stack, Stack)
    # Ctrl-C and SIGTERM stop the demo and everything it started, even when this process was
    # launched with SIGINT ignored (as a shell does for a command run in the background).
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with console.status("starting Kafka and the services ..."):
            stack.start(say=console.print)
        outcome = play(stack, say=console.print)
        render(outcome, console)
        render_reviews(outcome, console)
        if observe:
            console.print("9. Operations: the plan's trace and the counters, as operators see them")
            render_operations(observed(stack, outcome), console)
    except KeyboardInterrupt:
        raise _fail("interrupted") from None
    except Exception as exc:
        raise _fail(f"{exc} (logs in {state_dir / 'logs'})") from None
    finally:
        with console.status("stopping everything the demo started ..."):
            stack.stop()
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        if not keep_state:
            if stack.postgres is not None:
                stack.postgres.destroy()
            shutil.rmtree(state_dir, ignore_errors=True)
    console.print("[bold green]demo complete[/]: everything it started has stopped")


if __name__ == "__main__":
    app()
