"""Show what the demo did: per agency what it received, the audit trail, the IG queue."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from consent.processor.access_back import ACCESS_BACK
from services.cli.demo import Outcome


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
