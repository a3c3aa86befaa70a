"""Show what the demo did: per agency what it received, the audit trail, the IG queue."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from consent.processor.access_back import ACCESS_BACK
from deploy.devstack.demo.console_check import ConsoleSeen
from deploy.devstack.demo.observe import Operations
from deploy.devstack.demo.play import Outcome


def _leaves(data: Any, prefix: str = "") -> list[str]:
    if isinstance(data, dict):
        return [line for k, v in data.items() for line in _leaves(v, f"{prefix}{k}.")]
    return [f"{prefix[:-1]} = {data}"]


def _shown(item: dict[str, Any]) -> str:
    """What a delivery holds; an access-back notice in one line."""
    data = item["data"]
    if item["type"] == ACCESS_BACK:
        to = ", ".join(f"{s['recipient']} ({s['protocol']})" for s in data["shared_with"])
        return f"told: its {data['event_type']} was shared with {to}"
    return "\n".join(_leaves(data))


def render(outcome: Outcome, console: Console) -> None:
    for agency, items in outcome.received.items():
        table = Table(title=f"Received by {agency}", show_lines=True, expand=True)
        table.add_column("#", justify="right")
        table.add_column("event type")
        table.add_column("protocol, identity level")
        table.add_column("data exactly as delivered", overflow="fold")
        for item in items:
            table.add_row(
                str(item["number"]),
                item["type"],
                f"{item['protocol'] or '-'}\n{item['identity_level']}",
                _shown(item),
            )
        console.print(table)
    table = Table(
        title="Audit trail: every decision with its reason (never a payload)",
        show_lines=True,
        expand=True,
    )
    for column in (
        "event type",
        "from -> to",
        "decision",
        "reason",
        "fields disclosed",
        "trace id",
    ):
        table.add_column(column, overflow="fold")
    for row in outcome.audit:
        fields = row["fields_disclosed"] + [f"{f} (pseudonym)" for f in row["fields_pseudonymised"]]
        table.add_row(
            row["event_type"] or "",
            f"{row['source_agency'] or ''}\n-> {row['recipient'] or '-'}",
            row["decision"],
            row["reason"],
            "\n".join(fields),
            (row["trace_id"] or "")[:16],
        )
    console.print(table)


def render_reviews(outcome: Outcome, console: Console) -> None:
    table = Table(
        title="IG review queue: shared under a safeguarding override, not yet reviewed",
        show_lines=True,
        expand=True,
    )
    for column in ("audit id", "to", "override by", "justification"):
        table.add_column(column, overflow="fold")
    for item in outcome.pending_reviews:
        d = item["decision"]
        table.add_row(
            d["audit_id"],
            d["recipient"] or "",
            d["override_role"] or "",
            d["override_justification"] or "",
        )
    console.print(table)


def render_operations(seen: Operations, console: Console) -> None:
    """The plan event's trace as Zipkin holds it, and the counters Prometheus scraped."""
    if seen.spans:
        table = Table(
            title=f"One event's whole path: the plan's trace {seen.trace_id}, read back from "
            "Zipkin",
            expand=True,
        )
        table.add_column("span (indented under its parent)")
        table.add_column("service")
        table.add_column("ms", justify="right")
        for row in seen.spans:
            table.add_row("  " * row.depth + row.name, row.service, f"{row.duration_ms:.1f}")
        console.print(table)
        console.print(f"open it while a stack runs (infoshare up): {seen.trace_url}")
        if seen.jaeger_url:
            console.print(
                f"Jaeger got it over OTLP, with {seen.linked_deliveries} recipient delivery "
                f"trace(s) linked to it: {seen.jaeger_url}"
            )
    if seen.counters:
        table = Table(title="Counters the demo moved, read back from Prometheus", expand=True)
        table.add_column("what")
        table.add_column("by")
        table.add_column("value", justify="right")
        for title, samples in seen.counters.items():
            for label, value in samples:
                shown = f"{value:.3f}" if value != int(value) else str(int(value))
                table.add_row(title, label, shown)
        console.print(table)
    for note in seen.notes:
        console.print(f"[yellow]observability[/]: {note}")


def render_console(seen: ConsoleSeen, console: Console, *, staying: bool) -> None:
    """Where the IG console is, what it showed, and the login to try it with."""
    console.print(
        f"The IG console signed {seen.user} in and listed {seen.decisions} decisions about the "
        "child on a protection plan."
    )
    console.print(f"  console  {seen.url}")
    console.print(f"  login    {seen.user} / {seen.password}")
    if not staying:
        console.print(
            "  (this stack stops now: `infoshare demo --stay` keeps it running to try them)"
        )
