"""``infoshare persons``: the person index's review queue. A record whose identifiers name
two children links nothing and waits here; so does a link made on demographics alone. A
person looks, and closes the item with what they found; the index never merges people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from deploy.cli.terminal import err, out
from services.backbone.errors import ConfigurationError

if TYPE_CHECKING:
    from services.personindex.store import PersonIndex

app = typer.Typer(
    help="The person index: matches flagged for a person to check", no_args_is_help=True
)


def _index() -> PersonIndex:
    from services.backbone.settings import BackboneSettings
    from services.personindex.store import PersonIndex

    settings = BackboneSettings()
    try:
        index = PersonIndex(settings.person_index_url(), settings.keyring(None).require_routing())
    except ConfigurationError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    index.create_schema()
    return index


@app.command("reviews")
def reviews(
    show_all: Annotated[bool, typer.Option("--all", help="closed ones too")] = False,
) -> None:
    """The flagged matches: id, kind, why, which identifier kinds, from which agency, and
    the people involved as index keys (never an identifier). Settings: INFOSHARE_*."""
    rows = _index().reviews(status=None if show_all else "pending")
    if not rows:
        out.print("no matches waiting for review" if not show_all else "no reviews")
    for r in rows:
        people = ", ".join(p[:12] for p in r.persons)
        line = (
            f"{r.id}  {r.status}  {r.kind}  {r.created_at:%Y-%m-%d %H:%M}  from {r.source_agency}"
            f"  keys: {'+'.join(r.key_kinds) or '-'}  people: {people}"
            f"  event: {r.event_id or '-'}\n    {r.reason}"
        )
        if r.status != "pending":
            line += f"\n    closed by {r.resolved_by}: {r.note}"
        out.print(escape(line))


@app.command("close")
def close(
    review_id: Annotated[int, typer.Argument(help="the review's id (see reviews)")],
    by: Annotated[str, typer.Option(help="who looked")],
    note: Annotated[str, typer.Option(help="what they found (no identifiers)")],
) -> None:
    """Close a flagged match with what the person who checked it found."""
    if not by.strip() or not note.strip():
        err.print("[bold red]error:[/] --by and --note must say something")
        raise typer.Exit(2)
    if len(by) > 128 or len(note) > 2000:
        err.print("[bold red]error:[/] --by is at most 128 characters, --note 2000")
        raise typer.Exit(2)
    try:
        _index().close_review(review_id, by=by.strip(), note=note.strip())
    except KeyError:
        err.print(f"[bold red]error:[/] no review {review_id}")
        raise typer.Exit(1) from None
    except ValueError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    out.print(f"review {review_id} closed")
