"""``infoshare protocols``: check a protocol set before anyone relies on it."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from consent.policy.simulate import Row

app = typer.Typer(help="Check, explain and try out sharing protocols", no_args_is_help=True)
out = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

Directory = Annotated[
    Path, typer.Argument(help="directory of protocol YAML files", exists=True, file_okay=False)
]
Agencies = Annotated[Path | None, typer.Option(help="agency directory YAML (default: deploy/)")]
Schemas = Annotated[Path | None, typer.Option(help="event schemas directory (default: schemas/)")]


@app.command("check")
def check(
    directory: Directory,
    agencies: Agencies = None,
    schemas: Schemas = None,
    on: Annotated[
        str | None,
        typer.Option("--on", help="check validity as of this date (YYYY-MM-DD; default today)"),
    ] = None,
) -> None:
    """Validate every protocol: exit 0 if the set would load, 1 if not. Each problem names
    the file, the line and the rule broken."""
    from consent.policy.load import check_directory
    from services.backbone.directory import load_directory
    from services.backbone.errors import ConfigurationError
    from services.backbone.schemas import SchemaRegistry

    try:
        today = date.fromisoformat(on) if on else None
        checked, problems = check_directory(
            directory,
            directory=load_directory(agencies),
            schemas=SchemaRegistry.load(schemas),
            today=today,
        )
    except (ConfigurationError, ValueError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(code=2) from None
    for problem in problems:
        colour = "yellow" if problem.warning else "red"
        out.print(f"[{colour}]{escape(str(problem))}[/]", soft_wrap=True)
    errors = sum(not p.warning for p in problems)
    warnings = len(problems) - errors
    if checked is None:
        out.print(f"[bold red]{errors} error(s), {warnings} warning(s): this set would not load[/]")
        raise typer.Exit(code=1)
    out.print(
        f"[green]{len(checked.protocols)} protocol(s) OK[/]"
        + (f", {warnings} warning(s)" if warnings else "")
    )


@app.command("explain")
def explain_cmd(
    directory: Directory,
    agencies: Agencies = None,
    schemas: Schemas = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write the Markdown here instead of printing it")
    ] = None,
) -> None:
    """The sharing map in plain language (Markdown with a Mermaid diagram)."""
    from consent.policy.explain import explain
    from consent.policy.load import ProtocolError, load_protocols
    from services.backbone.directory import load_directory
    from services.backbone.schemas import SchemaRegistry

    registry = SchemaRegistry.load(schemas)
    agency_directory = load_directory(agencies)
    try:
        protocols = load_protocols(directory, directory=agency_directory, schemas=registry)
    except ProtocolError as exc:
        err.print(escape(str(exc)))
        raise typer.Exit(code=1) from None
    text = explain(protocols, agency_directory, registry)
    if out_file is None:
        print(text)
    else:
        out_file.write_text(text + "\n", encoding="utf-8")
        out.print(f"written to {out_file}")


@app.command("simulate")
def simulate_cmd(
    directory: Directory,
    events: Annotated[
        Path | None,
        typer.Option(help="JSON lines: {type, source, data, date?, state?, consents?} per line"),
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
    agencies: Agencies = None,
    schemas: Schemas = None,
) -> None:
    """What DIRECTORY's protocols would share or withhold, per event and recipient, and
    what differs from the live set. Writes nothing to Kafka."""
    import asyncio

    from consent.policy.load import ProtocolError, load_protocols
    from consent.policy.simulate import SimulationInputError, simulate
    from consent.policy.simulate_inputs import events_from_file, events_from_topic
    from deploy.cli.terminal import kafka_access
    from services.backbone.directory import load_directory
    from services.backbone.schemas import SchemaRegistry
    from services.backbone.settings import BackboneSettings
    from services.backbone.topics import Topics

    if (events is None) == (topic is None):
        err.print("[bold red]error:[/] give either --events FILE or --topic NAME")
        raise typer.Exit(code=2)
    registry, agency_directory = SchemaRegistry.load(schemas), load_directory(agencies)
    try:
        candidate = load_protocols(directory, directory=agency_directory, schemas=registry)
        current = (
            load_protocols(live, directory=agency_directory, schemas=registry) if live else None
        )
        inputs = (
            events_from_file(events)
            if events is not None
            else asyncio.run(
                events_from_topic(
                    access=kafka_access(BackboneSettings(), bootstrap),
                    topic=str(topic),
                    partition=partition,
                    start=start,
                    end=end,
                    topics=Topics(namespace=namespace),
                )
            )
        )
    except (ProtocolError, SimulationInputError, OSError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(code=1) from None
    render(simulate(inputs, candidate, current), out, compared=current is not None)


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
    if compared:
        changed = sum(r.changed for r in rows)
        console.print(
            f"{changed} decision(s) differ from the live set"
            if changed
            else "no decision differs from the live set"
        )
