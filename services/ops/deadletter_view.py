"""What may be said about a dead letter, without Kafka: its summary, its headers, its key
and the shape of its payload.

A dead letter's value and key hold personal data (NHS numbers, names, a keyed hash of the
child's identifier). Nothing here returns any of it: headers are shown only from an
allow-list of attributes infoshare writes itself (the CloudEvents attributes of the envelope,
the trace context, and every field of the dead-letter contract), the key only as present and
its length, the payload only as field paths with their types and sizes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.backbone import deadletter
from services.backbone.deadletter import DeadLetter, Header

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
        deadletter.RETRY_OF,
        *deadletter.FIELDS,
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


def _text(value: str | None) -> str | None:
    return None if value is None else clean(value)


def summary(letter: DeadLetter) -> dict[str, Any]:
    """One row of ``dlq list``: where, when, from where, which event, why."""
    origin = letter.origin
    return {
        "stage": letter.stage,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "recorded": letter.recorded,
        "origin": None if origin is None else vars(origin),
        "ce_type": _text(letter.header("ce_type")),
        "ce_id": _text(letter.header("ce_id")),
        "reason": _text(letter.reason),
    }


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
    """Everything ``dlq show`` says about one dead letter: the summary, every field of the
    dead-letter contract it carries, its key, headers and payload shape."""
    return {
        **summary(letter),
        "dead_letter": {name: clean(value) for name, value in letter.fields().items()},
        "key": key_view(letter.key),
        "headers": header_view(letter.headers),
        "payload": payload_shape(letter.value),
    }
