"""``infoshare protocols simulate``: what a protocol set would share or withhold over a file
of events or a range of a topic, beside the live set. Writes nothing to Kafka."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from deploy.cli.protocols_cmd import Agencies, Directory, Schemas, err, out

if TYPE_CHECKING:
    from consent.policy.simulate import Row
    from consent.policy.simulate_many import Tally


def simulate_cmd(
    directory: Directory,
    events: Annotated[
        Path | None,
        typer.Option(
            help="JSON lines: {type, source, data, date?, state?, consents?} per line; read as"
            " a stream, so any size"
        ),
    ] = None,
    topic: Annotated[str | None, typer.Option(help="or a raw source topic to read from")] = None,
    partition: Annotated[int, typer.Option(help="the topic partition")] = 0,
    start: Annotated[int, typer.Option("--from", help="first offset")] = 0,
    end: Annotated[int, typer.Option("--to", help="last offset (inclusive)")] = 99,
    bootstrap: Annotated[
        str | None,
        typer.Option(
            help="Kafka bootstrap (default: INFOSHARE_KAFKA_BOOTSTRAP, else 127.0.0.1:9092)"
        ),
    ] = None,
    namespace: Annotated[str, typer.Option(help="topic namespace (for plan state)")] = "",
    live: Annotated[
        Path | None, typer.Option(help="the live protocol set to compare with (default: none)")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="processes deciding an events file [default: one per CPU]"),
    ] = None,
    show: Annotated[
        int, typer.Option(min=0, help="rows shown one by one; above that, a summary")
    ] = 200,
    changes: Annotated[
        Path | None,
        typer.Option(help="write every decision that differs from the live set here (JSON lines)"),
    ] = None,
    agencies: Agencies = None,
    schemas: Schemas = None,
) -> None:
    """What DIRECTORY's protocols would share or withhold, per event and recipient, and
    what differs from the live set. Writes nothing to Kafka."""
    import asyncio

    from consent.policy.load import ProtocolError, load_protocols
    from consent.policy.simulate import SimulationInputError, Simulator
    from consent.policy.simulate_inputs import events_from_topic
    from consent.policy.simulate_many import Tally, simulate_file
    from deploy.cli.terminal import kafka_access
    from services.backbone.directory import load_directory
    from services.backbone.schemas import SchemaRegistry
    from services.backbone.settings import BackboneSettings
    from services.backbone.topics import Topics

    if (events is None) == (topic is None):
        err.print("[bold red]error:[/] give either --events FILE or --topic NAME")
        raise typer.Exit(code=2)
    if live is None and changes is not None:
        err.print("[bold red]error:[/] --changes needs --live (changes from what?)")
        raise typer.Exit(code=2)
    registry, agency_directory = SchemaRegistry.load(schemas), load_directory(agencies)
    started = time.monotonic()
    try:
        candidate = load_protocols(directory, directory=agency_directory, schemas=registry)
        current = (
            load_protocols(live, directory=agency_directory, schemas=registry) if live else None
        )
        with _ChangesFile(changes) as write_changes:
            if events is not None:
                tally = simulate_file(
                    events,
                    candidate,
                    current,
                    workers=workers,
                    keep=show,
                    progress=_Progress(),
                    changes=write_changes,
                )
            else:
                inputs = asyncio.run(
                    events_from_topic(
                        access=kafka_access(BackboneSettings(), bootstrap),
                        topic=str(topic),
                        partition=partition,
                        start=start,
                        end=end,
                        topics=Topics(namespace=namespace),
                    )
                )
                tally, simulator = Tally(), Simulator(candidate, current)
                for index, event in enumerate(inputs, 1):
                    tally.add(simulator.rows(index, event), show)
                write_changes(tally.changes)
    except (ProtocolError, SimulationInputError, OSError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None
    _report(tally, show, compared=current is not None, seconds=time.monotonic() - started)
    if changes is not None:
        out.print(f"{tally.changed:,} changed decision(s) written to {changes}")


class _Progress:
    """A line on stderr every two seconds of a long run."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()

    def __call__(self, decided: int, read: int, size: int) -> None:
        now = time.monotonic()
        if now - self.last < 2:
            return
        self.last = now
        rate = decided / max(now - self.started, 1e-9)
        share = read / size * 100 if size else 100.0
        err.print(f"simulated {decided:,} events ({share:.0f}% of the file), {rate:,.0f}/s")


class _ChangesFile:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.fh: BinaryIO | None = None

    def __enter__(self) -> _ChangesFile:
        if self.path is not None:
            self.fh = self.path.open("wb")
        return self

    def __call__(self, rows: list[Row]) -> None:
        if self.fh is None:
            return
        for r in rows:
            self.fh.write(
                orjson.dumps(
                    {
                        "line": r.index,
                        "event_type": r.event_type,
                        "recipient": r.recipient,
                        "protocol": r.protocol,
                        "candidate": r.candidate,
                        "live": r.live,
                        "fields": list(r.fields),
                    }
                )
                + b"\n"
            )

    def __exit__(self, *_: object) -> None:
        if self.fh is not None:
            self.fh.close()


def _report(tally: Tally, show: int, *, compared: bool, seconds: float) -> None:
    if tally.rows <= show:
        render(tally.shown, out, compared=compared)
    else:
        _summary(tally, out, compared=compared)
    rate = tally.events / seconds if seconds > 0 else 0.0
    out.print(
        f"{tally.events:,} event(s), {tally.rows:,} decision(s) in {seconds:,.1f} s"
        f" ({rate:,.0f} events/s)"
    )
    if compared:
        out.print(
            f"{tally.changed:,} decision(s) differ from the live set"
            if tally.changed
            else "no decision differs from the live set"
        )


def _summary(tally: Tally, console: Console, *, compared: bool) -> None:
    table = Table(title="Simulation summary (nothing was written)", expand=True)
    for column in ("recipient", "protocol", "would", *(["live set"] if compared else [])):
        table.add_column(column, overflow="fold")
    table.add_column("decisions", justify="right")
    for (recipient, protocol, candidate, live), n in sorted(tally.counts.items()):
        mark = "[bold yellow]* [/]" if compared and live != candidate else ""
        table.add_row(
            recipient, protocol, mark + candidate, *([live] if compared else []), f"{n:,}"
        )
    console.print(table)


def render(rows: list[Row], console: Console, *, compared: bool) -> None:
    """One row per event and recipient; a changed decision is marked."""
    table = Table(
        title="Simulation (nothing was written; pseudonyms are throwaway)",
        show_lines=True,
        expand=True,
    )
    for column in (
        "#",
        "event type",
        "recipient",
        "protocol",
        "would",
        *(["live set"] if compared else []),
        "fields it would get",
    ):
        table.add_column(column, overflow="fold")
    for r in rows:
        mark = "[bold yellow]* [/]" if r.changed else ""
        table.add_row(
            str(r.index),
            r.event_type,
            r.recipient,
            r.protocol,
            mark + r.candidate,
            *([r.live or "-"] if compared else []),
            "\n".join(r.fields),
        )
    console.print(table)
