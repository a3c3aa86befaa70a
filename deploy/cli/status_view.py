"""Draw a status report: one table of components, then lag, dead letters, webhook circuits
and the audit checkpoint. Pure: a Report in, rich renderables out. Every cell is a Text,
never markup, since reasons come from other processes' answers."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from services.ops.status_model import (
    AuditCheckpointStatus,
    Circuit,
    GroupLag,
    Report,
    State,
)

STYLES = {State.UP: "green", State.DEGRADED: "bold yellow", State.DOWN: "bold red"}
MARKERS = "a transaction's commit marker takes one too; too many, or too slow, to count"
WORDS = {State.UP: "up", State.DEGRADED: "DEGRADED", State.DOWN: "DOWN"}


def _state(state: State) -> Text:
    return Text(WORDS[state], style=STYLES[state])


def age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; ``?`` when not known."""
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def count(n: int, exact: bool) -> Text:
    """A record count; ``≤n`` when it is an upper bound (offsets that may be markers)."""
    return Text(f"{n}" if exact else f"≤{n}", style="yellow" if n else "")


def components_table(report: Report) -> Table:
    table = Table(title="infoshare status", title_justify="left", expand=False)
    for name in ("component", "state", "where", "detail"):
        table.add_column(name, overflow="fold")
    k = report.kafka
    kafka_state = State.UP if k.reachable else State.DOWN
    problem = f"not reachable ({k.problem})" if k.problem else ("" if k.reachable else "?")
    table.add_row(Text("kafka"), _state(kafka_state), Text(k.bootstrap), Text(problem))
    for c in report.components:
        detail = "; ".join(([c.reason] if c.reason else []) + list(c.facts))
        table.add_row(Text(c.name), _state(c.state), Text(c.where), Text(detail))
    return table


def _lag(group: GroupLag) -> Text:
    return count(group.lag, group.exact) if group.known else Text("?", style="yellow")


def lag_table(report: Report, *, partitions: bool = False) -> Table:
    """Per reader (group), or with ``partitions`` per topic partition."""
    table = Table(title="Consumer lag (committed records not yet read)", title_justify="left")
    if not partitions:
        for name in ("reader", "group / offsets", "members", "lag", "note"):
            table.add_column(name, justify="right" if name in ("members", "lag") else "left")
        for g in report.groups:
            members = "-" if g.members is None else str(g.members)
            table.add_row(Text(g.reader), Text(g.group), Text(members), _lag(g), Text(g.note))
        return table
    for name in ("reader", "topic", "partition", "committed", "end", "lag"):
        table.add_column(name, justify="left" if name in ("reader", "topic") else "right")
    for g in report.groups:
        if not g.partitions:
            table.add_row(
                Text(g.reader), Text(g.note or "no partitions"), *(Text("") for _ in "1234")
            )
        for p in g.partitions:
            table.add_row(
                Text(g.reader),
                Text(p.topic),
                Text(str(p.partition)),
                Text("-" if p.committed is None else str(p.committed)),
                Text(str(p.end)),
                count(p.lag, p.exact),
            )
    return table


def dead_letters_table(report: Report) -> Table:
    table = Table(title="Dead letters", title_justify="left")
    table.add_column("topic")
    table.add_column("records", justify="right")
    for d in report.dead_letters:
        table.add_row(Text(d.topic), count(d.records, d.exact))
    return table


def circuits_section(circuits: tuple[Circuit, ...] | None) -> RenderableType:
    """The circuits not closed, in a table (recipient and state: never an endpoint)."""
    if circuits is None:
        return Text("webhook circuits: unknown (the delivery service did not say)", style="yellow")
    troubled = [c for c in circuits if c.state != "closed"]
    closed = len(circuits) - len(troubled)
    if not troubled:
        return Text(f"webhook circuits: {closed} closed, none open")
    table = Table(title=f"Webhook circuits not closed ({closed} closed)", title_justify="left")
    for name in ("recipient", "state", "failures", "next try in"):
        table.add_column(name, justify="right" if name != "recipient" else "left")
    for c in troubled:
        style = "bold red" if c.state == "open" else "yellow"
        table.add_row(
            Text(c.recipient),
            Text(c.state, style=style),
            Text(str(c.failures)),
            Text(age(c.retry_in_s)),
        )
    return table


def audit_line(audit: AuditCheckpointStatus | None) -> Text:
    if audit is None:
        return Text("audit checkpoint: unknown (the audit service did not say)", style="yellow")
    if audit.tree_size is None:
        return Text(f"audit checkpoint: none yet ({audit.records} records stored)")
    return Text(
        f"audit checkpoint: records 1-{audit.tree_size} signed at {audit.created_at} "
        f"({age(audit.age_s)} ago); {audit.records} records stored"
    )


def verdict(report: Report) -> Text:
    """One line: healthy, or what is not."""
    if report.healthy:
        return Text("all healthy", style="bold green")
    wrong = [] if report.kafka.reachable else ["kafka DOWN"]
    wrong += [f"{c.name} {WORDS[c.state]}" for c in report.components if c.state is not State.UP]
    return Text("attention: " + ", ".join(wrong), style="bold red")


def render(report: Report, *, partitions: bool = False) -> list[RenderableType]:
    """Everything ``infoshare status`` prints, in order."""
    shown: list[RenderableType] = [
        components_table(report),
        lag_table(report, partitions=partitions),
    ]
    if report.dead_letters:
        shown.append(dead_letters_table(report))
    shown += [circuits_section(report.circuits), audit_line(report.audit)]
    shown += [Text(note, style="dim") for note in report.notes]
    inexact = any(not g.exact for g in report.groups) or any(
        not d.exact for d in report.dead_letters
    )
    if inexact:
        shown.append(Text(f"≤: an upper bound, counted in offsets ({MARKERS})", style="dim"))
    shown.append(verdict(report))
    return shown
