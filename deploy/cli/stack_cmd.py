"""``infoshare up`` and ``infoshare demo``: the whole stack on this machine, in the
foreground until Ctrl-C, or playing the CP-IS scenario and stopping everything after."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from deploy.cli.terminal import CacheDir, StateDir, err, fail, out
from deploy.devstack.stopping import STOP_SIGNALS, Stopping, stop_signals

if TYPE_CHECKING:
    from deploy.devstack.stack import Stack

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
        help="keep every store (audit trail, outboxes, person index, delivery) in the "
        "project's PostgreSQL (installed and started if need be), each component as a "
        "database role of its own, instead of SQLite"
    ),
]


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
    kafka_port: Annotated[int, typer.Option(help="Kafka client port on 127.0.0.1")] = 9092,
    postgres: Postgres = False,
    postgres_port: Annotated[int, typer.Option(help="PostgreSQL port, with --postgres")] = 5433,
    observe: Observe = True,
    brokers: Annotated[
        int,
        typer.Option(
            min=1,
            max=9,
            help="our Kafka as a cluster of this many brokers (3: replication 3, "
            "min.insync.replicas 2); ports from KAFKA_PORT, three per broker",
        ),
    ] = 1,
    plaintext_kafka: Annotated[
        bool,
        typer.Option(
            help="run our Kafka WITHOUT TLS, authentication or ACLs (debugging on loopback only)"
        ),
    ] = False,
) -> None:
    """Run Kafka and every service in the foreground until Ctrl-C, printing where each listens.
    Kafka runs secured: TLS, a SCRAM principal per component, ACLs (docs/security.md)."""
    from deploy.devstack.stack import Stack, usual_config

    stack = Stack(
        usual_config(
            state_dir,
            cache_dir,
            bootstrap=bootstrap,
            base_port=base_port,
            kafka_port=kafka_port,
            postgres_port=postgres_port if postgres else None,
            observe=observe,
            brokers=brokers,
        )
    )
    stack.config.plaintext = plaintext_kafka
    with stop_signals() as stopping:
        _serve(stack, state_dir, stopping, plaintext_kafka=plaintext_kafka)


def _serve(stack: Stack, state_dir: Path, stopping: Stopping, *, plaintext_kafka: bool) -> None:
    """``up``'s work: start the stack, say where everything listens, restart what exits,
    and stop everything on the first stop signal."""
    try:
        with err.status("starting infoshare ..."):
            stack.start(say=out.print)
        for r in stack.running:
            page = "/metrics" if r.component.name == "processor" else "/docs"
            where = stack.url(r.component.name) + page
            out.print(f"  {r.component.name:<11} {where:<34} {r.component.description}")
        out.print(
            f"  kafka       {stack.bootstrap}"
            + (
                ""
                if plaintext_kafka
                else f" (CLI: set -a; . {stack.principals.directory}/admin.env)"
            )
            + f"\nlogs in {state_dir / 'logs'}; "
            "Ctrl-C stops everything"
        )
        console_url, user, password = stack.console_login()
        out.print(f"  IG console  {console_url}  (sign in as {user} / {password})")
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # children started unblocked
        while signal.sigtimedwait(STOP_SIGNALS, 1.0) is None:
            for name in stack.restart_exited():
                err.print(f"[yellow]{name} stopped; restarted it[/] (see its log)")
    except Exception as exc:
        raise fail(str(exc)) from None
    finally:
        stopping.begun = True
        with err.status("stopping ..."):
            stack.stop()


def demo(
    cache_dir: CacheDir,
    bootstrap: Bootstrap = None,
    keep_state: Annotated[bool, typer.Option(help="keep the demo's state directory")] = False,
    postgres: Postgres = False,
    observe: Observe = True,
    stay: Annotated[
        bool,
        typer.Option(
            help="keep the stack running after the scenario (the IG console open) until Ctrl-C"
        ),
    ] = False,
) -> None:
    """Play the CP-IS scenario end to end on a real Kafka, show the result, stop everything
    (with --stay: once you press Ctrl-C)."""
    from deploy.devstack.stack import Stack, demo_config

    state_dir = Path(tempfile.mkdtemp(prefix="infoshare-demo-"))
    stack = Stack(
        demo_config(state_dir, cache_dir, bootstrap=bootstrap, postgres=postgres, observe=observe)
    )
    with stop_signals() as stopping:
        _play(stack, state_dir, stopping, keep_state=keep_state, observe=observe, stay=stay)
    out.print("[bold green]demo complete[/]: everything it started has stopped")


def _play(
    stack: Stack,
    state_dir: Path,
    stopping: Stopping,
    *,
    keep_state: bool,
    observe: bool,
    stay: bool,
) -> None:
    """``demo``'s work: start the stack, play the scenario and show it, wait if asked to,
    and stop everything it started (on the first stop signal too)."""
    from deploy.devstack.demo.console_check import check_console
    from deploy.devstack.demo.observe import observe as observed
    from deploy.devstack.demo.play import play
    from deploy.devstack.demo.render import (
        render,
        render_console,
        render_operations,
        render_reviews,
    )

    try:
        with err.status("starting Kafka and the services ..."):
            stack.start(say=out.print)
        outcome = play(stack, say=out.print)
        render(outcome, out)
        render_reviews(outcome, out)
        if observe:
            out.print("11. Operations: the plan's trace and the counters, as operators see them")
            render_operations(observed(stack, outcome), out)
        out.print("12. The IG console: an IG officer signs in and opens the child's report")
        render_console(check_console(stack), out, staying=stay)
        if stay:
            out.print("the stack keeps running; Ctrl-C stops everything")
            signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            while signal.sigtimedwait(STOP_SIGNALS, 1.0) is None:
                pass
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    except KeyboardInterrupt:
        raise fail("interrupted") from None
    except Exception as exc:
        raise fail(f"{exc} (logs in {state_dir / 'logs'})") from None
    finally:
        stopping.begun = True
        with err.status("stopping everything the demo started ..."):
            stack.stop()
        if not keep_state:
            if stack.postgres is not None:
                stack.postgres.destroy()
            shutil.rmtree(state_dir, ignore_errors=True)
