"""``infoshare protocols``: check a protocol set before anyone relies on it."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

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
