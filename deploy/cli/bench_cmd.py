"""``infoshare bench``: benchmarks that measure and report, side by side in one run; with
``--write``, each replaces its own section of docs/benchmarks.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from deploy.cli.terminal import err, out
from deploy.devstack.paths import default_cache_dir

app = typer.Typer(help="Benchmarks: measure and report, side by side", no_args_is_help=True)
WriteSection = Annotated[
    Path | None,
    typer.Option(help="replace this section of a Markdown file (docs/benchmarks.md)"),
]


def _say(message: str) -> None:
    err.print(message)


def _show(text: str, write: Path | None, heading: str) -> None:
    """Print a benchmark's report; with --write, replace its section of the Markdown file."""
    from deploy.bench.doc import replace_section

    out.print(text, markup=False, highlight=False)
    if write is not None:
        replace_section(write, heading, text)
        out.print(f"written to {write}")


@app.command("policy")
def bench_policy(
    iterations: Annotated[int, typer.Option(min=100, help="decisions timed per case")] = 5000,
    yardstick: Annotated[
        Path | None,
        typer.Option(help="the plain-Python yardstick [default: ../shared/yardsticks/decide.py]"),
    ] = None,
    write: WriteSection = None,
) -> None:
    """Time one policy decision (5 recipients, mixed rules) against 10 and 1,000 protocols,
    and beside the plain-Python yardstick."""
    from deploy.bench.policy import report, run

    _show(report(run(iterations, yardstick), iterations), write, "## Policy decision")


@app.command("simulate")
def bench_simulate(
    events: Annotated[int, typer.Option(min=1000, help="stored events to simulate over")] = (
        1_000_000
    ),
    write: WriteSection = None,
) -> None:
    """Time `infoshare protocols simulate` over a file of stored events (made once, cached):
    events/s with one worker and one per CPU, alone and beside the live set."""
    from deploy.bench.simulate import report, run

    _show(
        report(run(default_cache_dir(), events, say=_say), events), write, "## Protocol simulation"
    )


@app.command("processor")
def bench_processor(
    events: Annotated[int, typer.Option(min=1000, help="attendances per batch size")] = 20000,
    write: WriteSection = None,
) -> None:
    """Time the processor on a broker of its own: events/s at batch_max 100 and 500."""
    from deploy.bench.processor import report, run

    text = report(run(default_cache_dir(), events, say=_say))
    _show(text, write, "## Processor throughput")


@app.command("kafka")
def bench_kafka(
    events: Annotated[int, typer.Option(min=1000, help="attendances per variant")] = 20000,
    rounds: Annotated[int, typer.Option(min=1, max=5, help="alternating rounds")] = 2,
    write: WriteSection = None,
) -> None:
    """The processor on PLAINTEXT, on secured Kafka (TLS, SCRAM, ACLs) and on a secured
    three-broker cluster, side by side: events/s and ratios to PLAINTEXT."""
    from deploy.bench.kafka_security import report, run

    results = run(default_cache_dir(), events=events, rounds=rounds, say=_say)
    _show(report(results, rounds), write, "## What security and replication cost")


@app.command("fastpath")
def bench_fastpath(
    events: Annotated[
        int, typer.Option(min=1000, help="attendances per variant and round")
    ] = 10000,
    rounds: Annotated[int, typer.Option(min=1, max=20, help="rounds of every variant")] = 5,
    payload: Annotated[
        int, typer.Option(min=500, max=65536, help="bytes of data per attendance, about")
    ] = 1024,
    write: WriteSection = None,
) -> None:
    """The processor (D) beside bare Kafka on one broker, every run in a fresh process:
    saturation throughput, CPU and peak memory of an at-least-once passthrough (A), a
    transactional one batched as the processor is (B), B writing as many records per input
    as the processor (C), the processor (D), and D with the audit service storing on SQLite
    and on PostgreSQL (E); latency under open-loop load at 50% and 80% of B; how D scales
    with recipients, payload and protocols. With --write, also the PNG plot beside it."""
    from deploy.bench.fastpath.harness import run
    from deploy.bench.fastpath.report import HEADING, PLOT, report

    results = run(default_cache_dir(), events=events, rounds=rounds, payload=payload, say=_say)
    plotting = write is not None and importlib.util.find_spec("matplotlib") is not None
    _show(report(results, plot=PLOT if plotting else None), write, HEADING)  # kept first
    if write is None:
        return
    if not plotting:
        err.print("no plot: matplotlib is not installed (make bench installs it)")
        return
    from deploy.bench.fastpath import plot

    out.print(f"plot written to {plot.write(results, write.parent / PLOT)}")


