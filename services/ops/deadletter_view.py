"""What ``infoshare dlq`` may say about a dead letter, without Kafka: the model, the header
policy, the payload's shape and the tables.

A dead letter's value and key hold personal data (NHS numbers, names, a keyed hash of the
child's identifier). Nothing here returns or prints any of it: headers are shown only from an
allow-list of attributes infoshare writes itself, the key only as present and its length, the
payload only as field paths with their types and sizes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

Header = tuple[str, bytes | None]
RETRY_OF = "infoshare_retry_of"
DLQ_HEADERS = (
    "dlq_reason",
    "dlq_topic",
    "dlq_partition",
    "dlq_offset",
    "dlq_subscription",
    "dlq_event_number",
)
# The attributes infoshare writes (services/backbone/envelope.py and telemetry.py): none of
# them names a person. Anything else (ce_subject, tracestate, a producer's own header) may,
# so its value is withheld and only its size shown.
SHOWN_HEADERS = frozenset(
    {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_dataschema",
        "ce_protocol",
        "ce_identitylevel",
        "content-type",
        "traceparent",
        RETRY_OF,
        *DLQ_HEADERS,
    }
)
MAX_TEXT = 200
MAX_PATHS = 500
MAX_DEPTH = 64
# A key that looks like a field name is shown; any other (digits, spaces, dots: a key that
# could itself be an identifier or a name) only by its length.
_FIELD_NAME = re.compile(r"[A-Za-z_@$][A-Za-z0-9_$-]{0,63}")


def clean(text: str) -> str:
    """Printable text: control characters become ``?``, long text is cut short."""
    printable = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in text)
    return printable if len(printable) <= MAX_TEXT else printable[: MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class Origin:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class DeadLetter:
    """One record of a ``dlq.<stage>`` topic, as read (key and value kept only to retry)."""

    stage: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[Header] = field(default_factory=tuple)

    def header(self, name: str) -> str | None:
        """The last header of this name as text; None if absent or null."""
        found = [v for k, v in self.headers if k == name and v is not None]
        return found[-1].decode(errors="replace") if found else None

    @property
    def where(self) -> str:
        """``dlq.processor@5`` (the partition only when it is not 0)."""
        part = f"[{self.partition}]" if self.partition else ""
        return f"{self.topic}{part}@{self.offset}"

    @property
    def origin(self) -> Origin | None:
        """Where the record was when it failed, or None if the headers do not say."""
        topic, part, offset = (self.header(f"dlq_{n}") for n in ("topic", "partition", "offset"))
        if not topic or part is None or offset is None:
            return None
        try:
            return Origin(topic, int(part), int(offset))
        except ValueError:
            return None

    @property
    def recorded(self) -> str:
        moment = datetime.fromtimestamp(self.timestamp_ms / 1000, UTC)
        return moment.isoformat(timespec="seconds").replace("+00:00", "Z")

    def summary(self) -> dict[str, Any]:
        """One row of ``dlq list``: where, when, from where, which event, why."""
        origin = self.origin
        return {
            "stage": self.stage,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "recorded": self.recorded,
            "origin": None if origin is None else vars(origin),
            "ce_type": _text(self.header("ce_type")),
            "ce_id": _text(self.header("ce_id")),
            "reason": _text(self.header("dlq_reason")),
        }


def _text(value: str | None) -> str | None:
    return None if value is None else clean(value)


def header_view(headers: Iterable[Header]) -> list[dict[str, Any]]:
    """Every header by name; the value only for the allow-list, otherwise its size."""
    view: list[dict[str, Any]] = []
    for name, raw in headers:
        size = None if raw is None else len(raw)
        if name.lower() in SHOWN_HEADERS and raw is not None:
            view.append({"name": clean(name), "value": clean(raw.decode(errors="replace"))})
        else:
            view.append({"name": clean(name), "value": None, "bytes": size})
    return view


def key_view(key: bytes | None) -> dict[str, Any]:
    """The key is the subject routing key, a keyed hash: only whether it is there, and its size."""
    return {"present": bool(key), "bytes": len(key or b"")}


@dataclass
class _Seen:
    kinds: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    def add(self, kind: str, size: int | None) -> None:
        if size is None:
            self.kinds.setdefault(kind, None)
            return
        low, high = self.kinds.get(kind) or (size, size)
        self.kinds[kind] = (min(low, size), max(high, size))

    def describe(self) -> str:
        units = {"string": "chars", "array": "items", "object": "fields"}
        parts = []
        for kind, sizes in self.kinds.items():
            if sizes is None:
                parts.append(kind)
            else:
                span = str(sizes[0]) if sizes[0] == sizes[1] else f"{sizes[0]}-{sizes[1]}"
                parts.append(f"{kind} ({span} {units[kind]})")
        return " | ".join(parts)


def _kind(node: Any) -> tuple[str, int | None]:
    if node is None:
        return "null", None
    if isinstance(node, bool):
        return "boolean", None
    if isinstance(node, int):
        return "integer", None
    if isinstance(node, float):
        return "number", None
    if isinstance(node, str):
        return "string", len(node)
    return ("array" if isinstance(node, list) else "object"), len(node)


def _field(path: str, key: str) -> str:
    name = key if _FIELD_NAME.fullmatch(key) else f"<key of {len(key)} chars>"
    return f"{path}.{name}" if path else name


def payload_shape(value: bytes | None) -> dict[str, Any]:
    """The payload's shape: each JSON field path (arrays as ``[*]``) with its value types and
    sizes, in document order. Never a value; a key that does not look like a field name is
    shown only by its length."""
    if value is None:
        return {"json": False, "bytes": 0, "note": "no payload (null value)", "fields": []}
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        note = f"the payload is not JSON ({len(value)} bytes); nothing of it is shown"
        return {"json": False, "bytes": len(value), "note": note, "fields": []}
    seen: dict[str, _Seen] = {}
    deeper = False
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        path, node, depth = stack.pop()
        seen.setdefault(path or "(payload)", _Seen()).add(*_kind(node))
        children: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            children = [(_field(path, str(k)), v) for k, v in node.items()]
        elif isinstance(node, list):
            children = [(f"{path}[*]", v) for v in node]
        if children and depth >= MAX_DEPTH:
            deeper = True
            continue
        stack.extend((p, v, depth + 1) for p, v in reversed(children))
    fields = [{"path": p, "type": s.describe()} for p, s in seen.items()]
    notes = [f"nested deeper than {MAX_DEPTH} levels: not shown"] if deeper else []
    if len(fields) > MAX_PATHS:
        notes.append(f"{len(fields) - MAX_PATHS} more paths not shown")
    return {
        "json": True,
        "bytes": len(value),
        "note": "; ".join(notes) or None,
        "fields": fields[:MAX_PATHS],
    }


def detail(letter: DeadLetter) -> dict[str, Any]:
    """Everything ``dlq show`` says about one dead letter."""
    return {
        **letter.summary(),
        "key": key_view(letter.key),
        "headers": header_view(letter.headers),
        "payload": payload_shape(letter.value),
    }


def list_table(rows: Sequence[dict[str, Any]], *, title: str) -> Table:
    """``dlq list`` for people: one row per dead letter (the event's type above its id)."""
    table = Table(title=title, show_lines=True)
    for column in ("stage", "offset", "recorded", "origin", "event (ce_type, ce_id)", "reason"):
        table.add_column(column, overflow="fold")
    for r in rows:
        origin = r["origin"]
        offset = str(r["offset"]) if not r["partition"] else f"[{r['partition']}]@{r['offset']}"
        cells = (
            r["stage"],
            offset,
            r["recorded"],
            "(not named)" if origin is None else str(Origin(**origin)),
            f"{r['ce_type'] or '-'}\n{r['ce_id'] or '-'}",
            r["reason"] or "-",
        )
        table.add_row(*(Text(c) for c in cells))
    return table


def render_detail(view: dict[str, Any], console: Console) -> None:
    """``dlq show`` for people: headers, key, reason and origin, the payload's shape."""
    origin = view["origin"]
    key = view["key"]
    facts = Table.grid(padding=(0, 2))
    for name, value in (
        ("dead letter", f"{view['topic']}[{view['partition']}]@{view['offset']}"),
        ("recorded", view["recorded"]),
        ("origin", "(not named)" if origin is None else str(Origin(**origin))),
        ("reason", view["reason"] or "-"),
        ("key", f"present ({key['bytes']} bytes, not shown)" if key["present"] else "none"),
    ):
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
