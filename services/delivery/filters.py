"""Subscription filters: a small declarative list over the delivered CloudEvent, all of
which must hold (R5 filterBy, without a query language).

A filter is ``{"path": ..., "op": "eq" | "in" | "exists", "value": ...}``. ``path`` is a
CloudEvents attribute (``type``, ``source``, ``protocol``, ``identity_level``) or a dotted
path into the data (``data.attendance.site.ods_code``). Paths into the data cannot be
checked against the event schemas: protocols rename fields on the way out (``as:``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.delivery.errors import InvalidSubscription
from services.delivery.model import Delivered

ATTRIBUTES = frozenset({"type", "source", "protocol", "identity_level"})
_DATA_PATH = re.compile(r"^data(\.[A-Za-z0-9_]{1,64}){1,8}$")
MAX_FILTERS = 20
MAX_VALUES = 100
MAX_TEXT = 256
_ABSENT = object()


class Op(StrEnum):
    EQ = "eq"
    IN = "in"
    EXISTS = "exists"


Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Filter:
    path: str
    op: Op
    value: Scalar | tuple[Scalar, ...] = None

    def as_dict(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"path": self.path, "op": self.op.value, "value": value}


def _scalar(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    return value is None or isinstance(value, int | float | bool)


def parse_filter(raw: Mapping[str, Any], *, index: int = 0) -> Filter:
    """A filter from its JSON form; InvalidSubscription names the field and the rule broken
    (never the value given)."""
    loc: tuple[str | int, ...] = ("filters", index)
    path = raw.get("path")
    if not isinstance(path, str) or not (path in ATTRIBUTES or _DATA_PATH.match(path)):
        raise InvalidSubscription(
            (*loc, "path"),
            "filter.path",
            "path must be one of " + ", ".join(sorted(ATTRIBUTES)) + " or data.<field>[.<field>]",
        )
    try:
        op = Op(str(raw.get("op")))
    except ValueError:
        raise InvalidSubscription(
            (*loc, "op"), "filter.op", "op must be eq, in or exists"
        ) from None
    value = raw.get("value")
    if op is Op.EQ:
        if not _scalar(value):
            raise InvalidSubscription(
                (*loc, "value"), "filter.value", "eq needs a string, number, boolean or null"
            )
        return Filter(path, op, value)
    if op is Op.IN:
        if (
            not isinstance(value, list)
            or not 1 <= len(value) <= MAX_VALUES
            or not all(_scalar(v) for v in value)
        ):
            raise InvalidSubscription(
                (*loc, "value"), "filter.value", f"in needs a list of 1 to {MAX_VALUES} scalars"
            )
        return Filter(path, op, tuple(value))
    if not isinstance(value, bool | None):
        raise InvalidSubscription(
            (*loc, "value"), "filter.value", "exists takes true, false or no value (true)"
        )
    return Filter(path, op, True if value is None else value)


def parse_filters(raw: Sequence[Mapping[str, Any]]) -> tuple[Filter, ...]:
    if len(raw) > MAX_FILTERS:
        raise InvalidSubscription(("filters",), "filter.count", f"at most {MAX_FILTERS} filters")
    return tuple(parse_filter(r, index=i) for i, r in enumerate(raw))


def _lookup(event: Delivered, path: str) -> Any:
    if path in ATTRIBUTES:
        value = event.attribute(path)
        return _ABSENT if value is None else value
    node: Any = event.data
    for part in path.split(".")[1:]:
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    return bool(a == b) and (isinstance(a, str) == isinstance(b, str))


def matches(filters: Sequence[Filter], event: Delivered) -> bool:
    """Whether every filter holds for ``event`` (no filters: every event)."""
    for f in filters:
        found = _lookup(event, f.path)
        if f.op is Op.EXISTS:
            if (found is not _ABSENT) is not f.value:
                return False
        elif found is _ABSENT:
            return False
        elif f.op is Op.EQ:
            if not _same(found, f.value):
                return False
        elif isinstance(f.value, tuple) and not any(_same(found, v) for v in f.value):
            return False
    return True
