"""Field selection and transforms by dotted JSON path. Allow-list: what no rule names is dropped."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from consent.core.model import FieldRule, Generalisation, RuleKind

_MISSING = object()
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)\s*[0-9][A-Z]{2}$")


class TransformError(ValueError):
    """A value cannot be transformed as the rule asks (e.g. a malformed date)."""


def get_path(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_path(out: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def leaf_paths(data: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Every leaf's dotted path (a list counts as a leaf until arrays come with the engine)."""
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from leaf_paths(value, path + ".")
        else:
            yield path


def generalise(value: Any, to: Generalisation) -> str:
    """Coarsen a date to its year or month, or a UK postcode to its district (outward code)."""
    text = str(value).strip()
    if to in (Generalisation.YEAR, Generalisation.MONTH):
        if not re.match(r"^\d{4}-\d{2}", text):
            raise TransformError(f"cannot generalise a non-date value to {to}")
        return text[:4] if to is Generalisation.YEAR else text[:7]
    match = _POSTCODE.match(text.upper())
    if not match:
        raise TransformError("cannot generalise a malformed postcode")
    return match.group(1)


@dataclass(frozen=True)
class Projection:
    payload: dict[str, Any]
    disclosed: tuple[str, ...]
    pseudonymised: tuple[str, ...]
    withheld: tuple[str, ...]


def _covered(leaf: str, consumed: set[str]) -> bool:
    return any(leaf == c or leaf.startswith(c + ".") for c in consumed)


def project(
    data: Mapping[str, Any],
    rules: tuple[FieldRule, ...],
    *,
    pseudonymise: Callable[[str, str], str],
) -> Projection:
    """Apply ``rules`` to ``data``; ``pseudonymise(path, value)`` is the recipient's keyed hash.

    The output holds only rule targets, as copies: ``data`` is never changed and no two
    recipients' payloads share an object. Field lists name paths, never values.
    """
    payload: dict[str, Any] = {}
    consumed: set[str] = set()
    disclosed: list[str] = []
    pseudonymised: list[str] = []
    for rule in rules:
        value = get_path(data, rule.path)
        if value is _MISSING:
            continue
        consumed.add(rule.path)
        if rule.kind is RuleKind.ALLOW:
            set_path(payload, rule.target, copy.deepcopy(value))
            disclosed.append(rule.target)
        elif rule.kind is RuleKind.GENERALISE:
            assert rule.to is not None
            set_path(payload, rule.target, generalise(value, rule.to))
            disclosed.append(rule.target)
        else:
            set_path(payload, rule.target, pseudonymise(rule.path, str(value)))
            pseudonymised.append(rule.target)
    withheld = tuple(p for p in leaf_paths(data) if not _covered(p, consumed))
    return Projection(payload, tuple(disclosed), tuple(pseudonymised), withheld)