@app.command("audit")
def bench_audit(
    report_records: Annotated[
        int,
        typer.Option(min=1000, help="records in the table for the disclosure-report timing"),
    ] = 5_000_000,
    sizes: Annotated[
        str, typer.Option(help="trail sizes for ingest, verify and proof, comma-separated")
    ] = "10000,100000",
    compare_signing: Annotated[
        bool,
        typer.Option(
            help="only compare ingest with a checkpoint every 10,000 records and every batch, "
            "side by side, twice, at 50,000 records"
        ),
    ] = False,
    write: WriteSection = None,
) -> None:
    """The audit store on SQLite and PostgreSQL side by side: sealed ingest, verify (with the
    keyring and with public keys only) and one record's proof at each of --sizes, and
    disclosure-report p50/p95 with --report-records in the table."""
    from deploy.bench.audit import report, run, signing_cost

    try:
        counts = [int(n) for n in sizes.split(",")]
    except ValueError:
        raise typer.BadParameter("--sizes is numbers separated by commas") from None
    if compare_signing:
        for backend, every, rate in signing_cost(say=_say):
            print(f"{backend}: a checkpoint every {every} record(s): {rate:.0f} records/s")
        return
    results, reports = run(sizes=counts, report_records=report_records, say=_say)
    _show(report(results, reports), write, "## Audit store")


@app.command("telemetry")
def bench_telemetry(
    events: Annotated[int, typer.Option(min=1000, help="attendances per run")] = 20000,
    rounds: Annotated[int, typer.Option(min=1, max=10, help="rounds of every variant")] = 3,
    write: WriteSection = None,
) -> None:
    """The processor with no tracing, with the default sampling and with every span
    recorded, each exporting to a real Zipkin, interleaved over rounds: events/s, what the
    default costs, and how many spans Zipkin received."""
    from deploy.bench.telemetry import report, run

    runs = run(default_cache_dir(), events=events, say=_say, rounds=rounds)
    _show(report(runs), write, "## What tracing costs the processor")


@app.command("agencies")
def bench_agencies(
    requests: Annotated[int, typer.Option(min=200, help="requests per load")] = 2000,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="requests in flight")] = 16,
    write: WriteSection = None,
) -> None:
    """Each agency service alone on loopback: accepted requests and events/s, p50/p99
    latency, and whether the outbox relay keeps up with what is accepted."""
    from deploy.bench.agencies import report, run

    results = run(default_cache_dir(), requests=requests, concurrency=concurrency, say=_say)
    _show(report(results, concurrency=concurrency), write, "## Agency services")


@app.command("delivery")
def bench_delivery(
    deliveries: Annotated[
        int, typer.Option(min=1000, help="deliveries through each path, after a warm-up")
    ] = 20000,
    subscriptions: Annotated[
        int, typer.Option(min=1, max=64, help="webhook subscriptions, each a share of the load")
    ] = 4,
    page: Annotated[int, typer.Option(min=1, max=1000, help="inbox page size (limit)")] = 1000,
    py_spy: Annotated[
        Path | None,
        typer.Option(help="sample the delivery service with py-spy into this file (.svg, .json)"),
    ] = None,
    answer_ms: Annotated[
        float,
        typer.Option(
            min=0,
            max=1000,
            help="the receiver answers each webhook after this long, as a remote one would",
        ),
    ] = 0.0,
    write: WriteSection = None,
) -> None:
    """The delivery service on a broker of its own: webhook deliveries/s to a local receiver
    that checks every signature, and pull-inbox items/s read and acknowledged by a
    recipient, each beside a bare httpx loop against the same receiver in the same run."""
    from deploy.bench.delivery import run
    from deploy.bench.delivery_report import HEADING, report

    results = run(
        default_cache_dir(),
        deliveries=deliveries,
        subscriptions=subscriptions,
        page=page,
        say=_say,
        py_spy=py_spy,
        answer_ms=answer_ms,
    )
    _show(report(results), write, HEADING)
