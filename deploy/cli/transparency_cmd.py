"""``infoshare transparency report``: what was shared, with whom and why over a period, in
counts fit to publish (small counts suppressed), as Markdown, HTML or CSV. Parses, reads
the counts (services/audit/transparency_query.py), builds and renders them (the pure
transparency.py and transparency_render.py) and writes.

Not recorded in the trail, like ``infoshare audit verify``: the report holds no child's
record, only counts by organisation, protocol and outcome, and is meant to be public; the
trail's access records say who looked at which child."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deploy.cli.audit_proof_cmd import BAD_INPUT, DatabaseUrl
from deploy.cli.terminal import err, fail

if TYPE_CHECKING:
    from sqlalchemy import URL

app = typer.Typer(
    help="Reports fit to publish: what the audit trail says was shared, with whom and why, "
    "in counts",
    no_args_is_help=True,
)


class ReportFormat(StrEnum):
    MARKDOWN = "markdown"
    HTML = "html"
    CSV = "csv"


@app.command(
    "report", short_help="Decisions by protocol, recipient and outcome, in counts fit to publish"
)
def report_cmd(
    first: Annotated[
        str, typer.Option("--from", help="the first day of the period, YYYY-MM-DD (UTC)")
    ],
    last: Annotated[
        str, typer.Option("--to", help="the last day of the period, YYYY-MM-DD (UTC), included")
    ],
    report_format: Annotated[
        ReportFormat,
        typer.Option("--format", help="markdown, html (a page that stands alone) or csv"),
    ] = ReportFormat.MARKDOWN,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="write here (default: stdout)")
    ] = None,
    min_count: Annotated[
        int,
        typer.Option(
            min=2,
            help="counts from 1 to this less one are shown as <N, and totals that include one as *",
        ),
    ] = 5,
    database_url: DatabaseUrl = None,
) -> None:
    """Count the decisions recorded over a period by protocol, recipient and outcome, the
    safeguarding overrides by what their review found, re-identifications and recalls: no
    child, person or record named, small counts suppressed. Publish reports for fixed
    periods that do not overlap (a month, a quarter): two overlapping ones could be
    subtracted. Exit 0 written, 2 bad input or an unreadable store."""
    from pydantic import ValidationError

    from services.audit import transparency, transparency_render
    from services.audit.app import AuditSettings

    try:
        period = transparency.parse_period(first, last)
        url = database_url or AuditSettings().audit_database_url.get_secret_value()
    except ValidationError as exc:
        where, why = exc.errors()[0]["loc"][0], exc.errors()[0]["msg"]
        raise fail(f"settings: {where}: {why}", BAD_INPUT) from None
    except ValueError as exc:
        raise fail(str(exc), BAD_INPUT) from None
    err.print(f"counting the records of {period.first} to {period.last} (UTC) in the audit store")
    started = time.monotonic()
    rows = _counted(url, period.since, period.until)
    report = transparency.build(
        rows,
        period=period,
        made_at=datetime.now(UTC).replace(microsecond=0),
        min_count=min_count,
    )
    render = {
        ReportFormat.MARKDOWN: transparency_render.as_markdown,
        ReportFormat.HTML: transparency_render.as_html,
        ReportFormat.CSV: transparency_render.as_csv,
    }[report_format]
    text = render(report)
    took = f"{time.monotonic() - started:.1f} s"
    if out_file is None:
        typer.echo(text, nl=False)
        err.print(f"counted in {took}")
        return
    try:
        out_file.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        raise fail(f"cannot write {out_file}: {exc.strerror or exc}", BAD_INPUT) from None
    err.print(f"written to {escape(str(out_file))} ({report_format}, counted in {took})")


def _counted(url: str, since: datetime, until: datetime) -> list[dict[str, object]]:
    """The period's counted rows, or a clear failure (exit 2) naming the store without its
    password."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from services.audit.store import AuditStore
    from services.audit.transparency_query import counted

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise fail("the audit database URL is not a database URL", BAD_INPUT) from None
    shown = parsed.render_as_string(hide_password=True)
    missing = _missing_sqlite_file(parsed)
    if missing is not None:  # SQLite would make an empty one: a report of nothing
        raise fail(f"no audit store at {missing} ({shown})", BAD_INPUT)
    try:
        engine = AuditStore.engine_for(url)
    except (SQLAlchemyError, ImportError) as exc:
        raise fail(
            f"cannot open the audit store at {shown}: {_why(exc, parsed)}", BAD_INPUT
        ) from None
    try:
        return [dict(row) for row in counted(engine, since=since, until=until)]
    except SQLAlchemyError as exc:
        raise fail(
            f"cannot read the audit store at {shown}: {_why(exc, parsed)}", BAD_INPUT
        ) from None
    finally:
        engine.dispose()


def _missing_sqlite_file(url: URL) -> Path | None:
    database = url.database
    if not url.drivername.startswith("sqlite") or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    path = Path(database)
    return None if path.exists() else path


def _why(exc: BaseException, url: URL) -> str:
    """The first line of what the driver said (never the statement), the password blotted
    out should a driver quote the URL."""
    cause = getattr(exc, "orig", None) or exc
    why = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if url.password:
        why = why.replace(str(url.password), "***")
    if "audit_entry" in why:
        why += " (not an audit store? `infoshare audit migrate` makes one)"
    return why
