"""Apply a recipient's field rules to event data. Allow-list: what no rule names is dropped.

Rules name dotted JSON paths, arrays included (``codes[*].code``). Every value placed in
the output is a copy, so the input is never changed and no two recipients' payloads share
an object. Field lists name paths, never values.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from consent.core.generalise import TransformError, generalise, mask
from consent.core.model import FieldRule, RuleKind
from consent.core.paths import apply, covering_paths, get_path, leaf_paths, set_path

__all__ = ["Projection", "TransformError", "get_path", "leaf_paths", "project", "set_path"]
Keyed = Callable[[str, str], str]  # (path, value) -> pseudonym or token


@dataclass(frozen=True)
class Projection:
    payload: dict[str, Any]
    disclosed: tuple[str, ...]
    pseudonymised: tuple[str, ...]
    withheld: tuple[str, ...]
    tokenised: tuple[str, ...] = ()
    encrypted: tuple[str, ...] = ()


def _refuse(_path: str, _value: str) -> str:
    raise TransformError("no key is configured for this rule")


_ATOMIC = frozenset({str, int, float, bool, type(None)})


def _copy(_path: str, value: Any) -> Any:
    """An allowed value, copied: most are scalars, which are immutable."""
    return value if type(value) in _ATOMIC else copy.deepcopy(value)


@functools.lru_cache(maxsize=4096)
def _withheld(leaves: tuple[str, ...], taken: frozenset[str]) -> tuple[str, ...]:
    """The leaves no consumed rule path covers. Cached: an event type's leaves and a
    recipient's rules are few, and both are field names, never values."""
    return tuple(p for p in leaves if taken.isdisjoint(covering_paths(p)))


def project(
    data: Mapping[str, Any],
    rules: tuple[FieldRule, ...],
    *,
    pseudonymise: Keyed,
    tokenise: Keyed = _refuse,
    encrypt: Keyed = _refuse,
    on: date | None = None,
    leaves: tuple[str, ...] | None = None,
) -> Projection:
    """Apply ``rules`` to ``data``. ``pseudonymise`` and ``tokenise`` are the recipient's
    keyed transforms; ``on`` is the date age bands are computed for (the event's date);
    ``leaves`` is ``leaf_paths(data)`` when the caller has it already (one event, many
    recipients)."""
    when = on or date.today()
    transforms: dict[RuleKind, Callable[[FieldRule], Callable[[str, Any], Any]]] = {
        RuleKind.ALLOW: lambda _r: _copy,
        RuleKind.MASK: lambda _r: lambda _p, v: mask(v),
        RuleKind.GENERALISE: lambda r: lambda _p, v: generalise(v, r.to, on=when),  # type: ignore[arg-type]
        RuleKind.PSEUDONYMISE: lambda _r: lambda p, v: pseudonymise(p, str(v)),
        RuleKind.TOKENISE: lambda _r: lambda p, v: tokenise(p, str(v)),
        RuleKind.ENCRYPT: lambda _r: lambda p, v: encrypt(p, str(v)),
    }
    payload: dict[str, Any] = {}
    consumed: list[str] = []
    lists: dict[RuleKind, list[str]] = {kind: [] for kind in RuleKind}
    for rule in rules:
        if apply(data, payload, rule.path, rule.target, transforms[rule.kind](rule)):
            consumed.append(rule.path)
            lists[rule.kind].append(rule.target)
    all_leaves = leaves if leaves is not None else tuple(leaf_paths(data))
    withheld = _withheld(all_leaves, frozenset(consumed))
    disclosed = lists[RuleKind.ALLOW] + lists[RuleKind.MASK] + lists[RuleKind.GENERALISE]
    return Projection(
        payload=payload,
        disclosed=tuple(sorted(disclosed, key=[r.target for r in rules].index)),
        pseudonymised=tuple(lists[RuleKind.PSEUDONYMISE]),
        withheld=withheld,
        tokenised=tuple(lists[RuleKind.TOKENISE]),
        encrypted=tuple(lists[RuleKind.ENCRYPT]),
    )
