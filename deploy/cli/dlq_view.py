"""``infoshare dlq`` for people: the list as a table, one dead letter as facts, headers and
the payload's shape. What may be said is decided in services/ops/deadletter_view.py."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from services.backbone.deadletter import Origin

# How ``dlq show`` names the contract's fields (services/backbone/deadletter.py).
FIELD_LABELS = {
    "dlq_stage": "stage",
    "dlq_value_dropped": "value dropped",
    "dlq_subscription": "subscription",
    "dlq_event_number": "event number",
}


def _origin(origin: dict[str, Any] | None) -> str:
    return "(not named)" if origin is None else str(Origin(**origin))


def list_table(rows: Sequence[dict[str, Any]], *, title: str) -> Table:
    """One row per dead letter (the event's type above its id)."""
    table = Table(title=title, show_lines=True)
    for column in ("stage", "offset", "recorded", "origin", "event (ce_type, ce_id)", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        offset = str(r["offset"]) if not r["partition"] else f"[{r['partition']}]@{r['offset']}"
        cells = (
            r["stage"],
            offset,
            r["recorded"],
            _origin(r["origin"]),
            f"{r['ce_type'] or '-'}\n{r['ce_id'] or '-'}",
            r["reason"] or "-",
        )
        table.add_row(*(Text(c) for c in cells))
    return table


def render_detail(view: dict[str, Any], console: Console) -> None:
    """Facts (where, when, origin, reason, every other field of the dead-letter contract,
    the key), the headers, the payload's shape."""
    key = view["key"]
    facts = Table.grid(padding=(0, 2))
    rows = [
        ("dead letter", f"{view['topic']}[{view['partition']}]@{view['offset']}"),
        ("recorded", view["recorded"]),
        ("origin", _origin(view["origin"])),
        ("reason", view["reason"] or "-"),
        *((FIELD_LABELS[k], v) for k, v in view["dead_letter"].items() if k in FIELD_LABELS),
        ("key", f"present ({key['bytes']} bytes, not shown)" if key["present"] else "none"),
    ]
    for name, value in rows:
        facts.add_row(Text(name, style="bold"), Text(value))
    console.print(facts)
    headers = Table(title="Headers", expand=True)
    headers.add_column("name")
    headers.add_column("value", overflow="fold")
    for h in view["headers"]:
        shown = h["value"] if h["value"] is not None else f"(not shown: {h['bytes']} bytes)"
        headers.add_row(Text(h["name"]), Text(shown))
    console.print(headers)
    payload = view["payload"]
    if not payload["json"]:
        console.print(Text(payload["note"], style="yellow"))
        return
    shape = Table(title=f"Payload shape ({payload['bytes']} bytes; values never shown)")
    shape.add_column("field path", overflow="fold")
    shape.add_column("type", overflow="fold")
    for f in payload["fields"]:
        shape.add_row(Text(f["path"]), Text(f["type"]))
    console.print(shape)
    if payload["note"]:
        console.print(Text(payload["note"], style="yellow"))
